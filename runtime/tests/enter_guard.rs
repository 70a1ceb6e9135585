//! `Runtime::enter` / `Handle::enter` guards: nesting, out-of-order drops (they panic,
//! as tokio's do, and never leave a runtime entered without a live guard), and runtime
//! ids.

mod support;

use std::collections::HashSet;

use epitome_runtime::runtime::Handle;
use support::{FLAVORS, both_flavors, current_thread, multi, panic_message_of, with_watchdog};

const OUT_OF_ORDER: &str = "`EnterGuard` values dropped out of order";

fn current_id() -> Option<epitome_runtime::runtime::Id> {
    Handle::try_current().ok().map(|h| h.id())
}

#[test]
fn guards_dropped_in_order_restore_each_runtime_in_turn() {
    let _watchdog = support::watchdog();
    let (rt1, rt2, rt3) = (current_thread(), multi(1), current_thread());
    let g1 = rt1.enter();
    let g2 = rt2.enter();
    let g3 = rt3.enter();
    assert_eq!(current_id(), Some(rt3.handle().id()));
    drop(g3);
    assert_eq!(current_id(), Some(rt2.handle().id()));
    drop(g2);
    assert_eq!(current_id(), Some(rt1.handle().id()));
    drop(g1);
    assert_eq!(current_id(), None);
}

/// Issue 20's case: `g1 = rt1.enter(); g2 = rt2.enter(); drop(g1); drop(g2)` used to
/// leave a runtime entered with no guard alive.
#[test]
fn an_out_of_order_drop_panics_and_leaves_no_runtime_entered() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let (rt1, rt2) = (make(), make());
            let g1 = rt1.enter();
            let g2 = rt2.enter();
            let msg = panic_message_of(move || drop(g1));
            assert!(msg.starts_with(OUT_OF_ORDER), "{name}: {msg}");
            // The context is what it was before `g1`: nothing, not a stale `rt1`.
            assert_eq!(current_id(), None, "{name}");
            // `g2` was unwound with `g1`: dropping it now is quiet and changes nothing.
            drop(g2);
            assert_eq!(current_id(), None, "{name}");
            assert!(
                Handle::try_current()
                    .expect_err("no guard is alive")
                    .is_missing_context()
            );
            // And the thread can enter runtimes again as usual.
            let g = rt2.enter();
            assert_eq!(current_id(), Some(rt2.handle().id()), "{name}");
            drop(g);
            assert_eq!(current_id(), None, "{name}");
        });
    }
}

#[test]
fn an_out_of_order_drop_restores_the_runtime_entered_before_the_dropped_guard() {
    let _watchdog = support::watchdog();
    with_watchdog("three guards", || {
        let (rt0, rt1, rt2) = (current_thread(), current_thread(), current_thread());
        let g0 = rt0.enter();
        let g1 = rt1.enter();
        let g2 = rt2.enter();
        let msg = panic_message_of(move || drop(g1));
        assert!(msg.starts_with(OUT_OF_ORDER), "{msg}");
        assert_eq!(current_id(), Some(rt0.handle().id()));
        // A guard entered after the unwinding nests as usual on top of `g0`.
        let g3 = rt2.enter();
        assert_eq!(current_id(), Some(rt2.handle().id()));
        // The unwound guard must not disturb it.
        drop(g2);
        assert_eq!(current_id(), Some(rt2.handle().id()));
        drop(g3);
        assert_eq!(current_id(), Some(rt0.handle().id()));
        drop(g0);
        assert_eq!(current_id(), None);
    });
}

#[test]
fn an_out_of_order_drop_during_a_panic_does_not_panic_again() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    with_watchdog("drop while unwinding", || {
        let (rt1, rt2) = (current_thread(), current_thread());
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Declared in this order, dropped in reverse while unwinding: `g2`'s holder
            // drops `g1` first.
            struct Holder<'a>(Option<epitome_runtime::runtime::EnterGuard<'a>>);
            let g1 = rt1.enter();
            let mut holder = Holder(None);
            let g2 = rt2.enter();
            holder.0 = Some(g1);
            let _g2 = g2;
            let _holder = holder;
            std::panic::panic_any(support::ExpectedPanic(4));
        }));
        let payload = res.expect_err("the closure panics");
        assert_eq!(
            payload.downcast_ref::<support::ExpectedPanic>(),
            Some(&support::ExpectedPanic(4)),
            "the original panic comes through, not a second one"
        );
        assert_eq!(current_id(), None);
    });
}

#[test]
fn guards_and_block_on_nest_on_both_flavors() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let other = current_thread();
        let _outer = other.enter();
        // `block_on` enters its own runtime for the future, and restores the outer one.
        let inside = rt.block_on(async { current_id() });
        assert_eq!(inside, Some(rt.handle().id()), "{name}");
        assert_eq!(current_id(), Some(other.handle().id()), "{name}");
        // A guard made and dropped inside a task does not leak out of it.
        let h = other.handle().clone();
        let seen = rt.block_on(async move {
            epitome_runtime::spawn(async move {
                let g = h.enter();
                let inner = current_id();
                drop(g);
                (inner, current_id())
            })
            .await
            .unwrap()
        });
        assert_eq!(seen.0, Some(other.handle().id()), "{name}");
        assert_eq!(seen.1, Some(rt.handle().id()), "{name}");
    }
}

#[test]
fn runtime_ids_are_distinct_and_stable() {
    let _watchdog = support::watchdog();
    let runtimes: Vec<_> = (0..4)
        .map(|i| {
            if i % 2 == 0 {
                current_thread()
            } else {
                multi(1)
            }
        })
        .collect();
    let ids: HashSet<_> = runtimes.iter().map(|rt| rt.handle().id()).collect();
    assert_eq!(ids.len(), runtimes.len());
    for rt in &runtimes {
        let id = rt.handle().id();
        assert_eq!(rt.handle().clone().id(), id);
        assert_eq!(rt.block_on(async { Handle::current().id() }), id);
        assert_eq!(id.to_string().parse::<u64>().ok().map(|_| ()), Some(()));
        assert!(format!("{:?}", rt.handle()).contains(&format!("{id:?}")));
    }
}
