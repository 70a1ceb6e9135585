//! The server of the `echo` example, shared with its acceptance test
//! (`net/tests/echo_example.rs`), which runs this very code in-process.
//!
//! The listener is served by `epitome::net::serve` on every worker of the runtime,
//! with an accept strategy (`Balanced` by default: one wakeup per connection, and the
//! connections spread evenly over the workers). Each connection is a task on the worker
//! whose reactor serves it, echoing every byte back until the client closes.
//!
//! The echo is readiness-first: the task waits for the connection to become readable
//! holding no buffer, then reads into its worker's buffer (`serve::read_pooled`) and
//! writes the bytes straight back. So an idle connection costs its task and the
//! reactor's few hundred bytes, not a read buffer (`docs/server-models.md` measures
//! it).

use std::io;

use epitome::net::serve::{self, Strategy};
use epitome::net::{TcpListener, TcpStream};
use epitome::runtime::Runtime;
use epitome::task::JoinHandle;

/// Starts serving `listener` on `rt` with the default strategy (see [`start_with`]).
// The acceptance test's entry point; the example itself takes a `--strategy`.
#[allow(dead_code)]
pub fn start(rt: &Runtime, listener: TcpListener) -> JoinHandle<()> {
    start_with(rt, listener, Strategy::default())
}

/// Starts serving `listener` on `rt`'s workers with `strategy`, until the runtime is
/// dropped (which cancels the server and closes the listener).
pub fn start_with(rt: &Runtime, listener: TcpListener, strategy: Strategy) -> JoinHandle<()> {
    rt.spawn(async move {
        // The handler's future is `echo`'s own: wrapping it in `async move { .. }`
        // would keep the stream and the echo's state side by side in every task.
        let served = serve::serve(listener, |stream, _peer| echo(stream))
            .strategy(strategy)
            .await;
        // Accept errors never stop `serve`; only a setup error (a `ReusePort`
        // listener without SO_REUSEPORT, say) ends up here.
        if let Err(e) = served {
            eprintln!("serve: {e}");
        }
    })
}

/// Echoes until the client closes (a failed connection, reset by the client say,
/// has nobody left to tell).
pub async fn echo(stream: TcpStream) {
    let _ = echo_bytes(&stream).await;
}

async fn echo_bytes(stream: &TcpStream) -> io::Result<()> {
    // Replies are small and answer a request each: send them at once.
    stream.set_nodelay(true)?;
    loop {
        // Waits holding no buffer; answers from the worker's buffer what the socket
        // takes at once, and copies out only the rest (when the client reads slower
        // than it writes).
        let rest = serve::read_pooled(stream, |bytes| {
            if bytes.is_empty() {
                return Ok(None);
            }
            let sent = match stream.try_write(bytes) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            Ok(Some(bytes[sent..].to_vec()))
        })
        .await??;
        match rest {
            // End of stream.
            None => return Ok(()),
            Some(rest) => stream.write_all(&rest).await?,
        }
    }
}
