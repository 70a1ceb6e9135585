//! The `herd` command: runs herd variants the way the report does, with connections
//! arriving one at a time or in bursts, and prints wakeups per connection and Jain's
//! fairness of the connections across the workers.
//!
//! Each run starts `epitome-benches herd-server <variant> --workers 8`, pinned to
//! CPU 0 (this process, the client, pins itself to CPU 1), waits 50 ms for every
//! worker to reach its wait, reads the workers' voluntary context switches from
//! `/proc`, opens [`CONNECTIONS`](super::CONNECTIONS) connections
//! ([`Arrival`]), reads the switches again, and asks the server for its counters.
//! That is the report's herd method; this command adds the burst arrival and runs
//! any variants.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Duration;

use super::{CONNECTIONS, HerdVariant, THREAD_PREFIX, VARIANTS, WORKERS, WorkerCounts};
use crate::client::herd::Arrival;
use crate::{echo, machine};

/// The usage line of `herd`.
pub const USAGE: &str =
    "herd [--variants a,b,..] [--arrival one|burst|both] [--runs N] [--connections N]";

/// The CPU the herd servers are pinned to, and the client's (the report's).
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// One run's figures.
#[derive(Clone, Debug)]
pub struct HerdRun {
    /// Connections opened.
    pub connections: usize,
    /// Each worker's counters.
    pub workers: Vec<WorkerCounts>,
    /// The workers' voluntary context switches while the connections were opened.
    pub wakeups: u64,
    /// Connect to first echoed byte, ns.
    pub p50_ns: u64,
    /// See `p50_ns`.
    pub p99_ns: u64,
}

impl HerdRun {
    /// Wakeups per accepted connection.
    pub fn wakeups_per_connection(&self) -> f64 {
        let accepted: u64 = self.workers.iter().map(|w| w.accepted).sum();
        self.wakeups as f64 / accepted.max(1) as f64
    }

    /// Jain's fairness of the connections across the workers.
    pub fn jain(&self) -> f64 {
        let counts: Vec<u64> = self.workers.iter().map(|w| w.accepted).collect();
        super::jain_index(&counts).unwrap_or(0.0)
    }
}

