//! A process supervisor: runs a command, forwards its stdout and stderr line by line,
//! restarts it when it exits (waiting longer after each quick failure), and on Ctrl-C
//! stops it — SIGTERM, then SIGKILL if it has not exited within 5 s — and exits.
//!
//! ```sh
//! cargo run --features full --example supervisor -- sh -c 'echo up; sleep 1; echo down >&2; exit 3'
//! cargo run --features full --example supervisor -- --restarts 2 false
//! ```
//!
//! Built from the toolkit: `#[epitome::main]`, [`epitome::process`] (the child's exit
//! is an event on the reactor, through its pidfd), [`epitome::signal`] for Ctrl-C, and
//! `select!` / `join!`. The child runs in a process group of its own, so a Ctrl-C in
//! the terminal reaches only the supervisor, which decides how the child stops.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use epitome::process::{Child, Command};
use epitome::signal::unix::{Signal, SignalKind, signal};
use futures_util::io::{AsyncBufReadExt, AsyncRead, BufReader};
use futures_util::stream::StreamExt;

const USAGE: &str = "\
usage: supervisor [--restarts N] PROGRAM [ARGS...]
  --restarts N    restart the program at most N times (default: without limit)";

/// A run shorter than this counts as a quick failure: the next start waits longer.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[epitome::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let (max_restarts, command) = parse_args();
    // One listener for the whole run, made before the first child starts: a Ctrl-C at
    // any moment from here on is seen.
    let mut ctrl_c = signal(SignalKind::interrupt())?;
    let mut restarts = 0u64;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // If the supervisor itself fails, the child does not outlive it.
            .kill_on_drop(true)
            .spawn()
            .inspect_err(|e| eprintln!("[supervisor] cannot start {}: {e}", command[0]))?;
        println!("[supervisor] started {} (pid {:?})", command[0], child.id());
        let stdout = child
            .stdout
            .take()
            .map(|out| epitome::spawn(forward("out", out)));
        let stderr = child
            .stderr
            .take()
            .map(|err| epitome::spawn(forward("err", err)));

        let exited = epitome::select! {
            status = child.wait() => Some(status?),
            _ = ctrl_c.recv() => None,
        };
        let status = match exited {
            Some(status) => status,
            None => {
                println!("[supervisor] Ctrl-C: stopping the child");
                let status = stop(&mut child).await?;
                finish_forwarding(stdout, stderr).await;
                println!("[supervisor] child stopped ({status}); exiting");
                return Ok(());
            }
        };
        finish_forwarding(stdout, stderr).await;
        println!("[supervisor] child exited: {status}");

        if max_restarts.is_some_and(|max| restarts >= max) {
            println!("[supervisor] {restarts} restart(s) used up; exiting");
            return Ok(());
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        restarts += 1;
        println!("[supervisor] restart #{restarts} in {backoff:?}");
        if !wait_or_ctrl_c(backoff, &mut ctrl_c).await {
            println!("[supervisor] Ctrl-C: exiting");
            return Ok(());
        }
        // Each quick failure doubles the wait before the next start.
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Copies a pipe to our stdout line by line, prefixed with the stream's name.
async fn forward(tag: &'static str, pipe: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(pipe).lines();
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => println!("[{tag}] {line}"),
            Err(e) => {
                eprintln!("[supervisor] reading the child's {tag}: {e}");
                break;
            }
        }
    }
}

/// Waits for the forwarding tasks to reach the end of the child's output.
async fn finish_forwarding(
    stdout: Option<epitome::task::JoinHandle<()>>,
    stderr: Option<epitome::task::JoinHandle<()>>,
) {
    let (_, _) = epitome::join!(
        async {
            if let Some(t) = stdout {
                let _ = t.await;
            }
        },
        async {
            if let Some(t) = stderr {
                let _ = t.await;
            }
        },
    );
}

/// SIGTERM, then SIGKILL if the child is still running after `STOP_GRACE`.
async fn stop(child: &mut Child) -> io::Result<ExitStatus> {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's pid, which stays ours until it is reaped
        // (by `wait` below, not before).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    match epitome::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            println!("[supervisor] no exit {STOP_GRACE:?} after SIGTERM: killing");
            child.kill().await?;
            child.wait().await
        }
    }
}

/// Sleeps for `delay`; false if Ctrl-C came first.
async fn wait_or_ctrl_c(delay: Duration, ctrl_c: &mut Signal) -> bool {
    epitome::select! {
        _ = epitome::time::sleep(delay) => true,
        _ = ctrl_c.recv() => false,
    }
}

fn parse_args() -> (Option<u64>, Vec<String>) {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut max_restarts = None;
    if args.first().map(String::as_str) == Some("--restarts") {
        match args.get(1).and_then(|n| n.parse().ok()) {
            Some(n) => max_restarts = Some(n),
            None => usage("`--restarts` needs a number"),
        }
        args.drain(..2);
    }
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        usage("no program to run");
    }
    (max_restarts, args)
}

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}\n\n{USAGE}");
    std::process::exit(2);
}
