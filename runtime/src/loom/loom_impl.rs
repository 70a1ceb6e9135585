//! loom-backed primitives, selected by `--cfg epitome_loom`.

#![allow(dead_code, unused_imports)]

pub(crate) mod sync {
    pub(crate) use loom::sync::Arc;
    crate::loom::poison_free::poison_free!(loom::sync);

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{
            AtomicBool, AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
        };
    }
}

pub(crate) mod cell {
    pub(crate) use loom::cell::UnsafeCell;
}

pub(crate) mod thread {
    pub(crate) use loom::thread::{Builder, JoinHandle, ThreadId, current, park, spawn, yield_now};

    /// Whether the thread has finished: loom's handles cannot tell, so never (a caller
    /// keeps the handle and joins it later).
    pub(crate) fn is_finished<T>(_handle: &JoinHandle<T>) -> bool {
        false
    }
}

// loom runs its threads as coroutines on one OS thread, so modelled code needs loom's
// thread-locals for each model thread to see its own. loom's macro has no `const { }`
// initialiser; this one takes std's form and drops the `const`, so one declaration
// serves both builds.
macro_rules! modelled_thread_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr } $(; $($rest:tt)*)?) => {
        loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
        $($crate::loom::thread_local!($($rest)*);)?
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr $(; $($rest:tt)*)?) => {
        loom::thread_local!($(#[$attr])* $vis static $name: $t = $init);
        $($crate::loom::thread_local!($($rest)*);)?
    };
}
pub(crate) use modelled_thread_local as thread_local;
