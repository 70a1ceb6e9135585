//! The shapes, written once over [`Contender`], which both runtimes implement: one
//! iteration of each, as in tokio's `benches/rt_multi_threaded.rs` and
//! `benches/rt_current_thread.rs`.

use std::fmt;
use std::future::Future;

use super::Shape;
use super::sync::{Latch, oneshot};

/// Tasks spawned per iteration of `spawn_many` (tokio: `NUM_SPAWN` in
/// `rt_multi_threaded.rs`).
const SPAWN_MANY: usize = 10_000;
/// Tasks and yields per task of `yield_many`.
const YIELD_TASKS: usize = 200;
const YIELDS_PER_TASK: usize = 1_000;
/// Rounds of `ping_pong`.
const PINGS: usize = 1_000;
/// Depth of `chained_spawn`.
const CHAIN: usize = 1_000;
/// Tasks per iteration of the current-thread `spawn_many_*` shapes (tokio:
/// `NUM_SPAWN` in `rt_current_thread.rs`).
const SPAWN_CURRENT: usize = 1_000;

/// One iteration of one contender's shape, its runtime and state captured.
pub(super) type Iteration = Box<dyn FnMut()>;

/// What the shapes need from a runtime; implemented for both, so both run the same
/// shape code.
pub(super) trait Contender: Sized + 'static {
    type Join<T: Send + 'static>: Future<Output = Result<T, Self::JoinError>> + Send + Unpin;
    type JoinError: fmt::Debug;

    /// `Runtime::block_on`.
    fn run<F: Future>(&self, future: F) -> F::Output;
    /// `Runtime::handle().spawn`, from a thread outside the runtime.
    fn spawn_outside<F>(&self, future: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    /// The free `spawn`, from inside the runtime (a task or `block_on`).
    fn spawn<F>(future: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    /// `task::yield_now`.
    fn yield_now() -> impl Future<Output = ()> + Send;
}

impl Contender for epitome_runtime::runtime::Runtime {
    type Join<T: Send + 'static> = epitome_runtime::task::JoinHandle<T>;
    type JoinError = epitome_runtime::task::JoinError;

    fn run<F: Future>(&self, future: F) -> F::Output {
        self.block_on(future)
    }

    fn spawn_outside<F>(&self, future: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(future)
    }

    fn spawn<F>(future: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        epitome_runtime::spawn(future)
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        epitome_runtime::task::yield_now()
    }
}

impl Contender for tokio::runtime::Runtime {
    type Join<T: Send + 'static> = tokio::task::JoinHandle<T>;
    type JoinError = tokio::task::JoinError;

    fn run<F: Future>(&self, future: F) -> F::Output {
        self.block_on(future)
    }

    fn spawn_outside<F>(&self, future: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(future)
    }

    fn spawn<F>(future: F) -> Self::Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(future)
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
}

/// Builds one iteration of `shape` on `rt` (which it keeps).
pub(super) fn iteration<R: Contender>(rt: R, shape: Shape) -> Iteration {
    match shape {
        Shape::SpawnMany => Box::new(move || spawn_many(&rt)),
        Shape::YieldMany => Box::new(move || yield_many(&rt)),
        Shape::PingPong => Box::new(move || ping_pong(&rt)),
        Shape::ChainedSpawn => Box::new(move || chained_spawn(&rt)),
        Shape::SpawnManyLocal => {
            let mut handles = Vec::with_capacity(SPAWN_CURRENT);
            Box::new(move || spawn_many_local(&rt, &mut handles))
        }
        Shape::SpawnManyRemoteIdle => {
            let mut handles = Vec::with_capacity(SPAWN_CURRENT);
            Box::new(move || spawn_many_remote(&rt, &mut handles))
        }
        Shape::SpawnManyRemoteBusy => {
            // One task that forever respawns itself keeps the runtime busy whenever it
            // runs; it is cancelled when the runtime drops.
            fn respawn<R: Contender>() {
                drop(R::spawn(async { respawn::<R>() }));
            }
            drop(rt.spawn_outside(async { respawn::<R>() }));
            let mut handles = Vec::with_capacity(SPAWN_CURRENT);
            Box::new(move || spawn_many_remote(&rt, &mut handles))
        }
    }
}

fn spawn_many<R: Contender>(rt: &R) {
    let latch = Latch::new(SPAWN_MANY);
    rt.run(async {
        for _ in 0..SPAWN_MANY {
            let latch = latch.clone();
            drop(R::spawn(async move { latch.count_down() }));
        }
        latch.wait().await;
    });
}

fn yield_many<R: Contender>(rt: &R) {
    let latch = Latch::new(YIELD_TASKS);
    for _ in 0..YIELD_TASKS {
        let latch = latch.clone();
        drop(rt.spawn_outside(async move {
            for _ in 0..YIELDS_PER_TASK {
                R::yield_now().await;
            }
            latch.count_down();
        }));
    }
    rt.run(latch.wait());
}

fn ping_pong<R: Contender>(rt: &R) {
    let latch = Latch::new(PINGS);
    rt.run(async {
        let pings = latch.clone();
        drop(R::spawn(async move {
            for _ in 0..PINGS {
                let latch = pings.clone();
                drop(R::spawn(async move {
                    let (tx1, rx1) = oneshot::channel();
                    let (tx2, rx2) = oneshot::channel();
                    drop(R::spawn(async move {
                        expect_sent(rx1.await);
                        tx2.send(());
                    }));
                    tx1.send(());
                    expect_sent(rx2.await);
                    latch.count_down();
                }));
            }
        }));
        latch.wait().await;
    });
}

fn chained_spawn<R: Contender>(rt: &R) {
    fn link<R: Contender>(done: oneshot::Sender<()>, n: usize) {
        if n == 0 {
            done.send(());
        } else {
            drop(R::spawn(async move { link::<R>(done, n - 1) }));
        }
    }
    rt.run(async {
        let (tx, rx) = oneshot::channel();
        drop(R::spawn(async move { link::<R>(tx, CHAIN) }));
        expect_sent(rx.await);
    });
}

fn spawn_many_local<R: Contender>(rt: &R, handles: &mut Vec<R::Join<()>>) {
    rt.run(async {
        for _ in 0..SPAWN_CURRENT {
            handles.push(R::spawn(async {}));
        }
        await_all::<R>(handles).await;
    });
}

fn spawn_many_remote<R: Contender>(rt: &R, handles: &mut Vec<R::Join<()>>) {
    for _ in 0..SPAWN_CURRENT {
        handles.push(rt.spawn_outside(async {}));
    }
    rt.run(await_all::<R>(handles));
}

async fn await_all<R: Contender>(handles: &mut Vec<R::Join<()>>) {
    for handle in handles.drain(..) {
        if let Err(e) = handle.await {
            panic!("a benchmark task failed: {e:?}");
        }
    }
}

fn expect_sent<T>(received: Result<T, oneshot::Closed>) -> T {
    match received {
        Ok(v) => v,
        Err(oneshot::Closed) => panic!("a benchmark task dropped its oneshot sender"),
    }
}
