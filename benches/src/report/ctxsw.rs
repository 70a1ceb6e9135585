//! The seeds' cost of a blocking wait, measured: a context switch between two threads
//! and between two processes on one CPU, by a pinned pipe ping-pong (lmbench's
//! `lat_ctx` method, with tokens of one byte and no working set).
//!
//! Two parties pinned to the same CPU pass a byte back and forth over two pipes;
//! each `read` blocks until the other side has written, so every hand-off is a
//! switch. A round trip is two switches plus two `write`s and two `read`s; the same
//! `write` + `read` on one pipe in one thread, which never blocks, is the overhead
//! taken off: net µs per switch = (round trip − 2 × (write + read)) / 2. The raw
//! figure (round trip / 2) is shown beside it.

use std::io::{self, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use epitome_benches::{machine, sys};

/// The usage line of the peer command (run by the report, not by hand).
pub const PEER_USAGE: &str = "ctxsw-peer [--cpu C]";

/// Round trips per measurement; a few thousand more are run first, unrecorded.
const ROUND_TRIPS: u32 = 20_000;
const WARMUP: u32 = 2_000;
/// Measurements of each kind; the report takes the median.
const REPEATS: usize = 5;

/// What one report measured.
#[derive(Clone, Copy, Debug)]
pub struct SwitchCost {
    /// Between two threads of a process, µs per switch (overhead taken off).
    pub threads_us: f64,
    /// Between two processes, µs per switch (overhead taken off).
    pub processes_us: f64,
    /// Round trip / 2, threads, µs (with the pipe syscalls).
    pub threads_raw_us: f64,
    /// Round trip / 2, processes, µs.
    pub processes_raw_us: f64,
    /// One `write` + `read` of a byte on a pipe, without blocking, µs.
    pub pipe_us: f64,
    /// Round trips per measurement.
    pub round_trips: u32,
    /// Measurements of each kind.
    pub repeats: usize,
}

/// Measures both switches on `cpu`, from a thread of this process pinned there.
pub fn measure(cpu: usize) -> io::Result<SwitchCost> {
    std::thread::scope(|s| {
        s.spawn(|| {
            machine::pin_to_cpu(cpu)?;
            let mut pipe = Vec::new();
            let mut threads = Vec::new();
            let mut processes = Vec::new();
            // Interleaved, so drift touches all three alike.
            for _ in 0..REPEATS {
                pipe.push(pipe_overhead()?);
                threads.push(threads_round_trip(cpu)?);
                processes.push(processes_round_trip(cpu)?);
            }
            let pipe_us = median_us(pipe);
            let threads_rt = median_us(threads);
            let processes_rt = median_us(processes);
            Ok(SwitchCost {
                threads_us: (threads_rt - 2.0 * pipe_us) / 2.0,
                processes_us: (processes_rt - 2.0 * pipe_us) / 2.0,
                threads_raw_us: threads_rt / 2.0,
                processes_raw_us: processes_rt / 2.0,
                pipe_us,
                round_trips: ROUND_TRIPS,
                repeats: REPEATS,
            })
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the ping-pong thread panicked")))
    })
}

fn median_us(mut per_op: Vec<Duration>) -> f64 {
    per_op.sort_unstable();
    per_op
        .get(per_op.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

/// One byte written and read back on one pipe, in this thread: never blocks.
fn pipe_overhead() -> io::Result<Duration> {
    let (mut rx, mut tx) = sys::pipe()?;
    let mut byte = [0u8; 1];
    let mut once = || -> io::Result<()> {
        tx.write_all(&byte)?;
        rx.read_exact(&mut byte)
    };
    for _ in 0..WARMUP {
        once()?;
    }
    let started = Instant::now();
    for _ in 0..ROUND_TRIPS {
        once()?;
    }
    Ok(started.elapsed() / ROUND_TRIPS)
}

/// Per round trip, this thread against a thread pinned to the same `cpu`.
fn threads_round_trip(cpu: usize) -> io::Result<Duration> {
    let (mut to_peer_rx, mut to_peer) = sys::pipe()?;
    let (mut from_peer, mut from_peer_tx) = sys::pipe()?;
    let peer = std::thread::spawn(move || -> io::Result<()> {
        machine::pin_to_cpu(cpu)?;
        echo_bytes(&mut to_peer_rx, &mut from_peer_tx)
    });
    let timed = ping(&mut to_peer, &mut from_peer);
    // End of stream ends the peer.
    drop(to_peer);
    let ended = peer
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the peer thread panicked")));
    let timed = timed?;
    ended?;
    Ok(timed)
}

/// Per round trip, this thread against a process (`ctxsw-peer`) pinned to `cpu`.
fn processes_round_trip(cpu: usize) -> io::Result<Duration> {
    let mut child = Command::new("/proc/self/exe")
        .args(["ctxsw-peer", "--cpu", &cpu.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let (Some(mut to_peer), Some(mut from_peer)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("no pipes to the peer process"));
    };
    let timed = ping(&mut to_peer, &mut from_peer);
    drop(to_peer);
    if timed.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    let timed = timed?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "the peer process ended: {status}"
        )));
    }
    Ok(timed)
}

/// Sends a byte and waits for it back, [`WARMUP`] then [`ROUND_TRIPS`] times; the
/// time per measured round trip.
fn ping(to: &mut impl Write, from: &mut impl Read) -> io::Result<Duration> {
    let mut byte = [0u8; 1];
    let mut once = || -> io::Result<()> {
        to.write_all(&byte)?;
        from.read_exact(&mut byte)
    };
    for _ in 0..WARMUP {
        once()?;
    }
    let started = Instant::now();
    for _ in 0..ROUND_TRIPS {
        once()?;
    }
    Ok(started.elapsed() / ROUND_TRIPS)
}

/// Writes back every byte read, until end of stream.
fn echo_bytes(from: &mut impl Read, to: &mut impl Write) -> io::Result<()> {
    let mut byte = [0u8; 1];
    loop {
        match from.read(&mut byte)? {
            0 => return Ok(()),
            _ => {
                to.write_all(&byte)?;
                // Stdout is line-buffered; a pipe's flush does nothing.
                to.flush()?;
            }
        }
    }
}

/// `ctxsw-peer`: pins itself to `--cpu` and echoes stdin to stdout byte by byte.
pub fn peer_main(args: &[String]) -> ExitCode {
    let cpu = match args {
        [] => None,
        [flag, cpu] if flag == "--cpu" => match cpu.parse() {
            Ok(cpu) => Some(cpu),
            Err(e) => {
                eprintln!("ctxsw-peer: --cpu {cpu}: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: epitome-benches {PEER_USAGE}");
            return ExitCode::from(2);
        }
    };
    let run = || -> io::Result<()> {
        if let Some(cpu) = cpu {
            machine::pin_to_cpu(cpu)?;
        }
        echo_bytes(&mut io::stdin().lock(), &mut io::stdout().lock())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctxsw-peer: {e}");
            ExitCode::FAILURE
        }
    }
}
