//! A load client for the `echo` example: opens `--connections` connections and, on
//! each at once, makes `--rounds` round trips of `--size` bytes, checking every byte
//! that comes back; then prints the round trips per second.
//!
//! ```sh
//! cargo run --release --example echo -- --reactors 1 &
//! cargo run --release --example echo_client -- --addr 127.0.0.1:7000 --connections 100 --rounds 10000 --size 64
//! ```
//!
//! Each message differs from the one before (and from those of other connections), so
//! a lost, repeated or misdirected byte is caught; the client then exits with status 1.
//!
//! `--server-pid PID` also measures what an idle connection costs the server: its
//! resident memory (`VmRSS` of `/proc/PID/status`) before the connections open, and
//! after each has made one round trip and the server has had 100 ms to settle:
//!
//! ```sh
//! cargo run --release --example echo -- --reactors 2 & SERVER=$!
//! cargo run --release --example echo_client -- --connections 10000 --rounds 0 --server-pid $SERVER
//! ```
//! `--reactors` picks the client's own runtime, as for the servers (0: current-thread).

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Instant;

use epitome::net::TcpStream;

#[path = "support/cli.rs"]
mod cli;

const USAGE: &str = "\
usage: echo_client [--addr ADDR] [--connections N] [--rounds N] [--size BYTES] [--reactors N] [--server-pid PID]
  --addr ADDR        the echo server (default 127.0.0.1:7000)
  --connections N    connections open at once (default 100)
  --rounds N         round trips per connection (default 10000)
  --size BYTES       bytes per round trip (default 64)
  --reactors N       0: current-thread runtime (default); N: multi-reactor, N workers
  --server-pid PID   print the server's resident memory per idle connection";

fn main() -> io::Result<()> {
    let flags = cli::Flags::parse(
        USAGE,
        &[
            "--addr",
            "--connections",
            "--rounds",
            "--size",
            "--reactors",
            "--server-pid",
        ],
    );
    let server_pid: u32 = flags.get("--server-pid", 0);
    let addr: String = flags.get("--addr", "127.0.0.1:7000".to_string());
    let connections: usize = flags.get("--connections", 100);
    let rounds: usize = flags.get("--rounds", 10_000);
    let size: usize = flags.get("--size", 64).max(1);
    let reactors: usize = flags.get("--reactors", 0);

    let rt = cli::runtime(reactors)?;
    let result = rt.block_on(async {
        let rss_before = (server_pid != 0).then(|| server_rss_kib(server_pid)).transpose()?;
        // Connect everything first, so all connections are open during the run.
        let mut streams = Vec::with_capacity(connections);
        for _ in 0..connections {
            let s = TcpStream::connect(addr.as_str()).await?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        if let Some(before) = rss_before {
            // One round trip each, so the server has accepted and served every one.
            let mut back = [0; 1];
            for s in &streams {
                write_and_read(s, b"x", &mut back).await?;
            }
            epitome::time::sleep(std::time::Duration::from_millis(100)).await;
            let after = server_rss_kib(server_pid)?;
            let delta = after.saturating_sub(before) * 1024;
            println!(
                "server RSS {before} KiB -> {after} KiB with {connections} idle connections: \
                 {} bytes per connection",
                delta / connections.max(1) as u64
            );
        }
        println!(
            "{connections} connections to {addr} open ({}); {rounds} round trips of {size} bytes each",
            cli::describe(reactors)
        );
        let start = Instant::now();
        let tasks: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, s)| epitome::spawn(round_trips(i, s, rounds, size)))
            .collect();
        let mut failures = 0;
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    eprintln!("{e}");
                    failures += 1;
                }
                Err(e) => {
                    eprintln!("a connection's task failed: {e}");
                    failures += 1;
                }
            }
        }
        Ok::<_, io::Error>((start.elapsed(), failures))
    });
    let (elapsed, failures) = result?;
    let total = (connections * rounds) as f64;
    println!(
        "{total} round trips in {:.2} s: {:.0} round trips/s",
        elapsed.as_secs_f64(),
        total / elapsed.as_secs_f64()
    );
    if failures > 0 {
        eprintln!("{failures} of {connections} connections failed");
        std::process::exit(1);
    }
    Ok(())
}

/// `VmRSS` of process `pid`, in KiB.
fn server_rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

/// Byte `j` of round `round` of connection `conn`.
fn byte(conn: usize, round: usize, j: usize) -> u8 {
    (conn.wrapping_mul(131) ^ round.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8
}

async fn round_trips(conn: usize, s: TcpStream, rounds: usize, size: usize) -> io::Result<()> {
    let mut msg = vec![0; size];
    let mut back = vec![0; size];
    for round in 0..rounds {
        for (j, b) in msg.iter_mut().enumerate() {
            *b = byte(conn, round, j);
        }
        write_and_read(&s, &msg, &mut back).await?;
        if let Some(j) = (0..size).find(|&j| back[j] != msg[j]) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "connection {conn}, round {round}, byte {j}: sent {}, got {} back",
                    msg[j], back[j]
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `msg` and reads `back` at the same time, so a message larger than the socket
/// buffers cannot deadlock the client against the server.
async fn write_and_read(s: &TcpStream, msg: &[u8], back: &mut [u8]) -> io::Result<()> {
    let mut write = pin!(s.write_all(msg));
    let mut read = pin!(s.read_exact(back));
    let (mut written, mut got) = (None, None);
    poll_fn(|cx| {
        if written.is_none() {
            if let Poll::Ready(res) = write.as_mut().poll(cx) {
                written = Some(res);
            }
        }
        if got.is_none() {
            if let Poll::Ready(res) = read.as_mut().poll(cx) {
                got = Some(res);
            }
        }
        match (&written, &got) {
            // Either failing ends the round: a failed write leaves the read waiting
            // for bytes never sent.
            (Some(Err(_)), _) | (_, Some(Err(_))) | (Some(_), Some(_)) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    })
    .await;
    match (written, got) {
        (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
        _ => Ok(()),
    }
}
