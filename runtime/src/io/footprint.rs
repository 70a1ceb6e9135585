//! What one connection costs the runtime itself, in bytes: printed by this test
//! (`cargo test -p epitome-runtime --lib footprint -- --nocapture`) and quoted in
//! `docs/server-models.md`. Sizes only, no timing: the bounds catch a field that
//! makes every connection dearer.
//!
//! Per connection served by a task of its own:
//!
//! - the task's allocation: its header, scheduler handle, future slot and join waker
//!   (the future's own state, the handler's locals, comes on top);
//! - the `Registration` inside the socket, which lives in the future;
//! - the source's shared readiness state (`ScheduledIo`, in an `Arc`);
//! - the eventpoll item carrying the source, and its interest-tree links.
//!
//! The kernel's own epitem, wait-queue entry and socket are kernel memory, outside the
//! process's RSS.

use std::future::Pending;
use std::mem::size_of;

use crate::eventpoll::{item_bytes, rbtree::NODE_BYTES};
use crate::loom::sync::Arc;
use crate::reactor::Source;
use crate::reactor::registration::Registration;
use crate::reactor::scheduled_io::ScheduledIo;
use crate::scheduler::worker::WorkerShared;
use crate::task_core::cell_bytes;

/// An `Arc`'s two counts, in front of its value.
const ARC_COUNTS: usize = 2 * size_of::<usize>();

#[test]
fn runtime_bytes_per_connection() {
    let parts = [
        (
            "task (header, scheduler, stage, join waker)",
            cell_bytes::<Pending<()>, Arc<WorkerShared>>(),
        ),
        ("Registration (in the socket)", size_of::<Registration>()),
        (
            "ScheduledIo (in an Arc)",
            size_of::<ScheduledIo>() + ARC_COUNTS,
        ),
        ("eventpoll item", item_bytes::<Source>()),
        ("interest-tree node", NODE_BYTES),
    ];
    let total: usize = parts.iter().map(|(_, bytes)| bytes).sum();
    for (what, bytes) in parts {
        println!("{what:<45} {bytes:>4} bytes");
    }
    println!(
        "{:<45} {total:>4} bytes",
        "total, before the future's own state"
    );
    assert!(
        total <= 512,
        "the runtime's bytes per connection grew to {total}"
    );
}
