//! `server`, `herd-server` and `http-server`: run one contender in this process, so
//! that the report can measure exactly that process.
//!
//! The server pins itself to `--cpu` before it starts any thread (threads inherit
//! the mask), asks to be killed when its parent exits, binds, prints the bound
//! address as the first line of stdout and serves until killed.
//!
//! `herd-server` also answers on stdin: each line `stats` is answered on stdout with
//! the workers' counters ([`epitome_benches::herd::format_counts`]).

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::{Arc, mpsc};

use epitome_benches::echo::{self, ServeOptions};
use epitome_benches::herd::{self, HerdConfig, HerdStats};
use epitome_benches::{http, machine, sys};

/// The usage line of `server`.
pub const USAGE: &str = "server <contender> [--addr A] [--threads N] [--cpu C]";
/// The usage line of `herd-server`.
pub const HERD_USAGE: &str = "herd-server <variant> [--addr A] [--workers N] [--cpu C]";
/// The usage line of `http-server`.
pub const HTTP_USAGE: &str = "http-server <contender> [--addr A] [--cpu C]";

/// fds a server may hold: the largest scenario's connections and some to spare.
const NOFILE_WANTED: u64 = (echo::IDLE_CONNECTIONS + 1_000) as u64;

struct Options {
    name: String,
    addr: SocketAddr,
    count: Option<NonZeroUsize>,
    cpu: Option<usize>,
}

/// Parses `<name> [--addr A] [--<count_flag> N] [--cpu C]` (without the count if
/// `count_flag` is `None`).
fn parse(args: &[String], count_flag: Option<&str>) -> Result<Options, String> {
    let mut it = args.iter();
    let name = it.next().ok_or("missing the name")?.clone();
    let mut options = Options {
        name,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        count: None,
        cpu: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => {
                options.addr = value.parse().map_err(|e| format!("--addr {value}: {e}"))?;
            }
            "--cpu" => {
                options.cpu = Some(value.parse().map_err(|e| format!("--cpu {value}: {e}"))?);
            }
            f if Some(f) == count_flag => {
                options.count = Some(value.parse().map_err(|e| format!("{f} {value}: {e}"))?);
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(options)
}

/// What every server does before serving.
fn prepare(cpu: Option<usize>) -> io::Result<()> {
    sys::die_with_parent()?;
    if let Some(cpu) = cpu {
        machine::pin_to_cpu(cpu)?;
    }
    if let Err(short) = machine::raise_nofile(NOFILE_WANTED) {
        eprintln!("warning: {short}");
    }
    Ok(())
}

fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{addr}")?;
    out.flush()
}

/// Runs `server`; `args` are the arguments after the command name.
pub fn main(args: &[String]) -> ExitCode {
    let options = match parse(args, Some("--threads")) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("server: {e}\nusage: epitome-benches {USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(contender) = echo::find(&options.name) else {
        let names: Vec<_> = echo::CONTENDERS
            .iter()
            .chain(echo::MODELS)
            .map(|c| c.name)
            .collect();
        eprintln!(
            "server: unknown contender `{}`; one of: {}",
            options.name,
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let run = || -> io::Result<()> {
        prepare(options.cpu)?;
        let listener = sys::listen(options.addr, echo::wants_reuseport(contender.name))?;
        announce(listener.local_addr()?)?;
        let serve_options = ServeOptions {
            threads: options.count,
        };
        (contender.serve)(listener, &serve_options)
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server {}: {e}", contender.name);
            ExitCode::FAILURE
        }
    }
}

/// Runs `herd-server`; `args` are the arguments after the command name.
pub fn herd_main(args: &[String]) -> ExitCode {
    let options = match parse(args, Some("--workers")) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("herd-server: {e}\nusage: epitome-benches {HERD_USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(variant) = herd::find(&options.name) else {
        let names: Vec<_> = herd::VARIANTS.iter().map(|v| v.name).collect();
        eprintln!(
            "herd-server: unknown variant `{}`; one of: {}",
            options.name,
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let workers = options.count.map_or(herd::WORKERS, NonZeroUsize::get);
    let run = || -> io::Result<()> {
        prepare(options.cpu)?;
        let stats = Arc::new(HerdStats::new(workers));
        let (bound, address) = mpsc::channel();
        let config = HerdConfig {
            addr: options.addr,
            workers,
            stats: Arc::clone(&stats),
            bound,
        };
        let server = std::thread::Builder::new()
            .name("herd-main".into())
            .spawn(move || (variant.run)(config))?;
        let Ok(addr) = address.recv() else {
            // The server stopped before it listened: its error says why.
            return server
                .join()
                .map_err(|_| io::Error::other("the herd server panicked"))?;
        };
        announce(addr)?;
        // Answer `stats` requests until stdin closes (the report is done).
        for line in io::stdin().lock().lines() {
            if line?.trim() == "stats" {
                let mut out = io::stdout().lock();
                writeln!(out, "{}", herd::format_counts(&stats.snapshot()))?;
                out.flush()?;
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herd-server {}: {e}", variant.name);
            ExitCode::FAILURE
        }
    }
}

/// Runs `http-server`; `args` are the arguments after the command name.
pub fn http_main(args: &[String]) -> ExitCode {
    let options = match parse(args, None) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("http-server: {e}\nusage: epitome-benches {HTTP_USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(contender) = http::find(&options.name) else {
        let names: Vec<_> = http::CONTENDERS.iter().map(|c| c.name).collect();
        eprintln!(
            "http-server: unknown contender `{}`; one of: {}",
            options.name,
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let run = || -> io::Result<()> {
        prepare(options.cpu)?;
        let listener = sys::listen(options.addr, false)?;
        announce(listener.local_addr()?)?;
        (contender.serve)(listener)
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-server {}: {e}", contender.name);
            ExitCode::FAILURE
        }
    }
}
