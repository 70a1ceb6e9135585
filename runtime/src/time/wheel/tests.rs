//! Tests of the timing wheel: targeted cases, a differential test against a
//! `BinaryHeap` model, and a million pending timers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use super::{TimerKey, Wheel};

/// SplitMix64: a tiny deterministic generator so every failure replays by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
const YEAR: u64 = 365 * 24 * 3600 * SEC;

/// A fixed base instant, and instants as nanosecond offsets from it.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }
    fn at(&self, nanos: u64) -> Instant {
        self.0 + Duration::from_nanos(nanos)
    }
}

fn drain(wheel: &mut Wheel<u64>, now: Instant) -> Vec<u64> {
    let mut fired = Vec::new();
    wheel.process(now, |_, v| fired.push(v));
    fired
}

#[test]
fn deadlines_round_up_and_never_fire_early() {
    let c = Clock::new();
    let mut wheel = Wheel::new(c.at(0));
    wheel.insert(c.at(1_500), 1);
    wheel.insert(c.at(2_000), 2);
    assert!(drain(&mut wheel, c.at(1_499)).is_empty());
    // The next wake is no later than the deadline, and processing there progresses.
    let wake = wheel.next_wake().unwrap();
    assert!(wake <= c.at(1_500));
    assert!(wheel.next_wake().unwrap() > c.at(1_499));
    assert_eq!(drain(&mut wheel, c.at(1_500)), [1]);
    assert_eq!(wheel.next_wake(), Some(c.at(2_000)));
    assert!(drain(&mut wheel, c.at(1_999)).is_empty());
    assert_eq!(drain(&mut wheel, c.at(2_000)), [2]);
    assert_eq!(wheel.len(), 0);
    assert_eq!(wheel.next_wake(), None);
    wheel.check_invariants();
}

#[test]
fn past_deadlines_fire_on_next_process_in_order() {
    let c = Clock::new();
    let mut wheel = Wheel::new(c.at(10 * MS));
    wheel.process(c.at(20 * MS), |_, _| unreachable!());
    // Before the origin, before `elapsed`, and in the current tick.
    wheel.insert(c.at(15 * MS), 3);
    wheel.insert(c.at(0), 1);
    wheel.insert(c.at(5 * MS), 2);
    wheel.insert(c.at(20 * MS), 4);
    assert_eq!(wheel.next_wake(), Some(c.at(0)));
    wheel.check_invariants();
    assert_eq!(drain(&mut wheel, c.at(20 * MS)), [1, 2, 3, 4]);
    assert_eq!(wheel.next_wake(), None);
}

#[test]
fn equal_deadlines_fire_in_insertion_order_and_reset_goes_last() {
    let c = Clock::new();
    let mut wheel = Wheel::new(c.at(0));
    let keys: Vec<TimerKey> = (0..10).map(|i| wheel.insert(c.at(5 * MS), i)).collect();
    // Entries of one tick, a few nanoseconds apart.
    wheel.insert(c.at(5 * MS - 1), 100);
    wheel.insert(c.at(5 * MS - 3), 99);
    assert!(wheel.reset(keys[2], c.at(5 * MS)));
    assert_eq!(
        drain(&mut wheel, c.at(6 * MS)),
        [99, 100, 0, 1, 3, 4, 5, 6, 7, 8, 9, 2]
    );
}

#[test]
fn within_one_tick_only_the_due_part_fires() {
    let c = Clock::new();
    let mut wheel = Wheel::new(c.at(0));
    for (i, nanos) in [3 * MS + 400, 3 * MS + 100, 3 * MS + 999, 3 * MS + 1_000]
        .into_iter()
        .enumerate()
    {
        wheel.insert(c.at(nanos), i as u64);
    }
    assert_eq!(drain(&mut wheel, c.at(3 * MS + 400)), [1, 0]);
    assert_eq!(wheel.next_wake(), Some(c.at(3 * MS + 999)));
    wheel.check_invariants();
    assert_eq!(drain(&mut wheel, c.at(3 * MS + 999)), [2]);
    assert_eq!(drain(&mut wheel, c.at(3 * MS + 1_000)), [3]);
}

