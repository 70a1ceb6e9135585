//! `select!`, `join!`, `try_join!` as tokio documents them, and `#[epitome::test]`'s
//! choice of runtime. (The attributes' compile errors are in macros/tests/ui/.)

mod util;

use std::future::{Future, pending, ready};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use epitome::sync::{mpsc, oneshot};
use epitome::task::yield_now;
use epitome::{join, select, try_join};
use util::on_both;

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Pending forever, and sets a flag when dropped.
async fn pending_with_flag(flag: Arc<AtomicBool>) {
    let _flag = DropFlag(flag);
    pending::<()>().await
}

#[test]
fn select_takes_the_first_ready_branch_and_drops_the_rest() {
    on_both(|| async {
        let dropped = Arc::new(AtomicBool::new(false));
        let v = select! {
            _ = pending_with_flag(dropped.clone()) => 0,
            v = async { yield_now().await; 7 } => v,
        };
        assert_eq!(v, 7);
        assert!(dropped.load(Ordering::SeqCst));
    });
}

#[test]
fn select_futures_are_dropped_before_the_handler_runs() {
    on_both(|| async {
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        tx.try_send(1).unwrap();
        let mut received = Vec::new();
        // The future borrows `received` mutably; the handler uses it too.
        let counted = select! {
            n = async { received.push(0); rx.recv().await } => {
                received.push(n.unwrap());
                received.len()
            }
        };
        assert_eq!(counted, 2);
    });
}

#[test]
fn biased_select_polls_in_order() {
    on_both(|| async {
        for _ in 0..100 {
            let v = select! {
                biased;
                v = ready(1) => v,
                v = ready(2) => v,
            };
            assert_eq!(v, 1);
        }
    });
}

#[test]
fn unbiased_select_starts_at_a_random_branch() {
    on_both(|| async {
        let mut wins = [0u32; 3];
        for _ in 0..300 {
            let i = select! {
                i = ready(0) => i,
                i = ready(1) => i,
                i = ready(2) => i,
            };
            wins[i] += 1;
        }
        // Each of 300 starts is uniform over three branches: a branch that never wins
        // would take a broken random start (probability about 1e-53 otherwise).
        assert!(wins.iter().all(|&w| w > 0), "wins per branch: {wins:?}");
    });
}

#[test]
fn select_precondition_disables_a_branch_without_polling_it() {
    on_both(|| async {
        let polled = AtomicBool::new(false);
        let watched = async {
            polled.store(true, Ordering::SeqCst);
            1
        };
        let v = select! {
            v = watched, if false => v,
            v = async { yield_now().await; 2 } => v,
        };
        assert_eq!(v, 2);
        assert!(!polled.load(Ordering::SeqCst));
    });
}

#[test]
fn select_pattern_mismatch_disables_the_branch_and_keeps_waiting() {
    on_both(|| async {
        let (tx, rx) = oneshot::channel::<u32>();
        drop(tx);
        let v = select! {
            // Completes at once with Err: does not match, the branch is disabled.
            Ok(v) = rx => v,
            v = async { yield_now().await; 9 } => v,
        };
        assert_eq!(v, 9);
    });
}

#[test]
fn select_else_runs_when_every_branch_is_disabled() {
    on_both(|| async {
        let v = select! {
            Some(v) = ready(None::<u32>) => v,
            Some(v) = async { None::<u32> }, if true => v,
            _ = pending::<()>(), if false => 1,
            else => 100,
        };
        assert_eq!(v, 100);
    });
}

#[test]
#[should_panic(expected = "all branches are disabled and there is no else branch")]
fn select_without_else_panics_when_every_branch_is_disabled() {
    let rt = epitome::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        select! {
            Some(v) = ready(None::<u32>) => v,
        }
    });
}

#[test]
fn select_handlers_can_break_continue_return_and_use_question_mark() {
    async fn first_line(lines: Vec<io::Result<&'static str>>) -> io::Result<usize> {
        let (tx, rx) = mpsc::unbounded_channel();
        for l in lines {
            tx.try_send(l).unwrap();
        }
        drop(tx);
        let mut skipped = 0;
        loop {
            select! {
                line = rx.recv() => {
                    let Ok(line) = line else { break };
                    let line = line?;
                    if line.is_empty() {
                        skipped += 1;
                        continue;
                    }
                    return Ok(skipped);
                }
            }
        }
        Ok(usize::MAX)
    }
    on_both(|| async {
        assert_eq!(first_line(vec![Ok(""), Ok(""), Ok("x")]).await.unwrap(), 2);
        assert_eq!(first_line(vec![Ok("")]).await.unwrap(), usize::MAX);
        let err = io::Error::other("bad line");
        assert!(first_line(vec![Ok(""), Err(err)]).await.is_err());
    });
}

#[test]
fn select_patterns_bind_with_mut_ref_and_nesting() {
    on_both(|| async {
        let v = select! {
            (mut a, [b, ..], Some(ref c)) = ready((1, [2, 3], Some(String::from("c")))) => {
                a += b;
                format!("{a}{c}")
            }
        };
        assert_eq!(v, "3c");
        struct Point {
            x: i32,
            y: i32,
        }
        let v = select! {
            Point { x: 0, mut y } = ready(Point { x: 1, y: 5 }) => { y += 1; y }
            Point { x, y: mut why } = ready(Point { x: 2, y: 5 }) => { why += x; why }
        };
        assert_eq!(v, 7); // the first branch did not match
    });
}

