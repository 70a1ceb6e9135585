//! The tokio-style server, as a user moving from tokio writes it (and as the examples
//! did): accept in `block_on` (off the workers, on a multi-reactor runtime), spawn a
//! task per connection, served with `TcpStream::read` and `write_all`. Each accepted
//! stream registers with the reactor of the worker whose task first waits on it, so its
//! wakeups stay on that worker's thread: under a request / response load at most 2% of
//! the wakes cross threads (the runtime's metrics say which). The same holds for
//! `serve`, whose accept loops run on the workers themselves.

mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::thread::JoinHandle;

use epitome_net::serve::{Strategy, serve};
use epitome_net::{TcpListener, TcpStream};
use epitome_runtime::runtime::RuntimeMetrics;

const CONNECTIONS: usize = 16;
const ROUNDS: usize = 200;

/// Echoes until the client closes.
async fn echo(stream: TcpStream) -> io::Result<()> {
    let mut buf = [0; 64];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// `CONNECTIONS` clients, all connected first, then `ROUNDS` round trips on each in
/// turn.
fn clients(addr: SocketAddr) -> JoinHandle<io::Result<()>> {
    std::thread::spawn(move || {
        let mut streams: Vec<StdStream> = (0..CONNECTIONS)
            .map(|_| StdStream::connect(addr))
            .collect::<io::Result<_>>()?;
        let mut back = [0; 8];
        for round in 0..ROUNDS {
            for s in &mut streams {
                let msg = (round as u64).to_le_bytes();
                s.write_all(&msg)?;
                s.read_exact(&mut back)?;
                assert_eq!(back, msg);
            }
        }
        Ok(())
    })
}

fn assert_wakes_stay_home(m: &RuntimeMetrics, what: &str) {
    let wakes = m.wakeup_count();
    let crossed = m.remote_schedule_count() - m.remote_spawn_count();
    // Quoted in docs/server-models.md.
    eprintln!(
        "{what}: {crossed} of {wakes} wakes crossed threads ({:.2}%)",
        100.0 * crossed as f64 / wakes.max(1) as f64
    );
    assert!(
        wakes > (CONNECTIONS * ROUNDS) as u64 / 2,
        "{what}: the load made too few wakes to judge ({wakes})"
    );
    assert!(
        crossed * 50 <= wakes,
        "{what}: {crossed} of {wakes} wakes crossed threads (more than 2%)"
    );
}

#[test]
fn accept_in_block_on_then_spawn_keeps_wakes_on_their_worker() {
    let _watchdog = util::Watchdog::new("accept in block_on", util::HANG);
    let rt = util::multi(2);
    let m = rt.metrics();
    let clients = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let clients = clients(listener.local_addr()?);
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let (stream, _peer) = listener.accept().await?;
            // Off the workers, `spawn` picks them in turn.
            tasks.push(epitome_runtime::spawn(echo(stream)));
        }
        for t in tasks {
            t.await.map_err(io::Error::other)??;
        }
        Ok::<_, io::Error>(clients)
    });
    clients.unwrap().join().unwrap().unwrap();
    assert_wakes_stay_home(&m, "accept in block_on");
}

#[test]
fn serve_keeps_wakes_on_their_worker() {
    let _watchdog = util::Watchdog::new("serve", util::HANG);
    for strategy in [Strategy::Balanced, Strategy::Exclusive] {
        let rt = util::multi(2);
        let m = rt.metrics();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let clients = clients(listener.local_addr()?);
            let done = async move {
                while !clients.is_finished() {
                    epitome_runtime::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                clients.join().unwrap().unwrap();
            };
            serve(listener, |stream, _| echo(stream))
                .strategy(strategy)
                .with_graceful_shutdown(done)
                .await
        })
        .unwrap();
        // The shutdown's own wakes (the signal's timer) are few next to the load's.
        assert_wakes_stay_home(&m, &format!("serve {strategy:?}"));
    }
}
