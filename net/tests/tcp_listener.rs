//! `TcpListener`: every public method, accepting from several tasks and workers,
//! cancelled accepts, and accepting at the fd limit (`EMFILE`, in a child process).

mod util;

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use epitome_net::{TcpListener, TcpStream};
use epitome_runtime::runtime::Runtime;
use epitome_runtime::{spawn, task, time};
use futures_core::Stream;
use futures_util::StreamExt;
use futures_util::future::join;
use util::{FdId, assert_pending, each_flavor, within};

#[test]
fn bind_accept_and_addresses() {
    each_flavor("bind_accept_and_addresses", || async {
        let l = util::listener().await;
        let addr = l.local_addr().unwrap();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let (c, a) = join(TcpStream::connect(addr), l.accept()).await;
        let c = c.unwrap();
        let (a, peer) = a.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        assert_eq!(a.peer_addr().unwrap(), peer);
        c.write_all(b"hi").await.unwrap();
        let mut buf = [0; 2];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");
    });
}

#[test]
fn bind_errors_and_each_address_in_turn() {
    each_flavor("bind_errors_and_each_address_in_turn", || async {
        let l = util::listener().await;
        let taken = l.local_addr().unwrap();
        // The port is listened on: binding it again fails, even with SO_REUSEADDR.
        let e = TcpListener::bind(taken).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        // A list of addresses: the first that binds wins.
        let free: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let l2 = TcpListener::bind(&[taken, free][..]).await.unwrap();
        assert_ne!(l2.local_addr().unwrap(), taken);
        // An empty list is an error, not a hang.
        let none: [SocketAddr; 0] = [];
        let e = TcpListener::bind(none).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
}

#[test]
fn bind_ipv6_loopback_if_available() {
    each_flavor("bind_ipv6_loopback_if_available", || async {
        let Ok(l) = TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        let addr = l.local_addr().unwrap();
        assert!(addr.is_ipv6());
        let (c, a) = util::tcp_pair_on(&l, addr).await;
        c.write_all(b"six").await.unwrap();
        let mut buf = [0; 3];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"six");
    });
}

#[test]
fn options_fd_debug_and_std_conversions() {
    each_flavor("options_fd_debug_and_std_conversions", || async {
        let l = util::listener().await;
        let addr = l.local_addr().unwrap();
        l.set_ttl(33).unwrap();
        assert_eq!(l.ttl().unwrap(), 33);
        assert!(l.take_error().unwrap().is_none());
        assert_eq!(l.resource_errors(), 0);
        assert_eq!(l.as_fd().as_raw_fd(), l.as_raw_fd());
        let dbg = format!("{l:?}");
        assert!(
            dbg.contains("TcpListener") && dbg.contains(&addr.to_string()),
            "{dbg}"
        );

        // into_std after it was registered (by an accept), then back with from_std and
        // TryFrom; a connection queued meanwhile is still there.
        let (c, _a) = util::tcp_pair_on(&l, addr).await;
        drop(c);
        let std_l = l.into_std().unwrap();
        let std_c = std::net::TcpStream::connect(addr).unwrap();
        let l = TcpListener::from_std(std_l).unwrap();
        let (a, peer) = within("accept after from_std", l.accept()).await.unwrap();
        assert_eq!(peer, std_c.local_addr().unwrap());
        drop(a);
        let std_l = l.into_std().unwrap();
        let l = TcpListener::try_from(std_l).unwrap();
        let (c, a) = util::tcp_pair_on(&l, addr).await;
        drop((c, a));

        // A std listener that is still blocking is made non-blocking by from_std: an
        // accept with nothing queued waits instead of blocking the worker.
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l = TcpListener::from_std(std_l).unwrap();
        assert_pending("accept with nothing queued", l.accept()).await;
    });
}

#[test]
fn incoming_stream() {
    each_flavor("incoming_stream", || async {
        let l = util::listener().await;
        let addr = l.local_addr().unwrap();
        let mut incoming = l.incoming();
        assert!(format!("{incoming:?}").contains("Incoming"));
        assert_eq!(incoming.size_hint(), (0, None));
        let clients = spawn(async move {
            let mut v = Vec::new();
            for _ in 0..5 {
                v.push(TcpStream::connect(addr).await.unwrap());
            }
            v
        });
        let mut peers = HashSet::new();
        for _ in 0..5 {
            let s = within("incoming.next", incoming.next())
                .await
                .expect("incoming never ends")
                .unwrap();
            peers.insert(s.peer_addr().unwrap());
        }
        let clients = clients.await.unwrap();
        let expected: HashSet<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        assert_eq!(peers, expected);
        // A pending `next` is cancel-safe like accept.
        assert_pending("incoming.next with nothing queued", incoming.next()).await;
        drop(incoming);
        let (c, a) = util::tcp_pair_on(&l, addr).await;
        drop((c, a));
    });
}

#[test]
fn many_acceptors_on_all_workers_each_connection_once() {
    each_flavor(
        "many_acceptors_on_all_workers_each_connection_once",
        || async {
            let l = Arc::new(util::listener().await);
            let addr = l.local_addr().unwrap();
            let accepted = Arc::new(AtomicUsize::new(0));
            const CONNS: usize = 200;
            // Eight accept loops, spread over the workers (spawned from outside them).
            let mut acceptors = Vec::new();
            for _ in 0..8 {
                let (l, accepted) = (l.clone(), accepted.clone());
                acceptors.push(spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let (s, peer) = l.accept().await.unwrap();
                        accepted.fetch_add(1, Ordering::Relaxed);
                        // The client sends its index; answer it back.
                        let mut b = [0; 2];
                        s.read_exact(&mut b).await.unwrap();
                        s.write_all(&b).await.unwrap();
                        mine.push(peer);
                        if accepted.load(Ordering::Relaxed) >= CONNS {
                            return mine;
                        }
                    }
                }));
            }
            let mut clients = Vec::new();
            for i in 0..CONNS as u16 {
                clients.push(spawn(async move {
                    let c = TcpStream::connect(addr).await.unwrap();
                    c.write_all(&i.to_be_bytes()).await.unwrap();
                    let mut b = [0; 2];
                    c.read_exact(&mut b).await.unwrap();
                    assert_eq!(u16::from_be_bytes(b), i);
                }));
            }
            for c in clients {
                within("client", c).await.unwrap();
            }
            util::wait_until("all accepted", || accepted.load(Ordering::Relaxed) >= CONNS).await;
            assert_eq!(accepted.load(Ordering::Relaxed), CONNS);
            // The loops that did not see the last connection are still waiting: stop them.
            for a in acceptors {
                a.abort();
                let _ = a.await;
            }
            assert_eq!(l.resource_errors(), 0);
        },
    );
}

