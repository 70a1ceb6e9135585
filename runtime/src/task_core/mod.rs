//! The task layer: a task's allocation, its state word, its waker and the handles users
//! hold ([`JoinHandle`], [`AbortHandle`], [`JoinError`], [`Id`]). A task knows its
//! scheduler only as a [`Schedule`] trait; the public `task` module, above the
//! scheduler, spawns them.
//!
//! A task is one allocation: a `raw::Header` (state word, vtable, queue and list
//! links), the handle of the scheduler that owns it, the future (later its output)
//! and the join waker. See `state.rs` for the state word and `raw.rs` for who may touch
//! which field.

mod cell;
#[cfg(all(test, not(epitome_loom)))]
pub(crate) use cell::cell_bytes;
mod error;
pub(crate) mod header;
mod id;
mod join;
pub(crate) mod list;
pub(crate) mod schedule;
pub(crate) mod state;
mod waker;

pub use error::JoinError;
pub(crate) use header::Header;
pub use id::{Id, id, try_id};
pub use join::{AbortHandle, JoinHandle};
pub(crate) use list::TaskList;
pub(crate) use schedule::{Notified, Schedule, new_task};
