//! `JoinError` and panics: a panicking task is caught, its payload comes back intact,
//! its worker keeps serving, and panics in destructors land where they should.

mod support;

use std::future::pending;
use std::thread::ThreadId;
use std::time::Duration;

use epitome_runtime::task::JoinError;
use epitome_runtime::time;
use support::{
    ExpectedPanic, Signal, both_flavors, current_thread, multi, panic_message_of, quiet_panics,
    yield_until,
};

fn tid() -> ThreadId {
    std::thread::current().id()
}

/// Panics with an [`ExpectedPanic`] payload; typed so the task has an output type.
fn boom(n: u32) -> u32 {
    if n < u32::MAX {
        std::panic::panic_any(ExpectedPanic(n));
    }
    n
}

#[test]
fn a_panic_in_a_task_is_caught_and_its_payload_round_trips() {
    let _watchdog = support::watchdog();
    quiet_panics();
    for (name, rt) in both_flavors() {
        let (typed, text, cancelled) = rt.block_on(async {
            let typed = epitome_runtime::spawn(async { boom(7) }).await;
            let text = epitome_runtime::spawn(async {
                if boom(u32::MAX) > 0 {
                    panic!("[expected] boom {}", std::hint::black_box(3));
                }
            })
            .await;
            let task = epitome_runtime::spawn(pending::<()>());
            task.abort();
            (typed, text, task.await)
        });

        let err = typed.unwrap_err();
        assert!(err.is_panic() && !err.is_cancelled(), "{name}");
        assert!(err.to_string().contains("panicked"), "{name}: {err}");
        assert!(format!("{err:?}").contains("Panic"), "{name}: {err:?}");
        let payload = err.into_panic();
        assert_eq!(
            payload.downcast_ref::<ExpectedPanic>(),
            Some(&ExpectedPanic(7)),
            "{name}"
        );
        // The payload can resume unwinding and be caught again, intact.
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::panic::resume_unwind(payload)
        }))
        .unwrap_err();
        assert_eq!(
            again.downcast::<ExpectedPanic>().ok().map(|b| *b),
            Some(ExpectedPanic(7))
        );

        let err = text.unwrap_err();
        assert!(
            err.to_string()
                .contains("panicked with message \"[expected] boom 3\""),
            "{name}: {err}"
        );
        let id = err.id();
        let err = err.try_into_panic().unwrap();
        // A formatted message arrives as a `String` or, once formatting is folded
        // away at compile time, a `&'static str`.
        assert_eq!(
            support::panic_str(err.as_ref()),
            Some("[expected] boom 3"),
            "{name} (task {id})"
        );

        let err = cancelled.unwrap_err();
        assert!(err.is_cancelled() && !err.is_panic(), "{name}");
        assert!(err.to_string().contains("was cancelled"), "{name}: {err}");
        let err = err.try_into_panic().unwrap_err();
        assert!(err.is_cancelled());
        // A `JoinError` is an `Error`, and converts to `io::Error`.
        let io: std::io::Error = err.into();
        assert!(io.to_string().contains("cancelled"));
        let task = rt.spawn(pending::<()>());
        task.abort();
        let err: Box<dyn std::error::Error> = Box::new(rt.block_on(task).unwrap_err());
        assert!(err.to_string().contains("cancelled"));
    }
}

#[test]
fn into_panic_on_a_cancelled_task_panics_clearly() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let task = rt.spawn(pending::<()>());
    task.abort();
    let err: JoinError = rt.block_on(task).unwrap_err();
    let msg = panic_message_of(move || err.into_panic());
    assert!(msg.contains("`JoinError` reason is not a panic"), "{msg}");
}

#[test]
fn a_panicking_task_does_not_kill_its_worker() {
    let _watchdog = support::watchdog();
    quiet_panics();
    let rt = multi(1);
    let worker = rt.block_on(rt.spawn(async { tid() })).unwrap();
    let panicked: Vec<_> = (0..20).map(|i| rt.spawn(async move { boom(i) })).collect();
    for (i, p) in panicked.into_iter().enumerate() {
        let err = rt.block_on(p).unwrap_err();
        assert_eq!(
            err.into_panic().downcast_ref::<ExpectedPanic>(),
            Some(&ExpectedPanic(i as u32))
        );
    }
    // Same worker thread, still serving tasks, timers and I/O.
    let (after, slept) = rt
        .block_on(rt.spawn(async {
            let start = std::time::Instant::now();
            time::sleep(Duration::from_millis(2)).await;
            (tid(), start.elapsed())
        }))
        .unwrap();
    assert_eq!(after, worker);
    assert!(slept >= Duration::from_millis(2));

    // A current-thread runtime keeps going after a task panics under `block_on`.
    let rt = current_thread();
    let out = rt.block_on(async {
        let p = epitome_runtime::spawn(async { boom(1) });
        let ok = epitome_runtime::spawn(async { 2 });
        (p.await.is_err(), ok.await.unwrap())
    });
    assert_eq!(out, (true, 2));
}

