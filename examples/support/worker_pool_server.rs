//! The server of the `worker_pool` example (the seeds' "single reactor + worker pool"
//! model), shared with its test (`tests/worker_pool_example.rs`).
//!
//! One reactor thread does all the I/O: it accepts, reads each request line, and
//! writes each answer. The handler's work, counting the primes up to the number the
//! line asks for, runs on the runtime's blocking pool, so a long computation never
//! stalls the reactor and the other connections it serves.

use std::io;

use epitome::net::TcpListener;
use epitome::net::serve::{self, read_pooled};

/// The largest number a request may ask about (a larger one is refused: the work must
/// stay bounded).
pub const MAX_N: u64 = 50_000_000;

/// The longest request line.
const MAX_LINE: usize = 64;

/// Serves `listener` until `signal` completes (then shuts down gracefully).
pub async fn run(
    listener: TcpListener,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve::serve(listener, |stream, _peer| async move {
        let _ = converse(stream).await;
    })
    .with_graceful_shutdown(signal)
    .await
}

/// Answers each line `N` with `N: P` (the number of primes up to `N`), until the
/// client closes.
async fn converse(stream: epitome::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // A line split across reads waits here; between requests it is empty.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let lines = read_pooled(&stream, |bytes| {
            if bytes.is_empty() {
                return None;
            }
            partial.extend_from_slice(bytes);
            let mut lines = Vec::new();
            while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                lines.push(String::from_utf8_lossy(&line).trim().to_string());
            }
            Some(lines)
        })
        .await?;
        let Some(lines) = lines else {
            return Ok(());
        };
        if partial.len() > MAX_LINE {
            stream.write_all(b"error: line too long\n").await?;
            return Ok(());
        }
        for line in lines {
            let answer = match line.parse::<u64>() {
                Ok(n) if n <= MAX_N => {
                    // The work leaves the reactor thread; the reactor goes on serving
                    // other connections until the answer is back.
                    let primes = epitome::task::spawn_blocking(move || count_primes(n))
                        .await
                        .map_err(io::Error::other)?;
                    format!("{n}: {primes}\n")
                }
                Ok(_) => format!("error: at most {MAX_N}\n"),
                Err(_) => format!("error: `{line}` is not a number\n"),
            };
            stream.write_all(answer.as_bytes()).await?;
        }
    }
}

/// The number of primes up to `n` (a sieve of Eratosthenes).
pub fn count_primes(n: u64) -> u64 {
    let Ok(n) = usize::try_from(n) else {
        return 0;
    };
    if n < 2 {
        return 0;
    }
    let mut composite = vec![false; n + 1];
    let mut count = 0;
    for i in 2..=n {
        if composite[i] {
            continue;
        }
        count += 1;
        let mut j = i.saturating_mul(i);
        while j <= n {
            composite[j] = true;
            j += i;
        }
    }
    count
}
