//! `TcpListener::poll_accept` and `UnixListener::poll_accept` (tokio's): a connection
//! per `Ready`, `Pending` (and a wakeup later) when none waits, side by side with
//! `accept` on several workers without a lost connection, and after shutdown.

mod util;

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use epitome_net::{TcpListener, TcpStream, UnixListener, UnixStream};
use epitome_runtime::{spawn, time};
use util::{each_flavor, within};

#[test]
fn poll_accept_returns_connections_and_waits_for_them() {
    each_flavor(
        "poll_accept_returns_connections_and_waits_for_them",
        || async {
            let l = Arc::new(util::listener().await);
            let addr = l.local_addr().unwrap();
            // Nothing yet: Pending.
            let pending = poll_fn(|cx| Poll::Ready(l.poll_accept(cx).is_pending())).await;
            assert!(pending);
            // A task polling is woken by the connection.
            let poller = {
                let l = l.clone();
                spawn(async move { poll_fn(|cx| l.poll_accept(cx)).await })
            };
            time::sleep(Duration::from_millis(10)).await;
            let c = TcpStream::connect(addr).await.unwrap();
            let (s, peer) = within("the poller", poller).await.unwrap().unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            s.write_all(b"ok").await.unwrap();
            let mut buf = [0; 2];
            c.read_exact(&mut buf).await.unwrap();
            // A connection already queued: Ready at the first poll.
            let c2 = TcpStream::connect(addr).await.unwrap();
            let (_s2, peer) = within("queued", poll_fn(|cx| l.poll_accept(cx)))
                .await
                .unwrap();
            assert_eq!(peer, c2.local_addr().unwrap());
        },
    );
}

#[test]
fn unix_poll_accept() {
    each_flavor("unix_poll_accept", || async {
        let name = util::abstract_name("poll-accept");
        let addr = epitome_net::unix::abstract_addr(&name).unwrap();
        let l = Arc::new(UnixListener::bind_addr(&addr).unwrap());
        let pending = poll_fn(|cx| Poll::Ready(l.poll_accept(cx).is_pending())).await;
        assert!(pending);
        let poller = {
            let l = l.clone();
            spawn(async move { poll_fn(|cx| l.poll_accept(cx)).await })
        };
        time::sleep(Duration::from_millis(10)).await;
        let c = UnixStream::connect_addr(&addr).await.unwrap();
        let (s, _) = within("the unix poller", poller).await.unwrap().unwrap();
        c.write_all(b"u").await.unwrap();
        let mut buf = [0; 1];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"u");
    });
}

/// A listener whose registration on one worker has no waiter left, and a poller on
/// another worker: connections that the kernel hands to the first worker's reactor
/// must still reach the poller (and with `accept` callers around, every connection is
/// taken once).
#[test]
fn pollers_and_accepters_share_the_connections_without_losing_one() {
    const N: usize = 40;
    each_flavor("pollers_and_accepters_share_the_connections", || async {
        let l = Arc::new(util::listener().await);
        let addr = l.local_addr().unwrap();
        // An `accept` that takes one connection and leaves: its worker keeps a
        // registration with nobody waiting on it.
        let first = {
            let l = l.clone();
            spawn(async move { l.accept().await.map(drop) })
        };
        let c0 = TcpStream::connect(addr).await.unwrap();
        within("the first accept", first).await.unwrap().unwrap();
        // One poller and one accepter, on workers picked round-robin.
        let taken = Arc::new(AtomicUsize::new(0));
        let poller = {
            let (l, taken) = (l.clone(), taken.clone());
            spawn(async move {
                let mut mine = Vec::new();
                while taken.load(Ordering::SeqCst) < N {
                    let accepted = poll_fn(|cx| match l.poll_accept(cx) {
                        Poll::Pending if taken.load(Ordering::SeqCst) >= N => Poll::Ready(None),
                        other => other.map(Some),
                    })
                    .await;
                    match accepted {
                        Some(res) => {
                            mine.push(res.unwrap().0);
                            taken.fetch_add(1, Ordering::SeqCst);
                        }
                        None => break,
                    }
                }
                mine.len()
            })
        };
        let accepter = {
            let (l, taken) = (l.clone(), taken.clone());
            spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let res = time::timeout(Duration::from_millis(50), l.accept()).await;
                    match res {
                        Ok(res) => {
                            mine.push(res.unwrap().0);
                            taken.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) if taken.load(Ordering::SeqCst) >= N => return mine.len(),
                        Err(_) => {}
                    }
                }
            })
        };
        let mut clients = Vec::new();
        for _ in 0..N {
            clients.push(TcpStream::connect(addr).await.unwrap());
            time::sleep(Duration::from_millis(1)).await;
        }
        util::wait_until("every connection taken", || {
            taken.load(Ordering::SeqCst) >= N
        })
        .await;
        let accepted = within("the accepter ends", accepter).await.unwrap();
        // With the accepter gone, one more connection reaches the poller (which then
        // sees the count and ends).
        let _last = TcpStream::connect(addr).await.unwrap();
        let polled = within("the poller ends", poller).await.unwrap();
        // N + 1, or N if the poller took the N-th itself and ended before the last.
        assert!(
            (N..=N + 1).contains(&(polled + accepted)),
            "{polled} + {accepted}"
        );
        drop((c0, clients));
    });
}

#[test]
fn poll_accept_after_shutdown_is_an_error() {
    for (name, build) in util::flavors() {
        let rt = build();
        let l = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        // Register it with a worker, then shut the runtime down.
        rt.block_on(async {
            let _ = poll_fn(|cx| Poll::Ready(l.poll_accept(cx).is_pending())).await;
        });
        drop(rt);
        let other = util::current_thread();
        other.block_on(async {
            let polled = poll_fn(|cx| Poll::Ready(l.poll_accept(cx))).await;
            match polled {
                Poll::Ready(Err(e)) => assert!(e.to_string().contains("shut down"), "{name}: {e}"),
                Poll::Ready(Ok(_)) => panic!("{name}: accepted with no connection"),
                Poll::Pending => panic!("{name}: pending forever after shutdown"),
            }
        });
    }
}
