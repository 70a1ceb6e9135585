//! `Builder`: configures and builds a [`Runtime`].

use std::fmt;
use std::io;
use std::time::Duration;

use super::Runtime;
use crate::blocking::{BlockingPool, Callback, Config};
use crate::loom::os::sync::Arc;
use crate::loom::os::thread;
use crate::scheduler::worker::{Core, WorkerShared};
use crate::scheduler::{Kind, RuntimeShared, context};

/// Builds a runtime.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Builder::new_multi_reactor()
///     .reactors(2)
///     .thread_name("my-worker")
///     .build()?;
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// # Ok(())
/// # }
/// ```
pub struct Builder {
    kind: Kind,
    name: Option<String>,
    reactors: Option<usize>,
    thread_name: Arc<dyn Fn() -> String + Send + Sync>,
    stack_size: Option<usize>,
    on_thread_start: Option<Callback>,
    on_thread_stop: Option<Callback>,
    max_blocking_threads: usize,
    keep_alive: Duration,
    event_interval: u32,
}

impl Builder {
    /// One worker, driven by the thread that calls `block_on`.
    pub fn new_current_thread() -> Builder {
        Builder::new(Kind::CurrentThread)
    }

    /// Several workers, each on its own thread with its own reactor.
    pub fn new_multi_reactor() -> Builder {
        Builder::new(Kind::MultiReactor)
    }

    /// tokio's name for [`new_multi_reactor`](Self::new_multi_reactor): the runtime
    /// that runs tasks on several threads. Unlike tokio's, its workers do not steal
    /// each other's tasks (see the [module docs](super)).
    pub fn new_multi_thread() -> Builder {
        Builder::new_multi_reactor()
    }

    fn new(kind: Kind) -> Builder {
        Builder {
            kind,
            name: None,
            reactors: None,
            thread_name: Arc::new(|| "epitome-worker".to_string()),
            stack_size: None,
            on_thread_start: None,
            on_thread_stop: None,
            max_blocking_threads: 512,
            keep_alive: Duration::from_secs(10),
            event_interval: 61,
        }
    }

