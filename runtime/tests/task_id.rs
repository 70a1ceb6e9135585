//! Task ids: `task::id()` / `task::try_id()` inside tasks (spawned, local, blocking,
//! in a `LocalSet`), `None` elsewhere, and the same id as the task's handles report.

mod support;

use std::collections::HashSet;

use epitome_runtime::task::{self, JoinSet, LocalSet, spawn_blocking, spawn_local, yield_now};
use support::{FLAVORS, block_on_plain, both_flavors, current_thread, panic_message_of};

#[test]
fn a_task_sees_its_own_id_across_polls() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let handle = rt.spawn(async {
            let first = task::id();
            yield_now().await;
            assert_eq!(task::try_id(), Some(first));
            first
        });
        let expected = handle.id();
        assert_eq!(handle.abort_handle().id(), expected, "{name}");
        assert_eq!(rt.block_on(handle).unwrap(), expected, "{name}");
    }
}

#[test]
fn ids_are_unique_across_tasks_and_runtimes() {
    let _watchdog = support::watchdog();
    let mut seen = HashSet::new();
    for (_, rt) in both_flavors() {
        let ids: Vec<task::Id> = rt.block_on(async {
            let mut set: JoinSet<task::Id> = (0..100).map(|_| async { task::id() }).collect();
            let mut ids = Vec::new();
            while let Some(res) = set.join_next_with_id().await {
                let (id, seen_inside) = res.unwrap();
                assert_eq!(id, seen_inside);
                ids.push(id);
            }
            ids
        });
        for id in ids {
            assert!(seen.insert(id), "{id} repeated");
        }
    }
    assert_eq!(seen.len(), 200);
}

#[test]
fn there_is_no_task_id_outside_a_task() {
    let _watchdog = support::watchdog();
    assert_eq!(task::try_id(), None);
    let msg = panic_message_of(task::id);
    assert_eq!(msg, "Can't get a task id when not inside a task");
    for (name, rt) in both_flavors() {
        // `block_on`'s own future is not a task.
        assert_eq!(rt.block_on(async { task::try_id() }), None, "{name}");
        let inner = rt.block_on(async {
            let outer = epitome_runtime::spawn(async {
                // Each nested poll sees its own task, and the outer one is back after.
                let me = task::id();
                let child = epitome_runtime::spawn(async { task::id() });
                (me, child.id(), child.await.unwrap(), task::id())
            });
            (outer.id(), outer.await.unwrap())
        });
        let (outer_id, (me, child_handle_id, child_seen, me_after)) = inner;
        assert_eq!(me, outer_id, "{name}");
        assert_eq!(me_after, outer_id, "{name}");
        assert_eq!(child_seen, child_handle_id, "{name}");
        assert_eq!(task::try_id(), None, "{name}: nothing left behind");
    }
    block_on_plain(async { assert_eq!(task::try_id(), None) });
}

#[test]
fn blocking_and_local_tasks_have_ids_too() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let rt = make();
        let blocking = rt.spawn_blocking(task::try_id);
        let blocking_id = blocking.id();
        assert_eq!(rt.block_on(blocking).unwrap(), Some(blocking_id), "{name}");
        let local = LocalSet::new();
        let (handle_id, seen) = local.block_on(&rt, async {
            let t = spawn_local(async { task::id() });
            (t.id(), t.await.unwrap())
        });
        assert_eq!(handle_id, seen, "{name}");
        // Inside a blocking closure started from a task: the closure's own id.
        let (outer, inner) = rt.block_on(async {
            epitome_runtime::spawn(async {
                let b = spawn_blocking(task::try_id);
                let b_id = b.id();
                (Some(b_id), b.await.unwrap())
            })
            .await
            .unwrap()
        });
        assert_eq!(outer, inner, "{name}");
    }
}

#[test]
fn a_task_id_displays_as_a_number() {
    let rt = current_thread();
    let t = rt.spawn(async {});
    let id = t.id();
    assert!(id.to_string().parse::<u64>().is_ok(), "{id}");
    assert_eq!(format!("{id:?}"), format!("Id({id})"));
    rt.block_on(t).unwrap();
}

#[test]
fn an_output_dropped_with_its_handle_sees_the_tasks_id() {
    let _watchdog = support::watchdog();
    struct Output(std::sync::Arc<std::sync::Mutex<Option<Option<task::Id>>>>);
    impl Drop for Output {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(task::try_id());
        }
    }
    for (name, rt) in both_flavors() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let s = seen.clone();
        let handle = rt.spawn(async move { Output(s) });
        let id = handle.id();
        rt.block_on(support::yield_until("finished", || handle.is_finished()));
        drop(handle);
        assert_eq!(*seen.lock().unwrap(), Some(Some(id)), "{name}");
        assert_eq!(task::try_id(), None, "{name}");
    }
}
