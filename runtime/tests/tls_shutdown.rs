//! A runtime dropped from a thread-local's destructor, after the runtime's own
//! thread-locals are gone: shutdown must neither panic nor abort the process (it enters
//! nothing), and still cancels every task, dropping its future.

mod support;

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epitome_runtime::runtime::{Handle, Runtime};
use epitome_runtime::task::spawn_local;
use epitome_runtime::time;
use support::{DropCounter, DropGuard, FLAVORS, MakeRuntime};

thread_local! {
    /// Holds the runtime until this thread's thread-locals are destroyed.
    static KEEP: RefCell<Option<Keep>> = const { RefCell::new(None) };
}

/// What the thread-local holds: the runtime, and a probe dropped right after it.
struct Keep {
    runtime: Option<Runtime>,
    /// What `Handle::try_current` said when the runtime was dropped.
    seen: Arc<Mutex<Option<String>>>,
}

impl Drop for Keep {
    fn drop(&mut self) {
        let seen = match Handle::try_current() {
            Ok(_) => "a runtime".to_string(),
            Err(e) if e.is_thread_local_destroyed() => "destroyed".to_string(),
            Err(_) => "none".to_string(),
        };
        *self.seen.lock().unwrap() = Some(seen);
        drop(self.runtime.take());
    }
}

/// A future that never completes and counts its drop.
async fn parked(guard: DropGuard) {
    let _guard = guard;
    std::future::pending::<()>().await;
}

/// Runs a thread that builds a runtime with tasks parked on it, stores it in a
/// thread-local, and exits. With `context_first`, the runtime's context is used before
/// the thread-local is set (so it is destroyed after it); otherwise after (so it is
/// destroyed first, the case that used to abort).
fn drop_from_thread_local(make: MakeRuntime, context_first: bool) -> (String, usize) {
    let drops = DropCounter::new();
    let seen = Arc::new(Mutex::new(None));
    let (d, s) = (drops.clone(), seen.clone());
    let thread = std::thread::spawn(move || {
        let rt = make();
        if context_first {
            rt.block_on(async {});
        }
        KEEP.with(|k| {
            *k.borrow_mut() = Some(Keep {
                runtime: None,
                seen: s,
            })
        });
        // Tasks parked on the runtime: cancelled at shutdown.
        for _ in 0..3 {
            rt.spawn(parked(d.guard()));
        }
        let local_guard = d.guard();
        rt.block_on(async move {
            // Let the spawned tasks start.
            time::sleep(Duration::from_millis(5)).await;
            // A `!Send` task too, where the flavour allows one here.
            if Handle::current().metrics().num_workers() == 1 {
                drop(spawn_local(async move {
                    let _rc = std::rc::Rc::new(());
                    parked(local_guard).await
                }));
            }
        });
        KEEP.with(|k| {
            if let Some(keep) = k.borrow_mut().as_mut() {
                keep.runtime = Some(rt);
            }
        });
    });
    thread
        .join()
        .expect("the thread whose thread-local drops a runtime");
    let seen = seen
        .lock()
        .unwrap()
        .take()
        .expect("the runtime was dropped");
    (seen, drops.count())
}

#[test]
fn a_runtime_dropped_after_its_context_is_destroyed_shuts_down_quietly() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let (seen, dropped) = drop_from_thread_local(make, false);
        // The case of issue 20: the context was gone when the runtime was dropped.
        assert_eq!(seen, "destroyed", "{name}");
        // Three parked tasks, and the local task (or, on the multi-reactor runtime,
        // where `block_on` runs no worker, the guard it would have held).
        assert_eq!(dropped, 4, "{name}: every task's future dropped");
    }
}

#[test]
fn a_runtime_dropped_from_a_thread_local_with_its_context_alive_shuts_down() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let (seen, dropped) = drop_from_thread_local(make, true);
        assert_eq!(seen, "none", "{name}");
        assert_eq!(dropped, 4, "{name}");
    }
}

thread_local! {
    static GUARD_KEEP: RefCell<Option<GuardHolder>> = const { RefCell::new(None) };
}

/// An enter guard of a leaked (`'static`) handle, held by a thread-local.
struct GuardHolder(#[allow(dead_code)] epitome_runtime::runtime::EnterGuard<'static>);

#[test]
fn an_enter_guard_dropped_after_the_context_is_destroyed_is_quiet() {
    let _watchdog = support::watchdog();
    let rt = support::current_thread();
    let handle: &'static Handle = Box::leak(Box::new(rt.handle().clone()));
    std::thread::spawn(move || {
        GUARD_KEEP.with(|k| *k.borrow_mut() = Some(GuardHolder(handle.enter())));
        assert!(Handle::try_current().is_ok());
    })
    .join()
    .expect("dropping the guard at thread exit");
}