struct PanicOnDrop(u32);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        std::panic::panic_any(ExpectedPanic(self.0));
    }
}

#[test]
fn a_panic_while_dropping_an_aborted_future_becomes_the_result() {
    let _watchdog = support::watchdog();
    quiet_panics();
    for (name, rt) in both_flavors() {
        let res = rt.block_on(async {
            let started = Signal::new();
            let task = {
                let started = started.clone();
                epitome_runtime::spawn(async move {
                    let _bomb = PanicOnDrop(11);
                    started.set();
                    pending::<()>().await;
                })
            };
            started.wait().await;
            task.abort();
            task.await
        });
        let err = res.unwrap_err();
        assert!(err.is_panic(), "{name}: {err}");
        assert_eq!(
            err.into_panic().downcast_ref::<ExpectedPanic>(),
            Some(&ExpectedPanic(11)),
            "{name}"
        );
        // The worker survived.
        assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1, "{name}");
    }
}

#[test]
fn a_panic_while_dropping_an_output() {
    let _watchdog = support::watchdog();
    quiet_panics();
    for (name, rt) in both_flavors() {
        // Detached: the worker drops the output and swallows the panic.
        let gate = Signal::new();
        let task = {
            let gate = gate.clone();
            rt.spawn(async move {
                gate.wait().await;
                PanicOnDrop(12)
            })
        };
        drop(task);
        gate.set();
        assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1, "{name}");

        // Dropped by the handle after completion: the dropper gets the panic.
        let task = rt.spawn(async { PanicOnDrop(13) });
        rt.block_on(async { yield_until("finished", || task.is_finished()).await });
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(task)))
            .expect_err("dropping the output panics in the dropper");
        assert_eq!(
            payload.downcast_ref::<ExpectedPanic>(),
            Some(&ExpectedPanic(13)),
            "{name}"
        );
        assert_eq!(rt.block_on(rt.spawn(async { 2 })).unwrap(), 2, "{name}");
    }
}

/// `Display` and `Debug` print exactly what tokio's do (logs are matched on them), and
/// the `io::Error` conversion carries tokio's messages.
#[test]
fn join_errors_print_exactly_as_tokios() {
    let _watchdog = support::watchdog();
    quiet_panics();
    for (name, rt) in both_flavors() {
        let literal = rt.spawn(async { std::panic::panic_any("[expected] boom") });
        let formatted = rt.spawn(async { panic!("[expected] boom {}", 2) });
        let opaque = rt.spawn(async { std::panic::panic_any(ExpectedPanic(9)) });
        let cancelled = rt.spawn(pending::<()>());
        cancelled.abort();
        let ids = [literal.id(), formatted.id(), opaque.id(), cancelled.id()];
        let errs: Vec<_> = rt.block_on(async {
            let mut v = Vec::new();
            for t in [literal, formatted] {
                v.push(t.await.unwrap_err());
            }
            v.push(opaque.await.unwrap_err());
            v.push(cancelled.await.unwrap_err());
            v
        });
        let [a, b, c, d] = ids;
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                format!("task {a} panicked with message \"[expected] boom\""),
                format!("task {b} panicked with message \"[expected] boom 2\""),
                format!("task {c} panicked"),
                format!("task {d} was cancelled"),
            ],
            "{name}"
        );
        let debug: Vec<String> = errs.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(
            debug,
            [
                format!("JoinError::Panic(Id({a}), \"[expected] boom\", ...)"),
                format!("JoinError::Panic(Id({b}), \"[expected] boom 2\", ...)"),
                format!("JoinError::Panic(Id({c}), ...)"),
                format!("JoinError::Cancelled(Id({d}))"),
            ],
            "{name}"
        );
        let io: Vec<String> = errs
            .into_iter()
            .map(|e| std::io::Error::from(e).to_string())
            .collect();
        assert_eq!(
            io,
            [
                "task panicked",
                "task panicked",
                "task panicked",
                "task was cancelled"
            ],
            "{name}"
        );
    }
}