#[test]
fn cancelled_accepts_strand_no_connection() {
    each_flavor("cancelled_accepts_strand_no_connection", || async {
        let baseline = util_registered();
        let l = Arc::new(util::listener().await);
        let addr = l.local_addr().unwrap();
        // Plain cancellation: a pending accept dropped, then a connection arrives.
        for _ in 0..3 {
            assert_pending("accept with nothing queued", l.accept()).await;
        }
        let (c, a) = util::tcp_pair_on(&l, addr).await;
        drop((c, a));

        // Racing cancellation: two accepting tasks, one aborted just as a connection
        // arrives (it may be the one woken for it). The other must get the connection.
        // Both on one worker (spawned from a task, they stay on its worker): across
        // workers see `cancelled_woken_accept_on_one_worker_strands_the_other`.
        let racing = {
            let l = l.clone();
            spawn(async move {
                for round in 0..200 {
                    let victim = {
                        let l = l.clone();
                        spawn(async move { l.accept().await.map(|(s, _)| s) })
                    };
                    let survivor = {
                        let l = l.clone();
                        spawn(async move { l.accept().await.map(|(s, _)| s) })
                    };
                    task::yield_now().await;
                    let c = within("connect", TcpStream::connect(addr)).await.unwrap();
                    if round % 2 == 1 {
                        task::yield_now().await;
                    }
                    victim.abort();
                    let got_by_victim = match victim.await {
                        Ok(s) => Some(s.unwrap()),
                        Err(e) => {
                            assert!(e.is_cancelled());
                            None
                        }
                    };
                    if got_by_victim.is_some() {
                        // The victim won the race; the survivor still waits: give it one.
                        let c2 = TcpStream::connect(addr).await.unwrap();
                        let s = within("survivor accept", survivor).await.unwrap().unwrap();
                        assert_eq!(s.peer_addr().unwrap(), c2.local_addr().unwrap());
                    } else {
                        let s = within(
                            &format!("round {round}: the survivor gets the connection"),
                            survivor,
                        )
                        .await
                        .unwrap()
                        .unwrap();
                        assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
                    }
                }
            })
        };
        within("racing cancellations", racing).await.unwrap();
        drop(l);
        assert_eq!(util_registered(), baseline);
    });
}

