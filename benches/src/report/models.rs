//! The "server models" phase: the seeds' three reactor models and every accept
//! strategy of `epitome::net::serve`, side by side, with tokio's idiomatic server as
//! the reference; and the seeds' cost of a blocking wait ([`ctxsw`](super::ctxsw)).
//!
//! Per model and run, each on a fresh server pinned to the server CPU:
//!
//! - **arrivals** (the herd measurement, [`Arrival`]): connections opened one at a
//!   time (`Budget::models_one_by_one`: 2,000 in quick mode, [`CONNECTIONS`] with
//!   `--full`), then, on another server, [`CONNECTIONS`] in bursts, each with one checked
//!   round trip; accepted connections per second (connections ÷ the time to open
//!   them all), wakeups per connection (the voluntary context switches of every
//!   server thread ÷ connections: pool and handed-off connections pay theirs too),
//!   p99 connect → first echoed byte, and Jain's fairness of the live connections
//!   across the reactors. Reactors are read from outside, the way the issue found
//!   the imbalance: the sockets registered in each of the server's epoll instances
//!   (`/proc/PID/fdinfo`), listeners left out; a reactor with none counts as 0.
//! - **memory**: the burst run's server RSS (and machine-wide slab) after its
//!   [`CONNECTIONS`] idle connections, minus before.
//! - **load**: a closed-loop window at [`LOAD_CONNECTIONS`] connections, 64 B:
//!   req/s and server CPU (user + system) per request.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::thread::sleep;
use std::time::{Duration, Instant};

use epitome_benches::client::herd::Arrival;
use epitome_benches::echo::{self, Contender};
use epitome_benches::herd;

use super::Scenario;
use super::ctxsw::{self, SwitchCost};
use super::measure::{self, IdleSample, LoadSample, Measured, Setup};
use super::process::ServerProcess;

/// Connections per arrival run (the herd's count, and the idle-memory count).
pub const CONNECTIONS: usize = herd::CONNECTIONS;
/// Connections of the load window.
pub const LOAD_CONNECTIONS: usize = 1_000;
/// Reactors (or pool threads, or tokio workers) of every multi-threaded model: the
/// count the targets are judged at.
pub const MODEL_THREADS: usize = herd::WORKERS;

/// One row of the section.
#[derive(Debug)]
pub struct Model {
    /// The server.
    pub contender: &'static Contender,
    /// The seed model it is, if it is one.
    pub seed: Option<&'static str>,
    /// Worker threads it is given (`None`: it has one thread).
    pub threads: Option<usize>,
    /// Reactors it runs (epoll instances that serve connections).
    pub reactors: usize,
}

/// The rows, in order.
pub fn models() -> Vec<Model> {
    let find = |name: &str| echo::find(name);
    let mut rows = Vec::new();
    let mut push = |name: &str, seed, threads: Option<usize>, reactors| {
        if let Some(contender) = find(name) {
            rows.push(Model {
                contender,
                seed,
                threads,
                reactors,
            });
        }
    };
    push("epitome-ct", Some("single reactor, single thread"), None, 1);
    push(
        "epitome-pool",
        Some("single reactor + worker pool"),
        Some(MODEL_THREADS),
        1,
    );
    push(
        "epitome-mainsub",
        Some("main/sub reactors"),
        Some(MODEL_THREADS),
        MODEL_THREADS,
    );
    for name in [
        "epitome-exclusive",
        "epitome-reuseport",
        "epitome-reuseport-cpu",
        "epitome-balanced",
    ] {
        push(name, None, Some(MODEL_THREADS), MODEL_THREADS);
    }
    // tokio's idiomatic server: one epoll driver shared by its workers.
    push("tokio-mt", None, Some(MODEL_THREADS), 1);
    rows
}

/// One arrival run.
#[derive(Clone, Debug)]
pub struct ArrivalSample {
    /// Connections opened.
    pub connections: usize,
    /// Time to open them all (each with its round trip).
    pub elapsed: Duration,
    /// Voluntary context switches of every server thread meanwhile.
    pub wakeups: u64,
    /// Live connections per reactor, `reactors` entries (most first).
    pub per_reactor: Vec<u64>,
    /// Connect to first echoed byte, ns.
    pub p99_ns: u64,
    /// Server memory with the connections open (the burst run only).
    pub idle: Option<IdleSample>,
}

/// One model's runs.
#[derive(Debug)]
pub struct ModelRuns {
    /// The model.
    pub model: Model,
    /// Connections one at a time.
    pub one: Vec<Measured<ArrivalSample>>,
    /// Connections in bursts.
    pub burst: Vec<Measured<ArrivalSample>>,
    /// The load window.
    pub load: Vec<Measured<LoadSample>>,
}