#[test]
fn stale_keys_never_touch_reused_slots() {
    let c = Clock::new();
    let mut wheel = Wheel::new(c.at(0));
    let a = wheel.insert(c.at(MS), 1);
    assert_eq!(wheel.remove(a), Some(1));
    let b = wheel.insert(c.at(2 * MS), 2);
    assert_ne!(a, b);
    assert_eq!(wheel.remove(a), None);
    assert!(!wheel.reset(a, c.at(0)));
    assert!(wheel.get_mut(a).is_none());
    assert_eq!(wheel.deadline(a), None);
    assert_eq!(wheel.deadline(b), Some(c.at(2 * MS)));
    let mut fired = Vec::new();
    wheel.process(c.at(3 * MS), |k, v| fired.push((k, v)));
    assert_eq!(fired, [(b, 2)]);
    let d = wheel.insert(c.at(4 * MS), 4);
    assert!(!wheel.reset(b, c.at(0)));
    assert_eq!(wheel.remove(b), None);
    *wheel.get_mut(d).unwrap() += 1;
    assert_eq!(wheel.remove(d), Some(5));
}

#[test]
fn far_deadlines_wait_in_overflow_until_the_top_level_wraps() {
    let c = Clock::new();
    let mut wheel = Wheel::new(c.at(0));
    wheel.insert(c.at(20 * YEAR), 20);
    wheel.insert(c.at(9 * YEAR), 9);
    wheel.insert(c.at(100 * YEAR), 100);
    wheel.insert(c.at(8 * YEAR), 8);
    wheel.check_invariants();
    let mut now = c.at(0);
    let mut fired = Vec::new();
    let mut rounds = 0;
    while let Some(wake) = wheel.next_wake() {
        assert!(wake > now);
        now = wake;
        let before = fired.len();
        wheel.process(now, |_, v| fired.push((v, now)));
        wheel.check_invariants();
        assert!(fired.len() > before || wheel.next_wake().is_none_or(|w| w > now));
        rounds += 1;
    }
    assert!(rounds < 100, "{rounds} rounds");
    let order: Vec<u64> = fired.iter().map(|f| f.0).collect();
    assert_eq!(order, [8, 9, 20, 100]);
    for (years, at) in fired {
        assert_eq!(at, c.at(years * YEAR), "fired exactly on time");
    }
}

#[test]
fn huge_jump_fires_everything_in_order() {
    let c = Clock::new();
    let mut rng = Rng(7);
    let mut wheel = Wheel::new(c.at(0));
    let mut expected = Vec::new();
    for i in 0..20_000 {
        let nanos = match rng.below(3) {
            0 => rng.below(10 * MS),
            1 => rng.below(3600 * SEC),
            _ => rng.below(30 * YEAR),
        };
        wheel.insert(c.at(nanos), i);
        expected.push((nanos, i));
    }
    expected.sort();
    let fired = drain(&mut wheel, c.at(40 * YEAR));
    let expected: Vec<u64> = expected.into_iter().map(|e| e.1).collect();
    assert_eq!(fired, expected);
    assert_eq!(wheel.len(), 0);
}

/// The wheel's reference: a binary heap of (deadline, seq, id) with lazy deletion.
struct Model {
    heap: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    /// id -> (key, deadline, seq) of every pending entry.
    live: HashMap<u64, (TimerKey, Instant, u64)>,
    /// Mirrors the wheel's counter: bumped by every insert and successful reset.
    counter: u64,
}

impl Model {
    fn earliest(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, seq, id))) = self.heap.peek() {
            if self.live.get(&id).is_some_and(|e| e.2 == seq) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    fn expire(&mut self, now: Instant) -> Vec<(TimerKey, u64)> {
        let mut out = Vec::new();
        while let Some(deadline) = self.earliest() {
            if deadline > now {
                break;
            }
            let Reverse((_, _, id)) = self.heap.pop().unwrap();
            out.push((self.live.remove(&id).unwrap().0, id));
        }
        out
    }
}

/// The ids of pending entries, with O(1) random choice and removal.
#[derive(Default)]
struct IdSet {
    ids: Vec<u64>,
    pos: HashMap<u64, usize>,
}

impl IdSet {
    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    fn push(&mut self, id: u64) {
        self.pos.insert(id, self.ids.len());
        self.ids.push(id);
    }
    fn pick(&self, rng: &mut Rng) -> u64 {
        self.ids[rng.below(self.ids.len() as u64) as usize]
    }
    fn remove(&mut self, id: u64) {
        let at = self.pos.remove(&id).unwrap();
        self.ids.swap_remove(at);
        if let Some(&moved) = self.ids.get(at) {
            self.pos.insert(moved, at);
        }
    }
}