/// Polls the inner future once (so it starts waiting), and the next time the task is
/// woken drops it without polling it again: a task woken for an event and cancelled
/// before it could act on it. Resolves to whether the inner future completed.
struct DropWhenWoken<F> {
    inner: Option<Pin<Box<F>>>,
    polled: bool,
}

impl<F: Future> Future for DropWhenWoken<F> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        if self.polled {
            self.inner = None;
            return Poll::Ready(false);
        }
        self.polled = true;
        match self.inner.as_mut().map(|f| f.as_mut().poll(cx)) {
            Some(Poll::Pending) => Poll::Pending,
            _ => Poll::Ready(true),
        }
    }
}

/// One accepting task per worker. The connection's event reaches the worker whose
/// task is cancelled right after being woken for it (it registered the listener first,
/// so the kernel's EPOLLEXCLUSIVE wakes its reactor). The other worker's task must
/// still get the connection.
#[test]
fn cancelled_woken_accept_on_one_worker_strands_the_other() {
    for (name, build) in util::flavors() {
        let rt = build();
        let label = format!("cancelled_woken_accept_on_one_worker_strands_the_other on {name}");
        util::block_on(&rt, &label, async {
            let l = Arc::new(util::listener().await);
            let addr = l.local_addr().unwrap();
            // Spawned one after the other from outside the workers: one on each worker
            // of a multi-reactor runtime.
            let victim = {
                let l = l.clone();
                spawn(async move {
                    let worker = std::thread::current().id();
                    let accept = async move { l.accept().await.map(drop) };
                    let completed = DropWhenWoken {
                        inner: Some(Box::pin(accept)),
                        polled: false,
                    }
                    .await;
                    (worker, completed)
                })
            };
            time::sleep(Duration::from_millis(20)).await;
            let survivor = {
                let l = l.clone();
                spawn(async move {
                    let worker = std::thread::current().id();
                    (worker, l.accept().await.map(|(_, peer)| peer))
                })
            };
            time::sleep(Duration::from_millis(20)).await;
            let client = std::net::TcpStream::connect(addr).unwrap();
            let (survivor_worker, peer) = within("the survivor's accept", survivor).await.unwrap();
            assert_eq!(peer.unwrap(), client.local_addr().unwrap());
            // If the event went to the survivor's worker, the victim is still waiting.
            victim.abort();
            if let Ok((victim_worker, completed)) = victim.await {
                assert!(!completed);
                if name != "current-thread" {
                    assert_ne!(victim_worker, survivor_worker, "tasks on different workers");
                }
            }
        });
    }
}

/// Accepting tasks that each take one connection and leave (say, to serve it), and a
/// burst of as many connections at once: every task must get one. Like the datagram
/// case in `udp_socket.rs`: the burst is one edge, which wakes one exclusive waiter,
/// and a waiter that accepts does not pass the remaining readiness on.
#[test]
fn burst_reaches_acceptors_that_take_one_connection_each() {
    each_flavor(
        "burst_reaches_acceptors_that_take_one_connection_each",
        || async {
            let l = Arc::new(util::listener().await);
            let addr = l.local_addr().unwrap();
            const K: usize = 4;
            let mut acceptors = Vec::new();
            for _ in 0..K {
                let l = l.clone();
                acceptors.push(spawn(async move { l.accept().await.unwrap().1 }));
            }
            time::sleep(Duration::from_millis(20)).await;
            // Blocking std connects: all K complete into the backlog before the reactor
            // looks.
            let clients: Vec<std::net::TcpStream> = (0..K)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            let mut peers = HashSet::new();
            for a in acceptors {
                peers.insert(within("an acceptor of the burst", a).await.unwrap());
            }
            let want: HashSet<SocketAddr> =
                clients.iter().map(|c| c.local_addr().unwrap()).collect();
            assert_eq!(peers, want);
        },
    );
}

