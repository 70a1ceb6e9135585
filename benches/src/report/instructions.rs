//! `instructions`: user-space instructions per request of every echo contender,
//! counted by callgrind.
//!
//! The report's user CPU per request is perf's user-mode samples over a window, and
//! on a shared VM it moves by 15% or more from run to run, for every contender. An
//! instruction count does not depend on the machine's load: callgrind executes the
//! server's user-space code on a synthetic CPU and counts each instruction it runs
//! (every thread's, the C library's syscall wrappers included; nothing the kernel
//! does). It is the figure to hold the user-CPU targets against when the samples
//! disagree (epitome ≤ 0.55× tokio's instructions, 50 connections × 64 B).
//!
//! # How one run counts
//!
//! The server runs under `valgrind --tool=callgrind`, pinned like the report's
//! servers. The client opens the connections and warms the server up (callgrind
//! translates code the first time it runs, and the first requests also pay for
//! lazily built state). Then `callgrind_control -z` zeroes the counters, the client
//! runs closed-loop until at least `--requests` round trips are complete, and
//! `callgrind_control -d` dumps the counts; both commands return once callgrind has
//! carried them out. Instructions per request are the dump's total over the round
//! trips completed in between. The messages in flight at either boundary (one per
//! connection) are within the count's error: 50 of 20,000 requests, 0.25%.
//!
//! Under callgrind the server runs some 50× slower than natively while the client
//! does not, so every `epoll_wait` of the server finds many connections ready: the
//! counts are per request at full batching, the same for every contender.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use epitome_benches::client::{self, closed::ClosedLoop};
use epitome_benches::echo::{self, Contender, Family};
use epitome_benches::machine::{self, Machine};

use super::process::ServerProcess;
use super::summary::median;
use super::table::Table;

/// The usage line of `instructions`.
pub const USAGE: &str = "instructions [--quick] [--requests N] [--runs N] [--only a,b,..]";

/// The CPU the client runs on, and the one the servers run on (as in the report).
const CLIENT_CPU: usize = 1;
const SERVER_CPU: usize = 0;
/// The target the ratios are shown against: epitome's instructions per request at
/// most 0.55× tokio's (issue 25; issue 9's 0.7× before it).
const TARGET: f64 = 0.55;
/// How long one client window lasts between checks of the count.
const WINDOW: Duration = Duration::from_millis(100);
/// The default run: requests counted per run, and runs per contender.
const REQUESTS: u64 = 20_000;
const RUNS: usize = 3;
/// `--quick`: one short run each (what CI runs, to keep the command working).
const QUICK_REQUESTS: u64 = 5_000;

#[derive(Debug)]
struct Options {
    requests: u64,
    runs: usize,
    only: Option<Vec<String>>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        requests: REQUESTS,
        runs: RUNS,
        only: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--quick" => {
                options.requests = QUICK_REQUESTS;
                options.runs = 1;
            }
            "--requests" | "--runs" | "--only" => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--requests" => {
                        options.requests = match value.parse() {
                            Ok(n) if n > 0 => n,
                            _ => return Err(format!("--requests {value}: not a positive count")),
                        };
                    }
                    "--runs" => {
                        options.runs = match value.parse() {
                            Ok(n) if n > 0 => n,
                            _ => return Err(format!("--runs {value}: not a positive count")),
                        };
                    }
                    _ => {
                        let names: Vec<String> = value.split(',').map(str::to_owned).collect();
                        if let Some(bad) = names.iter().find(|n| echo::find(n).is_none()) {
                            return Err(format!("--only: no echo contender `{bad}`"));
                        }
                        options.only = Some(names);
                    }
                }
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(options)
}

