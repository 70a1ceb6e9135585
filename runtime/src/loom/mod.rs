//! The one place that chooses between std and loom concurrency primitives.
//!
//! Every atomic, lock, cell, thread and thread-local in epitome-runtime comes from
//! here. There are two kinds:
//!
//! - **Modelled** ([`sync`], [`cell`], [`thread`], [`thread_local!`]): std in a normal
//!   build; under `--cfg epitome_loom` the loom versions, so the loom models
//!   (`loom_models/`) explore every interleaving of the real code. The std build exposes
//!   the same surface (notably [`UnsafeCell::with`](cell::UnsafeCell::with) /
//!   [`UnsafeCell::with_mut`](cell::UnsafeCell::with_mut)), so code reads the same
//!   either way. Everything on a wakeup path uses these.
//! - **Never modelled** ([`os`]): std in every build, for what loom cannot or need not
//!   model (OS threads, process-wide counters, the runtime's handles, single-thread
//!   cells). Where a model runs code that uses them (the worker, `LocalSet`), they are
//!   what no two model threads race on: reference counts of handles, cells only the
//!   owning thread touches.
//!
//! Code that a model runs makes no syscalls: the kernel side sits behind a trait
//! (`eventpoll::kernel::Kernel`, whose loom stand-in is `FakeKernel`; the worker's
//! unpark eventfd behind `scheduler::park::Wakeup`).

#[macro_use]
mod poison_free;

#[cfg(not(epitome_loom))]
mod std_impl;
#[cfg(not(epitome_loom))]
pub(crate) use std_impl::*;

#[cfg(epitome_loom)]
mod loom_impl;
#[cfg(epitome_loom)]
pub(crate) use loom_impl::*;

/// Never modelled: std in every build, loom or not.
///
/// For what loom does not provide, or no model races on:
///
/// - OS threads ([`thread`](os::thread)): the worker threads the builder starts,
///   `block_on`'s park/unpark (the blocking pool's threads are modelled: loom's timed
///   waits never time out, which a model of its wakeups wants);
/// - the locks of code no model runs ([`Mutex`](os::sync::Mutex): the runtime's
///   handle, the current-thread runtime's core hand-over; [`Condvar`](os::sync::Condvar)
///   is kept for the same surface);
/// - the runtime's own handles, which need std's `Arc` (`Wake`, `Weak`, `new_cyclic`,
///   `Arc<dyn Fn>`, `self: &Arc<Self>` receivers), and one-time initialisation
///   ([`OnceLock`](os::sync::OnceLock));
/// - `static` counters (loom atomics cannot be `static`);
/// - thread-locals ([`thread_local!`](os::thread_local)) and the single-thread cells
///   they hold ([`Cell`](os::cell::Cell), [`RefCell`](os::cell::RefCell)), and the
///   cells of structures only the worker's own thread touches.
#[allow(dead_code, unused_imports)]
pub(crate) mod os {
    pub(crate) mod sync {
        pub(crate) use std::sync::{Arc, OnceLock, Weak};
        crate::loom::poison_free::poison_free!(std::sync);

        pub(crate) mod atomic {
            pub(crate) use std::sync::atomic::{
                AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
            };
        }
    }

    pub(crate) mod cell {
        pub(crate) use std::cell::{Cell, RefCell};
    }

    pub(crate) use std::thread;
    pub(crate) use std::thread_local;
}

/// A planted bug for the loom suite: evaluates `bug` in a build with
/// `--cfg epitome_loom_mutant="NAME"`, or in the loom models' build while the environment
/// variable `EPITOME_LOOM_MUTANT` is `NAME` (`loom-tests/run.sh` runs each planted bug that
/// way, all from one build, and expects the model that guards it to fail); `code` in every
/// other build. Both are type-checked in every build; outside the models' build the one
/// not taken is compiled out. Every site is one of these, and each name is declared in the
/// workspace's `unexpected_cfgs`.
macro_rules! planted_bug {
    ($name:literal, bug: $bug:expr, code: $code:expr $(,)?) => {
        if cfg!(epitome_loom_mutant = $name) || $crate::loom::planted($name) {
            $bug
        } else {
            $code
        }
    };
}
pub(crate) use planted_bug;

/// Whether the planted bug `name` is selected (see [`planted_bug!`]): never, outside the
/// loom models' build.
#[cfg(not(all(test, epitome_loom)))]
#[inline(always)]
pub(crate) const fn planted(_name: &str) -> bool {
    false
}

/// Whether the planted bug `name` is selected (see [`planted_bug!`]): `EPITOME_LOOM_MUTANT`
/// names it, read once.
#[cfg(all(test, epitome_loom))]
pub(crate) fn planted(name: &str) -> bool {
    static SELECTED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SELECTED
        .get_or_init(|| std::env::var("EPITOME_LOOM_MUTANT").ok())
        .as_deref()
        == Some(name)
}

/// Sets `flag` to `value` where another thread swaps it: a plain store in the normal
/// build; in the loom build a swap, because loom lets a plain store slip between the read
/// and the write of a concurrent swap (tokio-rs/loom#254 and #389; the fix, loom PR
/// #391, is unreleased), an execution C++ forbids (modification order is total, and a
/// swap reads the value just before its own write), which fails a model falsely. A swap
/// has every execution the store has in C++, so the model loses nothing.
#[inline(always)]
pub(crate) fn store_beside_swap(
    flag: &sync::atomic::AtomicBool,
    value: bool,
    order: sync::atomic::Ordering,
) {
    #[cfg(not(epitome_loom))]
    flag.store(value, order);
    #[cfg(epitome_loom)]
    flag.swap(value, order);
}

/// Plain reads and writes of a `Copy` value in a shim `UnsafeCell`, for the link and
/// flag fields whose ownership rules make one `unsafe` block cover several accesses.
pub(crate) trait CellExt<T: Copy> {
    /// # Safety
    /// No other thread writes the cell concurrently (the field's ownership rule).
    unsafe fn read(&self) -> T;
    /// # Safety
    /// No other thread accesses the cell concurrently.
    unsafe fn write(&self, value: T);
}

impl<T: Copy> CellExt<T> for cell::UnsafeCell<T> {
    unsafe fn read(&self) -> T {
        // SAFETY: per the caller, nobody writes concurrently.
        self.with(|p| unsafe { *p })
    }
    unsafe fn write(&self, value: T) {
        // SAFETY: per the caller, nobody else accesses the cell.
        self.with_mut(|p| unsafe { *p = value })
    }
}

/// Runs a unit test's body: as it is in a normal build; in the loom build, as a loom
/// model of one thread (loom's atomics and locks work only inside a model). So a file's
/// single-threaded unit tests are part of the loom suite too, the test command of
/// `scripts/mutants.sh`'s first pass, and a mutant of plain logic (a bit table, a
/// predicate) dies there instead of needing the std tests.
#[cfg(test)]
pub(crate) fn unit_test(body: impl Fn() + Sync + Send + 'static) {
    #[cfg(epitome_loom)]
    loom::model(body);
    #[cfg(not(epitome_loom))]
    body();
}
