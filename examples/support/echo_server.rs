//! The server of the `echo` example, shared with its acceptance test
//! (`net/tests/echo_example.rs`), which runs this very code in-process.
//!
//! One accept loop per worker, all on one listener (each worker registers it in its own
//! reactor, and one incoming connection wakes one of them); each connection is served by
//! a task on the worker that accepted it, echoing every byte back until the client
//! closes.

use std::io;
use std::sync::Arc;

use epitome::net::{TcpListener, TcpStream};
use epitome::runtime::Runtime;
use epitome::task::JoinHandle;

/// Starts serving `listener` on `rt`: one accept loop per worker. Call it from outside
/// the runtime (from `main`), so that `Runtime::spawn` spreads the loops over the
/// workers. The loops run until the runtime is dropped.
pub fn start(rt: &Runtime, listener: TcpListener) -> Vec<JoinHandle<()>> {
    let listener = Arc::new(listener);
    (0..rt.metrics().num_workers())
        .map(|_| rt.spawn(accept_loop(listener.clone())))
        .collect()
}

async fn accept_loop(listener: Arc<TcpListener>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                epitome::spawn(async move {
                    // A failed connection (reset by the client, say) has nobody left to
                    // tell.
                    let _ = echo(stream).await;
                });
            }
            // Out of fds and the like: the connection waits in the backlog, the next
            // `accept` backs off a little first, and the connections already accepted
            // are served meanwhile.
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

/// Echoes until the client closes.
async fn echo(stream: TcpStream) -> io::Result<()> {
    // Replies are small and answer a request each: send them at once.
    stream.set_nodelay(true)?;
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}