#[test]
fn select_over_a_pinned_future_across_iterations() {
    on_both(|| async {
        let (tick_tx, tick_rx) = mpsc::unbounded_channel::<()>();
        let ticker = epitome::spawn(async move {
            for _ in 0..5 {
                yield_now().await;
                if tick_tx.send(()).await.is_err() {
                    break;
                }
            }
        });
        let mut deadline = pin!(epitome::time::sleep(Duration::from_secs(60)));
        let mut ticks = 0;
        loop {
            select! {
                r = tick_rx.recv() => match r {
                    Ok(()) => ticks += 1,
                    Err(_) => break,
                },
                _ = &mut deadline => panic!("the deadline is an hour away"),
            }
        }
        assert_eq!(ticks, 5);
        ticker.await.unwrap();
    });
}

#[test]
fn select_with_many_branches() {
    on_both(|| async {
        let v = select! {
            biased;
            _ = pending::<()>() => 0, _ = pending::<()>() => 1, _ = pending::<()>() => 2,
            _ = pending::<()>() => 3, _ = pending::<()>() => 4, _ = pending::<()>() => 5,
            _ = pending::<()>() => 6, _ = pending::<()>() => 7, _ = pending::<()>() => 8,
            _ = pending::<()>() => 9, _ = pending::<()>() => 10, _ = pending::<()>() => 11,
            _ = pending::<()>() => 12, _ = pending::<()>() => 13, _ = pending::<()>() => 14,
            _ = pending::<()>() => 15, _ = pending::<()>() => 16, _ = pending::<()>() => 17,
            _ = pending::<()>() => 18, _ = pending::<()>() => 19, _ = pending::<()>() => 20,
            _ = pending::<()>() => 21, _ = pending::<()>() => 22, _ = pending::<()>() => 23,
            _ = pending::<()>() => 24, _ = pending::<()>() => 25, _ = pending::<()>() => 26,
            _ = pending::<()>() => 27, _ = pending::<()>() => 28, _ = pending::<()>() => 29,
            Some(v) = ready(Some(30)) => v,
            _ = pending::<()>() => 31,
        };
        assert_eq!(v, 30);
    });
}

#[test]
fn join_runs_futures_concurrently_and_keeps_their_order() {
    on_both(|| async {
        // Each waits for the other: only concurrent polling finishes them.
        let (a_tx, a_rx) = oneshot::channel::<u32>();
        let (b_tx, b_rx) = oneshot::channel::<u32>();
        let (a, b, c) = join!(
            async move {
                a_tx.send(1).unwrap();
                b_rx.await.unwrap() + 10
            },
            async move {
                let a = a_rx.await.unwrap();
                b_tx.send(2).unwrap();
                a + 20
            },
            async { "third" },
        );
        assert_eq!((a, b, c), (12, 21, "third"));

        let (one,) = join!(ready(1));
        assert_eq!(one, 1);
        let () = join!();
    });
}

#[test]
fn biased_join_polls_in_order() {
    on_both(|| async {
        let order = std::sync::Mutex::new(Vec::new());
        let record = |i| {
            let order = &order;
            async move {
                order.lock().unwrap().push(i);
                yield_now().await;
                order.lock().unwrap().push(i);
            }
        };
        join!(biased; record(0), record(1), record(2));
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 0, 1, 2]);
    });
}

#[test]
fn try_join_returns_all_values_or_the_first_error_early() {
    on_both(|| async {
        let ok: io::Result<_> = try_join!(async { Ok::<_, io::Error>(1) }, async {
            yield_now().await;
            Ok("b")
        });
        assert_eq!(ok.unwrap(), (1, "b"));

        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let err = try_join!(
            async move {
                pending_with_flag(flag).await;
                Ok::<u32, io::Error>(0)
            },
            async {
                yield_now().await;
                Err::<u32, _>(io::Error::new(io::ErrorKind::InvalidData, "no"))
            },
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // The other future, still pending, was dropped with the try_join.
        assert!(dropped.load(Ordering::SeqCst));
    });
}

/// A future that counts its polls.
struct CountPolls<'a>(&'a AtomicUsize, u32);

impl Future for CountPolls<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if self.1 == 0 {
            return Poll::Ready(());
        }
        self.1 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn join_does_not_poll_finished_futures_again() {
    on_both(|| async {
        let (short, long) = (AtomicUsize::new(0), AtomicUsize::new(0));
        join!(CountPolls(&short, 0), CountPolls(&long, 5));
        assert_eq!(short.load(Ordering::SeqCst), 1);
        assert_eq!(long.load(Ordering::SeqCst), 6);
    });
}

#[epitome::test]
async fn test_attribute_defaults_to_a_current_thread_runtime() {
    let handle = epitome::runtime::Handle::current();
    assert_eq!(handle.metrics().num_workers(), 1);
    // Only a current-thread runtime's own thread can run `!Send` tasks.
    let local = epitome::task::spawn_local(async { std::rc::Rc::new(5) });
    assert_eq!(*local.await.unwrap(), 5);
}

#[epitome::test(flavor = "multi_reactor", reactors = 3)]
async fn test_attribute_builds_a_multi_reactor_runtime() {
    assert_eq!(
        epitome::runtime::Handle::current().metrics().num_workers(),
        3
    );
}

#[epitome::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_attribute_accepts_tokio_spellings() {
    assert_eq!(
        epitome::runtime::Handle::current().metrics().num_workers(),
        2
    );
}

#[epitome::test(crate = "epitome")]
async fn test_attribute_returns_a_result() -> io::Result<()> {
    let listener = epitome::net::TcpListener::bind("127.0.0.1:0").await?;
    listener.local_addr()?;
    Ok(())
}