/// Runs the command.
pub fn main(args: &[String]) -> ExitCode {
    let options = match parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("instructions: {e}\nusage: epitome-benches {USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("instructions: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> io::Result<()> {
    check_tools()?;
    let machine = Machine::detect();
    println!("epitome instructions: user-space instructions per request, counted by callgrind");
    println!("{machine}");
    let server_cpu = if machine.cpus >= 2 {
        machine::pin_to_cpu(CLIENT_CPU)?;
        println!("pinned: client CPU {CLIENT_CPU}, servers CPU {SERVER_CPU}");
        Some(SERVER_CPU)
    } else {
        println!("pinned: no (one CPU)");
        None
    };
    // Where callgrind's files go: `target/epitome-instructions` of the workspace.
    let dir = super::target_dir().join("epitome-instructions");
    fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let contenders: Vec<&'static Contender> = echo::CONTENDERS
        .iter()
        .filter(|c| {
            options
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|n| n == c.name))
        })
        .collect();
    println!(
        "plan:   {} contenders × {} run(s), {} conns × {} B, ≥ {} requests counted per run",
        contenders.len(),
        options.runs,
        echo::MAIN_CONNECTIONS,
        echo::MAIN_SIZE,
        options.requests
    );
    println!();

    // Runs interleaved, contender by contender within each run, as the report does.
    let mut counts: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for run in 1..=options.runs {
        print!("run {run}/{}:", options.runs);
        for (i, c) in contenders.iter().enumerate() {
            let per_request = count_one(c, run, options.requests, server_cpu, &dir)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", c.name)))?;
            print!(" {} {per_request:.0}", c.name);
            let _ = io::stdout().flush();
            counts[i].push(per_request);
        }
        println!();
    }
    println!();

    let medians: Vec<Option<f64>> = counts.iter().map(|runs| median(runs.clone())).collect();
    let median_of = |name: &str| {
        contenders
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| medians[i])
    };
    let mut table = Table::new(&["contender", "instructions/req", "range", "runs"]).left_aligned(1);
    for (c, runs) in contenders.iter().zip(&counts) {
        let (lo, hi) = runs.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
        table.row(vec![
            c.name.to_owned(),
            median(runs.clone()).map_or("n/a".to_owned(), |m| format!("{m:.0}")),
            format!("{lo:.0}–{hi:.0}"),
            runs.len().to_string(),
        ]);
    }
    println!(
        "{} conns × {} B, closed loop (median of runs):",
        echo::MAIN_CONNECTIONS,
        echo::MAIN_SIZE
    );
    print!("{}", table.text());

    let mut ratios =
        Table::new(&["subject", "against", "target", "ratio", "verdict"]).left_aligned(3);
    for c in &contenders {
        let (peer, info) = match c.family {
            Family::EpitomeRuntime { tokio_peer } => (tokio_peer, false),
            Family::EventPollApi { tokio_peer } => (tokio_peer, true),
            _ => continue,
        };
        let (Some(a), Some(b)) = (median_of(c.name), median_of(peer)) else {
            continue;
        };
        let ratio = a / b;
        let verdict = if ratio <= TARGET { "PASS" } else { "MISS" };
        ratios.row(vec![
            c.name.to_owned(),
            peer.to_owned(),
            format!("≤ {TARGET}×"),
            format!("{ratio:.3}×"),
            // The EventPoll API server is not a runtime: shown, never judged.
            if info {
                format!("info ({verdict})")
            } else {
                verdict.to_owned()
            },
        ]);
    }
    if !ratios.is_empty() {
        println!();
        println!("instructions per request against tokio's (the user-CPU target, counted):");
        print!("{}", ratios.text());
    }
    println!(
        "  note: callgrind's dumps are in {} (`callgrind_annotate FILE` shows where the instructions go)",
        dir.display()
    );
    Ok(())
}