/// Random insert / remove / reset / process sequences, checked against [`Model`].
fn differential(seed: u64, ops: usize) {
    let mut rng = Rng(seed);
    let c = Clock::new();
    // Deadlines range from before the origin to a century after it.
    let mut wheel = Wheel::new(c.at(MS));
    let mut model = Model {
        heap: BinaryHeap::new(),
        live: HashMap::new(),
        counter: 0,
    };
    let mut now_ns = MS;
    let mut next_id = 0u64;
    let mut ids = IdSet::default();
    let mut dead: Vec<TimerKey> = Vec::new();
    let mut fired_total = 0usize;

    for op in 0..ops {
        if now_ns > 150 * YEAR {
            // Keep nanosecond offsets far from overflowing u64: empty the wheel and
            // start a new one.
            let now = c.at(now_ns + 100 * YEAR);
            let mut fired = Vec::new();
            wheel.process(now, |k, v| fired.push((k, v)));
            assert_eq!(fired, model.expire(now), "seed {seed} op {op}");
            assert_eq!(wheel.len(), 0);
            fired_total += fired.len();
            wheel = Wheel::new(c.at(MS));
            model = Model {
                heap: BinaryHeap::new(),
                live: HashMap::new(),
                counter: 0,
            };
            now_ns = MS;
            ids = IdSet::default();
            dead.clear();
        }
        let deadline_ns = |rng: &mut Rng, model: &Model, ids: &IdSet| -> u64 {
            match rng.below(16) {
                0..=1 => now_ns.saturating_sub(rng.below(2 * MS)),
                2..=3 => now_ns + rng.below(US),
                4..=6 => now_ns + rng.below(200 * US),
                7..=8 => now_ns + rng.below(5 * SEC),
                9 => now_ns + rng.below(3600 * SEC),
                10..=11 if !ids.is_empty() => {
                    let id = ids.pick(rng);
                    let deadline = model.live[&id].1;
                    deadline.duration_since(c.0).as_nanos() as u64
                }
                12 => now_ns + rng.below(30 * YEAR),
                // Exactly on a tick boundary (the origin is at 1 ms).
                _ => (now_ns + rng.below(10 * MS)).div_ceil(US) * US,
            }
        };
        match rng.below(100) {
            0..=39 => {
                let d = deadline_ns(&mut rng, &model, &ids);
                let deadline = c.at(d);
                let key = wheel.insert(deadline, next_id);
                model.counter += 1;
                model.heap.push(Reverse((deadline, model.counter, next_id)));
                model.live.insert(next_id, (key, deadline, model.counter));
                ids.push(next_id);
                next_id += 1;
            }
            40..=51 if !ids.is_empty() => {
                let id = ids.pick(&mut rng);
                ids.remove(id);
                let (key, deadline, _) = model.live.remove(&id).unwrap();
                assert_eq!(wheel.deadline(key), Some(deadline));
                assert_eq!(wheel.remove(key), Some(id), "seed {seed} op {op}");
                assert_eq!(wheel.remove(key), None);
                dead.push(key);
            }
            52..=65 if !ids.is_empty() => {
                let id = ids.pick(&mut rng);
                let d = deadline_ns(&mut rng, &model, &ids);
                let deadline = c.at(d);
                let key = model.live[&id].0;
                assert!(wheel.reset(key, deadline), "seed {seed} op {op}");
                model.counter += 1;
                model.heap.push(Reverse((deadline, model.counter, id)));
                model.live.insert(id, (key, deadline, model.counter));
            }
            66..=69 if !dead.is_empty() => {
                let key = dead[rng.below(dead.len() as u64) as usize];
                assert_eq!(wheel.remove(key), None);
                assert!(!wheel.reset(key, c.at(now_ns)));
                assert!(wheel.get_mut(key).is_none());
                assert_eq!(wheel.deadline(key), None);
            }
            _ => {
                now_ns = match rng.below(40) {
                    0..=14 => now_ns + rng.below(2 * US),
                    15..=24 => now_ns + rng.below(100 * MS),
                    25..=29 => now_ns + rng.below(3600 * SEC),
                    30 => now_ns + rng.below(40 * YEAR),
                    31..=33 => now_ns,
                    // The worker's loop: process when the wheel asks to.
                    _ => match wheel.next_wake() {
                        Some(wake) => now_ns.max(wake.duration_since(c.0).as_nanos() as u64),
                        None => now_ns,
                    },
                };
                let now = c.at(now_ns);
                let mut fired = Vec::new();
                wheel.process(now, |k, v| fired.push((k, v)));
                let expected = model.expire(now);
                assert_eq!(fired, expected, "seed {seed} op {op}");
                fired_total += fired.len();
                for (key, id) in fired {
                    dead.push(key);
                    ids.remove(id);
                }
                // No busy loop: after processing at `now`, the wheel never asks to be
                // processed again at or before `now`.
                assert!(
                    wheel.next_wake().is_none_or(|w| w > now),
                    "seed {seed} op {op}: next_wake not after now"
                );
            }
        }
        if dead.len() > 4_096 {
            dead.drain(..2_048);
        }
        assert_eq!(wheel.len(), model.live.len(), "seed {seed} op {op}");
        match model.earliest() {
            None => assert_eq!(wheel.next_wake(), None, "seed {seed} op {op}"),
            Some(earliest) => {
                let wake = wheel.next_wake().expect("pending entries need a wake");
                assert!(
                    wake <= earliest,
                    "seed {seed} op {op}: wake after a deadline"
                );
            }
        }
        if op % 97 == 0 || wheel.len() < 64 {
            wheel.check_invariants();
        }
    }
    assert!(fired_total > ops / 10, "only {fired_total} fired");
}

