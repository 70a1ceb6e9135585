//! A line-based chat server: each line a client sends goes to every other client,
//! prefixed with the sender's name, and everyone hears when someone joins or leaves.
//! Ctrl-C shuts it down gracefully: it stops accepting, tells everyone, lets each client
//! receive what was said before, and waits (up to 5 s) for them to go.
//!
//! ```sh
//! cargo run --release --features full --example chat -- --addr 127.0.0.1:7002 --reactors 2
//! nc 127.0.0.1 7002     # in two or more terminals
//! ```
//!
//! Built from the toolkit: lines go through a broadcast channel
//! ([`epitome::sync::broadcast`]), each client is one task that `select!`s between its
//! socket and the channel, Ctrl-C comes from [`epitome::signal::ctrl_c`], and a `watch`
//! tells the accept loops to stop. Broadcasting never waits on a slow client: the
//! channel keeps the last `BACKLOG` lines, and a client that falls further behind is
//! disconnected. On a multi-reactor runtime there is one accept loop per worker, and a
//! client's task runs on the worker that accepted it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use epitome::net::{TcpListener, TcpStream};
use epitome::sync::{broadcast, mpsc, watch};

#[path = "support/cli.rs"]
mod cli;

const USAGE: &str = "\
usage: chat [--addr ADDR] [--reactors N]
  --addr ADDR     address to listen on (default 127.0.0.1:7002)
  --reactors N    0: current-thread runtime (default); N: multi-reactor, N workers";

/// Lines a client may fall behind before it is disconnected as too slow.
const BACKLOG: usize = 1024;
/// The longest line accepted; a longer one disconnects its sender.
const MAX_LINE: usize = 8 * 1024;
/// How long shutdown waits for clients to take their last lines and go.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The sender id of the server's own announcements.
const SERVER: u64 = 0;

fn main() -> io::Result<()> {
    let flags = cli::Flags::parse(USAGE, &["--addr", "--reactors"]);
    let addr: String = flags.get("--addr", "127.0.0.1:7002".to_string());
    let reactors: usize = flags.get("--reactors", 0);
    // The runtime is chosen on the command line, so it is built by hand rather than
    // with #[epitome::main] (which fixes it at compile time).
    let rt = cli::runtime(reactors)?;
    let workers = rt.metrics().num_workers();
    rt.block_on(serve(addr, reactors, workers))
}

/// A line said in the room, and who said it.
#[derive(Clone)]
struct Line {
    from: u64,
    text: Arc<str>,
}

/// The room: the channel every line goes through, and who is here.
struct Room {
    lines: broadcast::Sender<Line>,
    /// Keeps the channel open while nobody is connected; each client subscribes from it.
    subscribe: broadcast::InactiveReceiver<Line>,
    next_id: AtomicU64,
    here: AtomicUsize,
}

impl Room {
    /// Tells everyone (the sender skips its own lines). Never waits: a full channel
    /// drops its oldest line for whoever has not read it.
    fn say(&self, from: u64, text: String) {
        // Errors: the channel is closed (shutting down) or nobody listens; either way
        // there is no one to tell.
        let _ = self.lines.try_broadcast(Line {
            from,
            text: Arc::from(text),
        });
    }
}

async fn serve(addr: String, reactors: usize, workers: usize) -> io::Result<()> {
    let listener = Arc::new(TcpListener::bind(addr.as_str()).await?);
    println!(
        "chat server listening on {} ({}); Ctrl-C to stop",
        listener.local_addr()?,
        cli::describe(reactors)
    );
    let (lines, rx) = broadcast::channel(BACKLOG);
    let room = Arc::new(Room {
        lines,
        subscribe: rx.deactivate(),
        next_id: AtomicU64::new(SERVER + 1),
        here: AtomicUsize::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    // Every accept loop and client task holds a sender; none sends. When all are gone,
    // `recv` on the receiver fails: that is how shutdown knows everyone has left.
    let (alive, all_gone) = mpsc::channel::<()>(1);

    // Spawned from outside the workers, the accept loops spread over them.
    for _ in 0..workers {
        epitome::spawn(accept_loop(
            listener.clone(),
            room.clone(),
            stopped.clone(),
            alive.clone(),
        ));
    }
    drop(alive);

    epitome::signal::ctrl_c().await?;
    println!(
        "shutting down: {} client(s) connected",
        room.here.load(Ordering::Relaxed)
    );
    let _ = stop.send(true);
    room.say(
        SERVER,
        "* the server is shutting down: goodbye\n".to_string(),
    );
    // Clients read what is left, then see the channel closed and leave.
    room.lines.close();
    match epitome::time::timeout(SHUTDOWN_GRACE, all_gone.recv()).await {
        Ok(_) => println!("every client has left"),
        Err(_) => println!(
            "gave up waiting for {} client(s)",
            room.here.load(Ordering::Relaxed)
        ),
    }
    Ok(())
}

async fn accept_loop(
    listener: Arc<TcpListener>,
    room: Arc<Room>,
    mut stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        epitome::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    epitome::spawn(client(room.clone(), stream, peer, alive.clone()));
                }
                Err(e) => eprintln!("accept: {e}"),
            },
            // Shutdown (or the server dropped its `watch` sender): stop accepting.
            _ = stop.changed() => break,
        }
    }
}

async fn client(room: Arc<Room>, stream: TcpStream, peer: SocketAddr, _alive: mpsc::Sender<()>) {
    let _ = stream.set_nodelay(true);
    let id = room.next_id.fetch_add(1, Ordering::Relaxed);
    let name = format!("guest{id}");
    let mut inbox = room.subscribe.activate_cloned();
    let others = room.here.fetch_add(1, Ordering::Relaxed);
    let welcome = format!("* welcome, {name}: {others} other(s) here\n");
    if stream.write_all(welcome.as_bytes()).await.is_ok() {
        room.say(id, format!("* {name} ({peer}) joined\n"));
        converse(&room, id, &name, &stream, &mut inbox).await;
    }
    room.here.fetch_sub(1, Ordering::Relaxed);
    room.say(id, format!("* {name} left\n"));
}

/// Relays the client's lines to the room and the room's lines to the client, until
/// either side ends.
async fn converse(
    room: &Room,
    id: u64,
    name: &str,
    stream: &TcpStream,
    inbox: &mut broadcast::Receiver<Line>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        // Both futures are cancel-safe: the one that loses gives up nothing.
        epitome::select! {
            read = stream.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&chunk[..n]);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let raw: Vec<u8> = pending.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&raw);
                    let text = text.trim_end_matches(['\r', '\n']);
                    if !text.is_empty() {
                        room.say(id, format!("[{name}] {text}\n"));
                    }
                }
                if pending.len() > MAX_LINE {
                    let _ = stream.write_all(b"* line too long: disconnected\n").await;
                    return;
                }
            }
            line = inbox.recv() => match line {
                Ok(line) => {
                    if line.from != id && stream.write_all(line.text.as_bytes()).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::RecvError::Overflowed(missed)) => {
                    let bye = format!("* you fell {missed} line(s) behind: disconnected\n");
                    let _ = stream.write_all(bye.as_bytes()).await;
                    return;
                }
                // Shutting down, and every line said before was delivered.
                Err(broadcast::RecvError::Closed) => return,
            },
        }
    }
}