/// valgrind and callgrind_control, or a clear error.
fn check_tools() -> io::Result<()> {
    for tool in ["valgrind", "callgrind_control"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{tool}` is not on PATH; install valgrind (apt-get install valgrind)"),
            ));
        }
    }
    Ok(())
}

/// One run of one contender: instructions per request.
fn count_one(
    c: &Contender,
    run: usize,
    requests: u64,
    cpu: Option<usize>,
    dir: &Path,
) -> io::Result<f64> {
    let base = dir.join(format!("{}-{run}.callgrind", c.name));
    let dump = PathBuf::from(format!("{}.1", base.display()));
    let _ = fs::remove_file(&base);
    let _ = fs::remove_file(&dump);
    let launcher = vec![
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", base.display()),
        format!(
            "--log-file={}",
            dir.join(format!("{}-{run}.log", c.name)).display()
        ),
    ];
    let mut args = vec!["server".to_owned(), c.name.to_owned()];
    if let Some(cpu) = cpu {
        args.extend(["--cpu".to_owned(), cpu.to_string()]);
    }
    let mut server = ServerProcess::spawn_under(&launcher, &args)?;
    let streams = client::connect(server.addr, echo::MAIN_CONNECTIONS, echo::MAIN_SIZE)?;
    let mut driver = ClosedLoop::new(streams, echo::MAIN_SIZE)?;
    let mut latency = client::latency_histogram();
    // Warm-up: every connection's path translated and its buffers built.
    drive(&mut driver, &mut latency, requests / 4)?;
    callgrind_control(&["-z"], server.pid)?;
    let completed = drive(&mut driver, &mut latency, requests)?;
    callgrind_control(&["-d"], server.pid)?;
    server.check_alive()?;
    drop(driver);
    drop(server);
    let text = fs::read_to_string(&dump)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dump.display())))?;
    let _ = fs::remove_file(&base);
    let total = total_instructions(&text).ok_or_else(|| {
        io::Error::other(format!(
            "no `summary:` or `totals:` line in {}",
            dump.display()
        ))
    })?;
    Ok(total as f64 / completed as f64)
}

/// Drives the client until at least `requests` round trips are complete; returns how
/// many were.
fn drive(
    driver: &mut ClosedLoop,
    latency: &mut hdrhistogram::Histogram<u64>,
    requests: u64,
) -> io::Result<u64> {
    let mut completed = 0;
    let mut idle_windows = 0;
    while completed < requests {
        let window = driver.run_for(WINDOW, latency)?;
        completed += window.completed;
        // A server that stopped answering: fail rather than wait forever.
        idle_windows = if window.completed == 0 {
            idle_windows + 1
        } else {
            0
        };
        if idle_windows * WINDOW >= client::SETUP_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no echo for {:?} after {completed} round trips",
                    client::SETUP_TIMEOUT
                ),
            ));
        }
    }
    Ok(completed)
}

/// `callgrind_control <args> <pid>`, which returns once callgrind has carried out the
/// command.
fn callgrind_control(args: &[&str], pid: u32) -> io::Result<()> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("OK") {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "callgrind_control {} {pid} failed: {}{}",
            args.join(" "),
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The instruction count of a callgrind dump: its `summary:` line (the total of each
/// event over the dump, `Ir` first, the only event collected by default), or the
/// `totals:` line a dump carries when it has no summary.
fn total_instructions(text: &str) -> Option<u64> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    field("summary:").or_else(|| field("totals:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_is_the_summary_line() {
        let dump = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\n\
                    events: Ir\nsummary: 46067442\n\nfn=(1) main\n3 10\ntotals: 46071798\n";
        assert_eq!(total_instructions(dump), Some(46_067_442));
        assert_eq!(total_instructions("events: Ir\ntotals: 12 7\n"), Some(12));
        assert_eq!(total_instructions("events: Ir\nfn=main\n"), None);
        assert_eq!(total_instructions("summary: many\n"), None);
    }

    #[test]
    fn options() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let o = parse(&[]).unwrap();
        assert_eq!((o.requests, o.runs, o.only), (REQUESTS, RUNS, None));
        let o = parse(&args("--quick")).unwrap();
        assert_eq!((o.requests, o.runs), (QUICK_REQUESTS, 1));
        let o = parse(&args("--requests 100 --runs 5 --only epitome-ct,tokio-ct")).unwrap();
        assert_eq!((o.requests, o.runs), (100, 5));
        assert_eq!(o.only.unwrap(), ["epitome-ct", "tokio-ct"]);
        for bad in [
            "--requests 0",
            "--runs x",
            "--only nope",
            "--requests",
            "--fast",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
