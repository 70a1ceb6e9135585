//! A line-based chat server: each line a client sends goes to every other client,
//! prefixed with the sender's name, and everyone hears when someone joins or leaves.
//!
//! ```sh
//! cargo run --release --example chat -- --addr 127.0.0.1:7002 --reactors 2
//! nc 127.0.0.1 7002     # in two or more terminals
//! ```
//!
//! Each client is two tasks: one reads its lines and broadcasts them, one writes what
//! others said, from an outbox (a queue with a waker, built here on `std::sync::Mutex`).
//! Broadcasting never waits on a slow client: a client whose outbox holds
//! `OUTBOX_LIMIT` unsent lines is disconnected instead. On a multi-reactor runtime the
//! clients are spread over the workers, and a line crosses them through the outboxes'
//! wakers.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use epitome::net::{TcpListener, TcpStream};

#[path = "support/cli.rs"]
mod cli;

const USAGE: &str = "\
usage: chat [--addr ADDR] [--reactors N]
  --addr ADDR     address to listen on (default 127.0.0.1:7002)
  --reactors N    0: current-thread runtime (default); N: multi-reactor, N workers";

/// Unsent lines a client may have queued before it is disconnected as too slow.
const OUTBOX_LIMIT: usize = 1024;
/// The longest line accepted; a longer one disconnects its sender.
const MAX_LINE: usize = 8 * 1024;

fn main() -> io::Result<()> {
    let flags = cli::Flags::parse(USAGE, &["--addr", "--reactors"]);
    let addr: String = flags.get("--addr", "127.0.0.1:7002".to_string());
    let reactors: usize = flags.get("--reactors", 0);

    let rt = cli::runtime(reactors)?;
    let listener = Arc::new(rt.block_on(TcpListener::bind(addr.as_str()))?);
    println!(
        "chat server listening on {} ({})",
        listener.local_addr()?,
        cli::describe(reactors)
    );
    let room = Arc::new(Room::default());
    // One accept loop per worker (spawned from outside the runtime, they spread over
    // the workers); each client's tasks run on the worker that accepted it.
    let loops: Vec<_> = (0..rt.metrics().num_workers())
        .map(|_| {
            let (listener, room) = (listener.clone(), room.clone());
            rt.spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            epitome::spawn(client(room.clone(), stream, peer));
                        }
                        Err(e) => eprintln!("accept: {e}"),
                    }
                }
            })
        })
        .collect();
    rt.block_on(async {
        for l in loops {
            let _ = l.await;
        }
    });
    Ok(())
}

/// Everyone connected, by id.
#[derive(Default)]
struct Room {
    next_id: AtomicU64,
    members: Mutex<HashMap<u64, Arc<Outbox>>>,
}

impl Room {
    fn join(&self) -> (u64, Arc<Outbox>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let outbox = Arc::new(Outbox::default());
        self.lock().insert(id, outbox.clone());
        (id, outbox)
    }

    fn leave(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// How many are here.
    fn count(&self) -> usize {
        self.lock().len()
    }

    /// Queues `line` for everyone but `from`. Never waits.
    fn broadcast(&self, from: u64, line: &str) {
        let line: Arc<str> = Arc::from(line);
        for (_, outbox) in self.lock().iter().filter(|(id, _)| **id != from) {
            outbox.push(line.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Outbox>>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Lines waiting to be written to one client, and the waker of its writer task.
#[derive(Default)]
struct Outbox {
    state: Mutex<OutboxState>,
}

#[derive(Default)]
struct OutboxState {
    lines: VecDeque<Arc<str>>,
    writer: Option<Waker>,
    closed: bool,
}

impl Outbox {
    /// Queues a line; closes the outbox instead if the client is too far behind.
    fn push(&self, line: Arc<str>) {
        let waker = {
            let mut s = self.lock();
            if s.closed {
                return;
            }
            if s.lines.len() >= OUTBOX_LIMIT {
                s.closed = true;
            } else {
                s.lines.push_back(line);
            }
            s.writer.take()
        };
        // Woken outside the lock: the writer may run on another worker at once.
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn close(&self) {
        let waker = {
            let mut s = self.lock();
            s.closed = true;
            s.writer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The next line to write; `None` once the outbox is closed (queued lines are
    /// dropped then: the client is leaving, or too slow to keep).
    async fn next(&self) -> Option<Arc<str>> {
        poll_fn(|cx| {
            let mut s = self.lock();
            if s.closed {
                return Poll::Ready(None);
            }
            match s.lines.pop_front() {
                Some(line) => Poll::Ready(Some(line)),
                None => {
                    s.writer = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn client(room: Arc<Room>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (id, outbox) = room.join();
    let name = format!("guest{id}");
    let (mut reader, mut writer) = stream.into_split();

    // The writer: the outbox to the socket. Dropping the write half at the end shuts
    // the connection down for writing.
    let writer_task = {
        let outbox = outbox.clone();
        epitome::spawn(async move {
            while let Some(line) = outbox.next().await {
                if writer.write_all(line.as_bytes()).await.is_err() {
                    // The client is gone; stop queuing for it.
                    outbox.close();
                    break;
                }
            }
        })
    };
    outbox.push(Arc::from(format!(
        "* welcome, {name}: {} other(s) here\n",
        room.count() - 1
    )));
    room.broadcast(id, &format!("* {name} ({peer}) joined\n"));

    // The reader: split the bytes into lines and broadcast each.
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 4096];
    'read: loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&raw);
            let text = text.trim_end_matches(['\r', '\n']);
            if !text.is_empty() {
                room.broadcast(id, &format!("[{name}] {text}\n"));
            }
        }
        if pending.len() > MAX_LINE || outbox.is_closed() {
            break 'read;
        }
    }
    room.leave(id);
    outbox.close();
    room.broadcast(id, &format!("* {name} left\n"));
    let _ = writer_task.await;
}
