//! Helpers shared by the toolkit's tests.

#![allow(dead_code)]

use std::future::Future;

use epitome::runtime::{Builder, Runtime};

/// A current-thread runtime and a multi-reactor runtime with two reactors.
pub fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current-thread",
            Builder::new_current_thread().build().unwrap(),
        ),
        (
            "multi-reactor(2)",
            Builder::new_multi_reactor().reactors(2).build().unwrap(),
        ),
    ]
}

/// Runs the future `make` gives, once on each kind of runtime, as a spawned task (so on
/// the multi-reactor runtime it runs on a worker, as application code does).
pub fn on_both<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for (name, rt) in runtimes() {
        let task = rt.spawn(make());
        match rt.block_on(task) {
            Ok(()) => {}
            Err(e) => match e.try_into_panic() {
                Ok(panic) => {
                    eprintln!("failed on the {name} runtime");
                    std::panic::resume_unwind(panic)
                }
                Err(e) => panic!("on the {name} runtime: {e}"),
            },
        }
    }
}

/// Spawns `future` from a thread outside the runtime, so on a multi-reactor runtime
/// successive calls land on different workers (round-robin), as cross-worker tests need.
pub fn spawn_spread<F>(future: F) -> epitome::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = epitome::runtime::Handle::current();
    std::thread::spawn(move || handle.spawn(future))
        .join()
        .unwrap()
}