/// Everything the section measured.
#[derive(Debug)]
pub struct ModelsResults {
    /// Per model.
    pub rows: Vec<ModelRuns>,
    /// The switch costs, or why there are none.
    pub switch: Measured<SwitchCost>,
    /// Bytes of the serve models' connection future (`echo_pooled`), as the compiler
    /// lays it out.
    pub handler_future: usize,
    /// Object sizes of the kernel's eventpoll slabs (`eventpoll_epi`, `eventpoll_pwq`),
    /// or why they could not be read.
    pub kernel_objects: Measured<Vec<(String, u64)>>,
}

/// Runs the section: every model, `runs` times interleaved; then the switch costs.
pub fn collect(setup: &Setup) -> ModelsResults {
    let runs = setup.budget.runs;
    let scenario = Scenario {
        connections: LOAD_CONNECTIONS,
        size: echo::MAIN_SIZE,
        window: setup.budget.models_window,
        perf_window: None,
        open_loop: false,
    };
    let mut rows: Vec<ModelRuns> = models()
        .into_iter()
        .map(|model| ModelRuns {
            model,
            one: Vec::new(),
            burst: Vec::new(),
            load: Vec::new(),
        })
        .collect();
    for run in 0..runs {
        let started = Instant::now();
        show!("{:<22} server models, run {}/{runs}:", "models", run + 1);
        for row in &mut rows {
            let one = arrival_run(setup, &row.model, Arrival::OneAtATime);
            let burst = arrival_run(setup, &row.model, Arrival::Burst);
            let load =
                measure::load_run_with(setup, row.model.contender, row.model.threads, &scenario);
            match (&one, &burst, &load) {
                (Ok(o), Ok(b), Ok(l)) => show!(
                    " {} {:.0}/{:.0} conn/s {:.0}k req/s",
                    row.model.contender.name,
                    o.connections as f64 / o.elapsed.as_secs_f64(),
                    b.connections as f64 / b.elapsed.as_secs_f64(),
                    l.completed as f64 / l.elapsed.as_secs_f64() / 1e3
                ),
                _ => show!(" {} (a run failed)", row.model.contender.name),
            }
            row.one.push(one.map_err(|e| e.to_string()));
            row.burst.push(burst.map_err(|e| e.to_string()));
            row.load.push(load.map_err(|e| e.to_string()));
        }
        println!(" ({:.1} s)", started.elapsed().as_secs_f64());
    }
    let started = Instant::now();
    show!(
        "{:<22} context switch, pipe ping-pong:",
        "seeds' blocking wait"
    );
    let switch = match setup.server_cpu {
        Some(cpu) => ctxsw::measure(cpu).map_err(|e| e.to_string()),
        None => Err("no CPU to pin both parties to apart from the client's".to_owned()),
    };
    match &switch {
        Ok(s) => show!(
            " threads {:.2} µs, processes {:.2} µs",
            s.threads_us,
            s.processes_us
        ),
        Err(e) => show!(" n/a ({e})"),
    }
    println!(" ({:.1} s)", started.elapsed().as_secs_f64());
    ModelsResults {
        rows,
        switch,
        handler_future: echo::epitome_serve::handler_future_size(),
        kernel_objects: kernel_objects(),
    }
}

/// One arrival run of `model` on a fresh server; the burst run also reads memory.
fn arrival_run(setup: &Setup, model: &Model, arrival: Arrival) -> io::Result<ArrivalSample> {
    let mut server = measure::spawn_echo(setup, model.contender, model.threads)?;
    // Let the server finish starting (runtime threads, first allocations), and
    // every worker reach its wait.
    sleep(Duration::from_millis(50));
    let rss0 = server.rss_kib()?;
    let slab0 = super::process::slab_kib()?;
    let before = server.context_switches(None)?;
    let started = Instant::now();
    let count = match arrival {
        Arrival::OneAtATime => setup.budget.models_one_by_one,
        Arrival::Burst => CONNECTIONS,
    };
    let (streams, latency) = arrival.connect(server.addr, count, echo::MAIN_SIZE)?;
    let elapsed = started.elapsed();
    let after = server.context_switches(None)?;
    let idle = if arrival == Arrival::Burst {
        // Let deferred kernel work (socket frees, RCU) settle before reading.
        sleep(Duration::from_millis(100));
        Some(IdleSample {
            connections: streams.len(),
            rss_delta_kib: server.rss_kib()? as i64 - rss0 as i64,
            slab_delta_kib: super::process::slab_kib()? as i64 - slab0 as i64,
            threads: server.threads()?,
        })
    } else {
        None
    };
    let per_reactor = per_reactor(&server, model.reactors);
    let connections = streams.len();
    measure::close(streams);
    server.check_alive()?;
    Ok(ArrivalSample {
        connections,
        elapsed,
        wakeups: after.voluntary.saturating_sub(before.voluntary),
        per_reactor: per_reactor?,
        p99_ns: latency.value_at_quantile(0.99),
        idle,
    })
}