    /// Number of workers (reactor threads) of a multi-reactor runtime. Default: the
    /// available parallelism. Ignored by the current-thread runtime.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn reactors(&mut self, n: usize) -> &mut Self {
        assert!(n > 0, "a runtime needs at least one reactor");
        self.reactors = Some(n);
        self
    }

    /// The runtime's name, for the application's own use ([`Handle::name`]); it does
    /// not name threads (see [`thread_name`](Self::thread_name)).
    ///
    /// [`Handle::name`]: super::Handle::name
    ///
    /// # Panics
    ///
    /// If `name` is empty or only whitespace (as tokio's).
    #[track_caller]
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        assert!(!name.trim().is_empty(), "runtime name shouldn't be empty");
        self.name = Some(name);
        self
    }

    /// tokio's name for [`reactors`](Self::reactors): each worker thread has its own
    /// reactor.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn worker_threads(&mut self, n: usize) -> &mut Self {
        self.reactors(n)
    }

    /// Name of the threads the runtime starts (workers and blocking pool).
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.thread_name = Arc::new(move || name.clone());
        self
    }

    /// A function giving each new thread its name.
    pub fn thread_name_fn(&mut self, f: impl Fn() -> String + Send + Sync + 'static) -> &mut Self {
        self.thread_name = Arc::new(f);
        self
    }

    /// Stack size of the threads the runtime starts.
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Runs on each thread the runtime starts, before it does anything else.
    pub fn on_thread_start(&mut self, f: impl Fn() + Send + Sync + 'static) -> &mut Self {
        self.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Runs on each thread the runtime started, just before it exits.
    pub fn on_thread_stop(&mut self, f: impl Fn() + Send + Sync + 'static) -> &mut Self {
        self.on_thread_stop = Some(Arc::new(f));
        self
    }

    /// Most threads the blocking pool may have. Default 512.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Self {
        assert!(n > 0, "the blocking pool needs at least one thread");
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking thread waits for work before it exits. Default 10 s.
    pub fn thread_keep_alive(&mut self, d: Duration) -> &mut Self {
        self.keep_alive = d;
        self
    }

    /// Tasks a worker runs between two looks at its reactor and remote queue, even when
    /// its local queue never empties. Default 61 (tokio's).
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn event_interval(&mut self, n: u32) -> &mut Self {
        assert!(n > 0, "event_interval must be at least 1");
        self.event_interval = n;
        self
    }

    /// For tokio compatibility: I/O and timers are always enabled.
    pub fn enable_all(&mut self) -> &mut Self {
        self
    }

    /// For tokio compatibility: I/O is always enabled.
    pub fn enable_io(&mut self) -> &mut Self {
        self
    }

    /// For tokio compatibility: timers are always enabled.
    pub fn enable_time(&mut self) -> &mut Self {
        self
    }

    /// Builds the runtime: creates each worker's reactor (an epoll instance and an
    /// eventfd) and, for a multi-reactor runtime, starts the worker threads.
    ///
    /// # Errors
    ///
    /// Creating an fd (`EMFILE`, `ENFILE`, `ENOMEM`) or a thread failed; everything made
    /// so far is released.
    pub fn build(&mut self) -> io::Result<Runtime> {
        let n = match self.kind {
            Kind::CurrentThread => 1,
            Kind::MultiReactor => self
                .reactors
                .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get())),
        };
        let mut shared = Vec::with_capacity(n);
        let mut cores = Vec::with_capacity(n);
        for _ in 0..n {
            let (s, c) = WorkerShared::new()?;
            shared.push(s);
            cores.push(c);
        }
        let blocking = BlockingPool::new(Config {
            max_threads: self.max_blocking_threads,
            keep_alive: self.keep_alive,
            thread_name: self.thread_name.clone(),
            stack_size: self.stack_size,
            on_start: self.on_thread_start.clone(),
            on_stop: self.on_thread_stop.clone(),
        });
        let rt = Arc::new(RuntimeShared::new(
            self.kind,
            self.name.clone(),
            shared.into_boxed_slice(),
            blocking,
            self.event_interval,
        ));
        let pool_runtime: Arc<dyn crate::blocking::PoolRuntime> = rt.clone();
        rt.blocking.set_runtime(Arc::downgrade(&pool_runtime));
        match self.kind {
            Kind::CurrentThread => {
                let core = cores.pop().map(Box::new);
                Ok(Runtime::from_parts(rt, core, Vec::new()))
            }
            Kind::MultiReactor => {
                let mut threads = Vec::with_capacity(n);
                for core in cores {
                    match self.start_worker(rt.clone(), Box::new(core)) {
                        Ok(t) => threads.push(t),
                        Err(e) => {
                            // Stop the threads already started, then report.
                            drop(Runtime::from_parts(rt, None, threads));
                            return Err(e);
                        }
                    }
                }
                Ok(Runtime::from_parts(rt, None, threads))
            }
        }
    }

    fn start_worker(
        &self,
        rt: Arc<RuntimeShared>,
        core: Box<Core>,
    ) -> io::Result<thread::JoinHandle<()>> {
        let mut builder = thread::Builder::new().name((self.thread_name)());
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        let on_start = self.on_thread_start.clone();
        let on_stop = self.on_thread_stop.clone();
        builder.spawn(move || {
            let interval = rt.event_interval;
            core.set_siblings(
                rt.workers
                    .iter()
                    .filter(|w| !Arc::ptr_eq(w, &core.local.shared))
                    .cloned(),
            );
            *core.local.lend_to.borrow_mut() = Some(Arc::downgrade(&rt));
            let timer = core.local.shared.timer.clone();
            let enter = context::enter_with_timer(rt, timer);
            let worker = context::set_worker(&core);
            if let Some(f) = &on_start {
                f();
            }
            core.run_until_shutdown(interval);
            core.local.shutdown();
            drop(worker);
            drop(enter);
            if let Some(f) = &on_stop {
                f();
            }
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("reactors", &self.reactors)
            .field("max_blocking_threads", &self.max_blocking_threads)
            .field("event_interval", &self.event_interval)
            .finish()
    }
}