#[test]
fn differential_against_binary_heap() {
    for seed in 0..4 {
        differential(seed, 60_000);
    }
}

#[test]
fn worker_loop_terminates_without_spinning() {
    // Follow next_wake until the wheel is empty: every round fires something or moves
    // the wake later, and the number of rounds is bounded by cascades, not time.
    let c = Clock::new();
    let mut rng = Rng(99);
    let mut wheel = Wheel::new(c.at(0));
    for i in 0..5_000 {
        let nanos = match rng.below(4) {
            0 => rng.below(100 * US),
            1 => rng.below(SEC),
            2 => rng.below(1000 * SEC),
            _ => rng.below(50 * YEAR),
        };
        wheel.insert(c.at(nanos), i);
    }
    let mut now = c.at(0);
    let mut rounds = 0;
    let mut fired = 0;
    while let Some(wake) = wheel.next_wake() {
        now = now.max(wake);
        wheel.process(now, |_, _| fired += 1);
        rounds += 1;
        assert!(wheel.next_wake().is_none_or(|w| w > now), "no progress");
    }
    assert_eq!(fired, 5_000);
    assert!(rounds <= 5_000 * 10, "{rounds} rounds");
}

#[test]
fn one_million_pending_timers() {
    const N: usize = 1_000_000;
    let c = Clock::new();
    let mut rng = Rng(1_000_000);
    let mut wheel: Wheel<u32> = Wheel::new(c.at(0));
    let mut deadlines = Vec::with_capacity(N);
    let mut keys = Vec::with_capacity(N);
    for i in 0..N {
        // A tenth share a handful of deadlines, the rest spread over 100 s.
        let nanos = if i % 10 == 0 {
            (rng.below(8) + 1) * 10 * SEC
        } else {
            rng.below(100 * SEC)
        };
        deadlines.push(c.at(nanos));
        keys.push(wheel.insert(c.at(nanos), i as u32));
    }
    assert_eq!(wheel.len(), N);
    let mut removed = 0;
    for i in (0..N).step_by(4) {
        assert_eq!(wheel.remove(keys[i]), Some(i as u32));
        removed += 1;
    }
    for i in (1..N).step_by(7).filter(|i| i % 4 != 0) {
        let nanos = rng.below(120 * SEC);
        deadlines[i] = c.at(nanos);
        assert!(wheel.reset(keys[i], c.at(nanos)));
    }
    assert_eq!(wheel.len(), N - removed);
    wheel.check_invariants();

    let mut fired = 0usize;
    let mut last = c.at(0);
    let mut seen = vec![false; N];
    for step in 1..=130u64 {
        let now = c.at(step * SEC);
        wheel.process(now, |_, i| {
            let deadline = deadlines[i as usize];
            assert!(deadline <= now, "fired early");
            assert!(deadline >= last, "out of order");
            assert!(
                !std::mem::replace(&mut seen[i as usize], true),
                "fired twice"
            );
            last = deadline;
            fired += 1;
        });
        assert!(wheel.next_wake().is_none_or(|w| w > now));
    }
    assert_eq!(fired, N - removed);
    assert_eq!(wheel.len(), 0);
    assert_eq!(wheel.next_wake(), None);
    // A second million reuses the slab's memory: no allocation.
    let capacity = wheel.entries.capacity();
    for i in 0..N {
        wheel.insert(c.at(200 * SEC + i as u64), i as u32);
    }
    assert_eq!(wheel.entries.capacity(), capacity);
    let mut count = 0;
    wheel.process(c.at(300 * SEC), |_, _| count += 1);
    assert_eq!(count, N);
}