/// A `herd-server` child, killed on drop.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Server {
    fn spawn(variant: &HerdVariant, cpu: Option<usize>) -> io::Result<Server> {
        let mut command = Command::new("/proc/self/exe");
        command.args([
            "herd-server",
            variant.name,
            "--workers",
            &WORKERS.to_string(),
        ]);
        if let Some(cpu) = cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("no pipes to the server"));
        };
        let mut server = Server {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = server.read_line()?;
        server.addr = line
            .trim()
            .parse()
            .map_err(|e| io::Error::other(format!("the server printed `{}`: {e}", line.trim())))?;
        Ok(server)
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other("the herd server exited"));
        }
        Ok(line)
    }

    /// Voluntary context switches of the worker threads.
    fn wakeups(&self) -> io::Result<u64> {
        let mut total = 0;
        for entry in fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let dir = entry?.path();
            match fs::read_to_string(dir.join("comm")) {
                Ok(comm) if comm.starts_with(THREAD_PREFIX) => {}
                _ => continue,
            }
            let Ok(status) = fs::read_to_string(dir.join("status")) else {
                continue;
            };
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(total)
    }

    fn counts(&mut self) -> io::Result<Vec<WorkerCounts>> {
        writeln!(self.stdin, "stats")?;
        self.stdin.flush()?;
        let answer = self.read_line()?;
        super::parse_counts(&answer)
            .ok_or_else(|| io::Error::other(format!("the herd server answered `{answer}`")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One run of `variant`: `connections` connections arriving as `arrival` says, the
/// server pinned to `server_cpu` (the caller pins itself elsewhere).
pub fn measure(
    variant: &HerdVariant,
    arrival: Arrival,
    connections: usize,
    server_cpu: Option<usize>,
) -> io::Result<HerdRun> {
    let mut server = Server::spawn(variant, server_cpu)?;
    // Let every worker reach its wait.
    std::thread::sleep(Duration::from_millis(50));
    let before = server.wakeups()?;
    let (streams, latency) = arrival.connect(server.addr, connections, echo::MAIN_SIZE)?;
    let after = server.wakeups()?;
    let workers = server.counts();
    let opened = streams.len();
    for s in &streams {
        // A reset close leaves no TIME_WAIT behind for the next run.
        let _ = crate::sys::reset_on_close(s);
    }
    drop(streams);
    Ok(HerdRun {
        connections: opened,
        workers: workers?,
        wakeups: after.saturating_sub(before),
        p50_ns: latency.value_at_quantile(0.5),
        p99_ns: latency.value_at_quantile(0.99),
    })
}

struct Options {
    variants: Vec<&'static HerdVariant>,
    arrivals: Vec<Arrival>,
    runs: usize,
    connections: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        variants: VARIANTS.iter().filter(|v| v.epitome).collect(),
        arrivals: vec![Arrival::OneAtATime, Arrival::Burst],
        runs: 3,
        connections: CONNECTIONS,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--variants" => {
                options.variants = value
                    .split(',')
                    .map(|n| super::find(n).ok_or_else(|| format!("unknown variant `{n}`")))
                    .collect::<Result<_, _>>()?;
            }
            "--arrival" => {
                options.arrivals = match value.as_str() {
                    "one" => vec![Arrival::OneAtATime],
                    "burst" => vec![Arrival::Burst],
                    "both" => vec![Arrival::OneAtATime, Arrival::Burst],
                    other => return Err(format!("--arrival {other}: one, burst or both")),
                };
            }
            "--runs" => {
                options.runs = value.parse().map_err(|e| format!("--runs {value}: {e}"))?;
            }
            "--connections" => {
                options.connections = value
                    .parse()
                    .map_err(|e| format!("--connections {value}: {e}"))?;
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(options)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs `herd`; `args` are the arguments after the command name.
pub fn main(args: &[String]) -> ExitCode {
    let options = match parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("herd: {e}\nusage: epitome-benches {USAGE}");
            return ExitCode::from(2);
        }
    };
    let m = machine::Machine::detect();
    println!("{m}");
    let server_cpu = if m.cpus >= 2 {
        if let Err(e) = machine::pin_to_cpu(CLIENT_CPU) {
            eprintln!("herd: pinning the client: {e}");
            return ExitCode::FAILURE;
        }
        Some(SERVER_CPU)
    } else {
        None
    };
    if let Err(short) = machine::raise_nofile((options.connections + 1_000) as u64) {
        eprintln!("warning: {short}");
    }
    println!(
        "{WORKERS} workers on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}, {} connections, \
         median of {} runs",
        options.connections, options.runs
    );
    println!(
        "{:<22} {:<14} {:>12} {:>7} {:>11} {:>8} {:>8}",
        "variant", "arrival", "wakeups/conn", "Jain", "min–max", "p50 µs", "p99 µs"
    );
    for variant in &options.variants {
        for &arrival in &options.arrivals {
            let mut runs = Vec::new();
            for _ in 0..options.runs {
                match measure(variant, arrival, options.connections, server_cpu) {
                    Ok(run) => runs.push(run),
                    Err(e) => eprintln!("herd {} {}: {e}", variant.name, arrival.name()),
                }
                // Let the closed connections' sockets go.
                std::thread::sleep(Duration::from_millis(200));
            }
            if runs.is_empty() {
                println!("{:<22} {:<14} n/a", variant.name, arrival.name());
                continue;
            }
            let per = |f: &dyn Fn(&HerdRun) -> f64| median(runs.iter().map(f).collect());
            println!(
                "{:<22} {:<14} {:>12.3} {:>7.3} {:>5.0}–{:<5.0} {:>8.0} {:>8.0}",
                variant.name,
                arrival.name(),
                per(&HerdRun::wakeups_per_connection),
                per(&HerdRun::jain),
                per(&|r| r.workers.iter().map(|w| w.accepted).min().unwrap_or(0) as f64),
                per(&|r| r.workers.iter().map(|w| w.accepted).max().unwrap_or(0) as f64),
                per(&|r| r.p50_ns as f64 / 1e3),
                per(&|r| r.p99_ns as f64 / 1e3),
            );
        }
    }
    ExitCode::SUCCESS
}