#[test]
fn dropped_listener_closes_and_deregisters() {
    each_flavor("dropped_listener_closes_and_deregisters", || async {
        let baseline = util_registered();
        let l = Arc::new(util::listener().await);
        let addr = l.local_addr().unwrap();
        let id = FdId::of(&*l);
        // Register it on every worker: accept from tasks spawned across them.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = l.clone();
            tasks.push(spawn(async move { l.accept().await.map(drop) }));
        }
        for _ in 0..4 {
            let _ = TcpStream::connect(addr).await.unwrap();
        }
        for t in tasks {
            within("accept", t).await.unwrap().unwrap();
        }
        assert!(util_registered() > baseline);
        assert!(id.in_kernel_epoll());
        let l = Arc::into_inner(l).expect("the only reference");
        drop(l);
        assert_eq!(util_registered(), baseline);
        assert!(!id.is_open());
        assert!(!id.in_kernel_epoll());
        // The port is free again.
        let e = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    });
}

fn util_registered() -> usize {
    epitome_runtime::runtime::Handle::current()
        .metrics()
        .num_registered_sources()
}

// ---------------------------------------------------------------------------------
// Accepting at the fd limit, in a child process (it lowers its own RLIMIT_NOFILE).

const CHILD_ENV: &str = "EPITOME_NET_TEST_EMFILE_CHILD";
const CHILD_OK: &str = "emfile child: all checks passed";

#[test]
fn accept_at_emfile_backs_off_keeps_serving_and_resumes() {
    if let Ok(flavor) = std::env::var(CHILD_ENV) {
        emfile_child(&flavor);
        println!("{CHILD_OK}");
        return;
    }
    for (name, _) in util::flavors() {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "accept_at_emfile_backs_off_keeps_serving_and_resumes",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drain the pipes on threads so the child never blocks on a full one.
        let out = read_pipe(child.stdout.take());
        let err = read_pipe(child.stderr.take());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > util::HANG * 2 {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the {name} EMFILE child hung");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        assert!(
            status.success() && out.contains(CHILD_OK),
            "{name} EMFILE child failed ({status}):\n--- stdout\n{out}\n--- stderr\n{err}"
        );
        // The child's measurement, for the log (the harness may print it mid-line).
        for l in out
            .lines()
            .filter_map(|l| l.find("emfile (").map(|i| &l[i..]))
        {
            eprintln!("{l}");
        }
    }
}