/// Connected sockets registered in each of `server`'s epoll instances, the
/// `reactors` largest counts, most first (padded with 0 for reactors holding none).
fn per_reactor(server: &ServerProcess, reactors: usize) -> io::Result<Vec<u64>> {
    let listening = listening_inodes()?;
    let mut counts = Vec::new();
    for entry in fs::read_dir(format!("/proc/{}/fd", server.pid))? {
        let fd = entry?.file_name().to_string_lossy().into_owned();
        let is_epoll = fd_link(server.pid, &fd).is_some_and(|l| l == "anon_inode:[eventpoll]");
        // A reactor may close between the listing and the read.
        if let (true, Ok(sockets)) = (is_epoll, sockets_in_epoll(server.pid, &fd, &listening)) {
            counts.push(sockets);
        }
    }
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts.resize(reactors.max(1), 0);
    Ok(counts)
}

/// Where fd `fd` of process `pid` points (`socket:[123]`, `anon_inode:[eventpoll]`).
fn fd_link(pid: u32, fd: &str) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// Sockets registered in epoll instance `epoll_fd` of process `pid` that are not in
/// `listening`: its `tfd:` lines in `/proc/PID/fdinfo`.
fn sockets_in_epoll(pid: u32, epoll_fd: &str, listening: &HashSet<u64>) -> io::Result<u64> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{epoll_fd}"))?;
    let mut sockets = 0;
    for line in info.lines() {
        // `tfd:       12 events: ...`
        let Some(target) = line
            .strip_prefix("tfd:")
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        let inode = fd_link(pid, target).and_then(|link| {
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse::<u64>()
                .ok()
        });
        if inode.is_some_and(|inode| !listening.contains(&inode)) {
            sockets += 1;
        }
    }
    Ok(sockets)
}

/// Inodes of the listening TCP sockets of this network namespace.
fn listening_inodes() -> io::Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if fields.get(3) == Some(&"0A") {
                if let Some(inode) = fields.get(9).and_then(|i| i.parse().ok()) {
                    inodes.insert(inode);
                }
            }
        }
    }
    Ok(inodes)
}

/// Object sizes of the eventpoll slabs, from `/proc/slabinfo` (root only).
fn kernel_objects() -> Measured<Vec<(String, u64)>> {
    let text = fs::read_to_string("/proc/slabinfo").map_err(|e| format!("/proc/slabinfo: {e}"))?;
    let objects: Vec<(String, u64)> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            if !name.starts_with("eventpoll_") {
                return None;
            }
            // name active_objs num_objs objsize ...
            let size = fields.nth(2)?.parse().ok()?;
            Some((name.to_owned(), size))
        })
        .collect();
    if objects.is_empty() {
        return Err("no eventpoll slab in /proc/slabinfo (merged into a generic cache)".into());
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use epitome_benches::sys::Epoll;

    use super::*;

    /// An epoll instance of this process holding a listener, both ends of a
    /// connection and a pipe counts the two connected sockets only.
    #[test]
    fn counts_connected_sockets_of_an_epoll() -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (server, _) = listener.accept()?;
        let (pipe, _write_end) = epitome_benches::sys::pipe()?;
        let epoll = Epoll::new()?;
        for fd in [
            listener.as_raw_fd(),
            client.as_raw_fd(),
            server.as_raw_fd(),
            pipe.as_raw_fd(),
        ] {
            epoll.add(fd, libc::EPOLLIN as u32, 0)?;
        }
        let pid = std::process::id();
        let fd = epoll.as_raw_fd().to_string();
        assert_eq!(fd_link(pid, &fd).as_deref(), Some("anon_inode:[eventpoll]"));
        assert_eq!(sockets_in_epoll(pid, &fd, &listening_inodes()?)?, 2);
        // Without knowing the listener, it counts as a socket too.
        assert_eq!(sockets_in_epoll(pid, &fd, &HashSet::new())?, 3);
        // A closed fd is an error, not a count.
        assert!(sockets_in_epoll(pid, "999999", &HashSet::new()).is_err());
        Ok(())
    }
}
