//! Timers: [`sleep`](fn@sleep), [`timeout`](fn@timeout) and [`interval`](fn@interval), mirroring
//! `tokio::time`.
//!
//! # The parts
//!
//! - The **wheel** (`wheel.rs`) is a hierarchical timing wheel of 1 µs ticks, 8
//!   levels of 64 slots, with O(1) insert, remove and reset and exact firing order;
//!   its module documentation describes the design (modelled on the kernel's
//!   `kernel/time/timer.c` and tokio's `runtime/time/wheel`).
//! - The **driver** (`driver.rs`) is one wheel per worker behind a mutex, holding the
//!   [`Waker`](std::task::Waker) of each pending timer. Any thread registers, moves
//!   and cancels timers on it; the owning worker asks it when to wake up next and
//!   fires the expired timers, waking their tasks outside the lock.
//! - The **futures**: [`Sleep`] owns one wheel entry, registered at its first poll
//!   on the polling worker's wheel and kept there for its life; [`Timeout`] is a
//!   future plus a `Sleep`; [`Interval`] re-arms one `Sleep` at every tick.
//!
//! # Guarantees
//!
//! A timer never completes before its deadline: deadlines are rounded up to the
//! wheel's microsecond ticks, and an entry fires only once `now >= deadline` exactly.
//! Timers of one wheel fire in deadline order, equal deadlines in the order they were
//! set. How late a timer completes depends on how promptly its worker gets to it:
//! the worker sleeps until the wheel's next wake, which is never after the earliest
//! deadline.
//!
//! # Runtime
//!
//! Creating timers needs no runtime. Polling one for the first time does: it
//! registers on the wheel of the worker thread polling it, and panics on a thread
//! without an epitome runtime.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use epitome_runtime::time::{interval, sleep, timeout};
//!
//! let rt = epitome_runtime::runtime::Builder::new_current_thread().build().unwrap();
//! rt.block_on(async {
//!     // A sleep never ends early.
//!     let start = Instant::now();
//!     sleep(Duration::from_millis(10)).await;
//!     assert!(start.elapsed() >= Duration::from_millis(10));
//!
//!     // A timeout: the future's output, or `Elapsed`.
//!     assert_eq!(timeout(Duration::from_secs(1), async { 5 }).await, Ok(5));
//!     assert!(timeout(Duration::from_millis(1), sleep(Duration::from_secs(60))).await.is_err());
//!
//!     // An interval: the first tick is immediate, then one per period.
//!     let mut ticks = interval(Duration::from_millis(5));
//!     let first = ticks.tick().await;
//!     let second = ticks.tick().await;
//!     assert!(second - first >= Duration::from_millis(5));
//! });
//! ```

pub(crate) mod driver;
pub mod error;
mod interval;
mod sleep;
mod timeout;
pub(crate) mod wheel;

#[cfg(all(test, not(epitome_loom)))]
mod test_util;

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use sleep::{Sleep, sleep, sleep_until};
pub use std::time::{Duration, Instant};
pub use timeout::{Timeout, timeout, timeout_at};

#[allow(unused_imports)] // Until the worker loop uses them.
pub(crate) use driver::{TimerShared, Unpark, current, set_current};