fn read_pipe(pipe: Option<impl io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// utime + stime of this process, in seconds, from `/proc/self/stat` opened
/// beforehand (at the fd limit it could not be opened).
fn cpu_seconds(proc_stat: &std::fs::File) -> f64 {
    let mut buf = vec![0; 4096];
    let n = std::os::unix::fs::FileExt::read_at(proc_stat, &mut buf, 0).unwrap();
    let stat = String::from_utf8_lossy(&buf[..n]);
    // Fields after the command name (which may hold spaces) start after the last ')':
    // state is field 3, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[11].parse().unwrap();
    let stime: u64 = fields[12].parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (utime + stime) as f64 / ticks
}

fn emfile_child(flavor: &str) {
    let rt: Runtime = if flavor == "current-thread" {
        util::current_thread()
    } else {
        util::multi(2)
    };
    util::block_on(&rt, "emfile child", async {
        let l = Arc::new(util::listener().await);
        let addr = l.local_addr().unwrap();

        // A connection accepted before the limit, served by an echo task.
        let early = TcpStream::connect(addr).await.unwrap();
        let (served, _) = l.accept().await.unwrap();
        let echo = spawn(async move {
            let mut buf = [0; 256];
            loop {
                let n = served.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                served.write_all(&buf[..n]).await.unwrap();
            }
        });

        // The clients that will arrive at the limit: their sockets are made now, while
        // there are fds; connecting needs none.
        const LATE: usize = 4;
        let late_sockets: Vec<socket2::Socket> = (0..LATE)
            .map(|_| {
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap()
            })
            .collect();

        // The server's accept loop: counts connections and errors, keeps going.
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let first_error = Arc::new(std::sync::Mutex::new(None::<io::Error>));
        let server = {
            let (l, accepted, first_error) = (l.clone(), accepted.clone(), first_error.clone());
            spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, _)) => accepted.lock().unwrap().push(s),
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                        }
                    }
                }
            })
        };
        time::sleep(Duration::from_millis(20)).await;

        let proc_stat = std::fs::File::open("/proc/self/stat").unwrap();
        // Lower the limit a little above what is open, and fill the rest.
        let open_now = util::fd_count() as u64;
        let limit = libc::rlimit {
            rlim_cur: open_now + 16,
            rlim_max: 20_000,
        };
        // SAFETY: `limit` is a valid rlimit.
        let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        assert_eq!(r, 0, "setrlimit: {}", io::Error::last_os_error());
        let mut fillers: Vec<OwnedFd> = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => fillers.push(f.into()),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                Err(e) => panic!("filling fds: {e}"),
            }
            assert!(fillers.len() < 10_000, "the limit did not take");
        }

        // Clients connect; the kernel completes the handshakes into the backlog.
        for s in &late_sockets {
            s.connect(&addr.into()).unwrap();
        }
        util::wait_until("accept fails with EMFILE", || l.resource_errors() > 0).await;
        let e = first_error.lock().unwrap().take().expect("an accept error");
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
        assert!(accepted.lock().unwrap().is_empty());

        // The connection accepted before the limit is still served.
        for i in 0..10u8 {
            let msg = [i; 100];
            early.write_all(&msg).await.unwrap();
            let mut back = [0; 100];
            within("echo at the limit", early.read_exact(&mut back))
                .await
                .unwrap();
            assert_eq!(back, msg);
        }

        // At the limit the process nearly sleeps: CPU time over wall time below 5%.
        time::sleep(Duration::from_millis(300)).await;
        let (cpu0, wall0, errs0) = (cpu_seconds(&proc_stat), Instant::now(), l.resource_errors());
        time::sleep(Duration::from_secs(1)).await;
        let (cpu, wall) = (
            cpu_seconds(&proc_stat) - cpu0,
            wall0.elapsed().as_secs_f64(),
        );
        let errs = l.resource_errors() - errs0;
        println!(
            "emfile ({flavor}): {errs} accept errors and {:.1} ms of CPU in {:.0} ms at the limit",
            cpu * 1000.0,
            wall * 1000.0
        );
        assert!(errs > 0, "accept kept trying at the limit");
        assert!(
            cpu < 0.05 * wall,
            "{:.1}% CPU at the fd limit (more than 5%)",
            100.0 * cpu / wall
        );
        assert!(accepted.lock().unwrap().is_empty());

        // Free some fds: the backlog drains.
        fillers.truncate(fillers.len().saturating_sub(LATE + 4));
        util::wait_until("every late client accepted", || {
            accepted.lock().unwrap().len() == LATE
        })
        .await;
        let peers: HashSet<SocketAddr> = accepted
            .lock()
            .unwrap()
            .iter()
            .map(|s: &TcpStream| s.peer_addr().unwrap())
            .collect();
        let expected: HashSet<SocketAddr> = late_sockets
            .iter()
            .map(|s| s.local_addr().unwrap().as_socket().unwrap())
            .collect();
        assert_eq!(peers, expected);
        // And they work.
        let s = accepted.lock().unwrap().pop().unwrap();
        s.write_all(b"welcome").await.unwrap();
        let mut buf = [0; 7];
        let peer = s.peer_addr().unwrap();
        let mut late = late_sockets
            .iter()
            .find(|c| c.local_addr().unwrap().as_socket() == Some(peer))
            .unwrap();
        io::Read::read_exact(&mut late, &mut buf).unwrap();
        assert_eq!(&buf, b"welcome");

        server.abort();
        let _ = server.await;
        drop(early);
        echo.await.unwrap();
        drop(fillers);
    });
}
