//! What one connection costs the runtime itself, in bytes: printed by this test
//! (`cargo test -p epitome-runtime --lib footprint -- --nocapture`) and quoted in
//! `docs/server-models.md`. Sizes only, no timing: the bounds catch a field that
//! makes every connection dearer.
//!
//! Per connection served by a task of its own:
//!
//! - the task's allocation beside its future: header, scheduler handle, the stage's
//!   tag and join waker (the future, the handler's state, comes on top);
//! - the source's shared readiness state (`ScheduledIo`, in an `Arc`);
//! - the eventpoll item carrying the source, and its interest-tree links;
//! - and, inside the future, the socket's `Registration`.
//!
//! The kernel's own epitem, wait-queue entry and socket are kernel memory, outside the
//! process's RSS.

use std::future::Future;
use std::mem::size_of;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::eventpoll::{item_bytes, rbtree::NODE_BYTES};
use crate::loom::sync::Arc;
use crate::reactor::Source;
use crate::reactor::registration::Registration;
use crate::reactor::scheduled_io::ScheduledIo;
use crate::scheduler::worker::WorkerShared;
use crate::task_core::cell_bytes;

/// A stand-in for a connection's future, the size of the echo example's with
/// `serve`'s live count (`net/tests/echo_example.rs` prints the echo's): a task's
/// stage holds the future, or its output or `JoinError` once finished, so a future
/// smaller than a `JoinError` would count some of the stage as the runtime's.
struct Handler {
    _state: [u64; 29],
}

impl Future for Handler {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// An `Arc`'s two counts, in front of its value.
const ARC_COUNTS: usize = 2 * size_of::<usize>();

#[test]
fn runtime_bytes_per_connection() {
    // Outside the connection's future: what the runtime allocates for it.
    let parts = [
        (
            "task, beside its future (header, scheduler, join waker)",
            cell_bytes::<Handler, Arc<WorkerShared>>() - size_of::<Handler>(),
        ),
        (
            "ScheduledIo, the source's readiness (in an Arc)",
            size_of::<ScheduledIo>() + ARC_COUNTS,
        ),
        ("eventpoll item", item_bytes::<Source>()),
        ("interest-tree node", NODE_BYTES),
    ];
    let total: usize = parts.iter().map(|(_, bytes)| bytes).sum();
    for (what, bytes) in parts {
        println!("{what:<56} {bytes:>4} bytes");
    }
    println!(
        "{:<56} {total:>4} bytes",
        "total, besides the connection's future"
    );
    println!(
        "{:<56} {:>4} bytes",
        "Registration (in the socket, in the future)",
        size_of::<Registration>()
    );
    assert!(
        total <= 320,
        "the runtime's bytes per connection grew to {total}"
    );
}
