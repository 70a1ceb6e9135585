//! Acceptance test of the `echo` example: its server, run in this process, survives
//! 1,000 concurrent connections each doing 1,000 byte-exact round trips, on a
//! current-thread and on a multi-reactor(2) runtime, and releases every fd afterwards.
//!
//! The server code is the example's own (`examples/support/echo_server.rs`, included
//! below), not a copy. It is written against the facade crate (`epitome::net`, ...),
//! which this package cannot depend on (the facade depends on it), so this test crate
//! names itself `epitome` and re-exports the facade's modules from the crates behind
//! it. Starting the example's binary instead would not work cleanly: it belongs to
//! another package, whose example binaries a test here cannot locate
//! (`CARGO_BIN_EXE_*` exists only for a package's own `[[bin]]` targets), and its fds
//! would not be this process's to count.
//!
//! The two tests take turns (a lock), so each one's fd counts are its own; this file
//! runs as its own test binary, so no other test's fds interfere.

extern crate self as epitome;

pub use epitome_net as net;
pub use epitome_runtime::{runtime, spawn, task};

#[path = "../../examples/support/echo_server.rs"]
mod echo_server;
mod util;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use epitome_net::{TcpListener, TcpStream};
use epitome_runtime::runtime::Runtime;
use epitome_runtime::time;

const CONNECTIONS: usize = 1000;
const ROUNDS: usize = 1000;
/// Bytes per round trip.
const SIZE: usize = 32;
/// How long the round trips may take before the test calls it a hang.
const LOAD_LIMIT: Duration = Duration::from_secs(300);

static TAKE_TURNS: Mutex<()> = Mutex::new(());

#[test]
fn echo_example_current_thread() {
    acceptance("current-thread", util::current_thread);
}

#[test]
fn echo_example_multi_reactor() {
    acceptance("multi-reactor(2)", || util::multi(2));
}

/// The server runs on its own thread and runtime (of the flavour under test); the
/// clients on a current-thread runtime on a thread of their own. Both threads have
/// ended (their thread-locals dropped) when the fds are counted again: a thread-local
/// of a thread still alive, or of the test thread once libtest ends it, would close its
/// fds inside the other test's count.
fn acceptance(flavor: &str, build: fn() -> Runtime) {
    let _turn = TAKE_TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let fds_before = util::fd_count();
    let label = format!("echo example on {flavor}");
    std::thread::scope(|s| {
        let run = s.spawn(|| serve_and_load(&label, build));
        if let Err(panic) = run.join() {
            std::panic::resume_unwind(panic);
        }
    });
    assert_eq!(
        util::fd_count(),
        fds_before,
        "{label}: fds left open after the server and clients are gone"
    );
}

/// The body of [`acceptance`]: serves, loads and checks every byte, and waits until
/// the server has closed every connection.
fn serve_and_load(label: &str, build: fn() -> Runtime) {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = build();
            let listener = rt
                .block_on(TcpListener::bind("127.0.0.1:0"))
                .expect("binding the echo server");
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let _loops = echo_server::start(&rt, listener);
            // Drive the runtime (a current-thread one needs it) until told to stop.
            rt.block_on(async {
                while !stop.load(Ordering::Relaxed) {
                    time::sleep(Duration::from_millis(10)).await;
                }
            });
            // Dropping the runtime cancels the accept loops: the listener closes.
        })
    };
    let addr = addr_rx
        .recv_timeout(util::HANG)
        .expect("the server started");
    let client_rt = util::current_thread();
    // Sockets before the clients connect: the server's listener.
    let sockets_idle = util::socket_count();

    let start = Instant::now();
    // A million round trips take seconds on an idle machine, and several times that
    // on a loaded one: the deadline only catches a hang.
    let _dog = util::Watchdog::new(label, LOAD_LIMIT + util::HANG);
    let load = client_rt.block_on(time::timeout(LOAD_LIMIT, async {
        let mut streams = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let s = TcpStream::connect(addr).await.expect("connect");
            s.set_nodelay(true).unwrap();
            streams.push(s);
        }
        // Both ends of every connection are in this process: all 1,000 are open at
        // once before the first round trip.
        util::wait_until("the server accepted every connection", || {
            util::socket_count() >= sockets_idle + 2 * CONNECTIONS
        })
        .await;
        let clients: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(i, s)| epitome_runtime::spawn(round_trips(i, s)))
            .collect();
        for c in clients {
            c.await.expect("a client task failed");
        }
    }));
    assert!(load.is_ok(), "{label}: no end within {LOAD_LIMIT:?} (hung)");
    let elapsed = start.elapsed();
    eprintln!(
        "{label}: {} round trips of {SIZE} bytes in {:.1} s ({:.0}/s)",
        CONNECTIONS * ROUNDS,
        elapsed.as_secs_f64(),
        (CONNECTIONS * ROUNDS) as f64 / elapsed.as_secs_f64()
    );

    // The clients closed; the server sees end of stream and closes its ends.
    util::wait_sync(
        &format!("{label}: the server closed every connection"),
        || util::socket_count() == sockets_idle,
    );
    stop.store(true, Ordering::Relaxed);
    server.join().expect("the server thread");
    drop(client_rt);
}

/// `ROUNDS` round trips, each a different message, each answer checked byte for byte.
async fn round_trips(conn: usize, s: TcpStream) {
    let mut back = [0u8; SIZE];
    for round in 0..ROUNDS {
        let msg = util::pattern((conn * ROUNDS + round) as u64, SIZE);
        s.write_all(&msg).await.expect("write");
        s.read_exact(&mut back).await.expect("read");
        assert_eq!(&back[..], &msg[..], "connection {conn}, round {round}");
    }
}

/// The bytes of the future `handler` makes.
fn future_bytes<H, F>(_handler: H) -> usize
where
    H: FnOnce(TcpStream) -> F,
{
    std::mem::size_of::<F>()
}

/// The echo's connection future is what an idle connection holds on top of the
/// runtime's own bytes (`epitome-runtime`'s `io::footprint` test): printed for
/// `docs/server-models.md`, and bounded so a buffer never creeps back into it.
#[test]
fn echo_future_holds_no_buffer() {
    let bytes = future_bytes(echo_server::echo);
    eprintln!("echo connection future: {bytes} bytes");
    assert!(bytes < 512, "the echo future is {bytes} bytes");
}
