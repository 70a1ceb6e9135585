//! The ready list against `VecDeque`: push (refused when already linked), pop, unlink
//! and append must match the model.

#![no_main]

use std::collections::VecDeque;

use epitome_runtime::__fuzz::{ListStore, ReadyList};
use libfuzzer_sys::fuzz_target;

const SLOTS: u32 = 32;

fuzz_target!(|data: &[u8]| {
    let mut store = ListStore::new(SLOTS as usize);
    let mut a = ReadyList::new();
    let mut b = ReadyList::new();
    let mut ma: VecDeque<u32> = VecDeque::new();
    let mut mb: VecDeque<u32> = VecDeque::new();
    for pair in data.chunks(2) {
        let [op, s] = match pair {
            [x, y] => [*x, *y],
            _ => break,
        };
        let slot = u32::from(s) % SLOTS;
        let on_any = ma.contains(&slot) || mb.contains(&slot);
        match op % 6 {
            0 => {
                assert_eq!(a.push_back(&mut store, slot), !on_any);
                if !on_any {
                    ma.push_back(slot);
                }
            }
            1 => {
                assert_eq!(b.push_back(&mut store, slot), !on_any);
                if !on_any {
                    mb.push_back(slot);
                }
            }
            2 => assert_eq!(a.pop_front(&mut store), ma.pop_front()),
            3 => {
                // Unlink only from the list that holds it (the list's contract).
                if let Some(p) = ma.iter().position(|&x| x == slot) {
                    assert!(a.unlink(&mut store, slot));
                    ma.remove(p);
                } else if let Some(p) = mb.iter().position(|&x| x == slot) {
                    assert!(b.unlink(&mut store, slot));
                    mb.remove(p);
                } else {
                    assert!(!a.unlink(&mut store, slot));
                }
            }
            4 => {
                a.append(&mut store, &mut b);
                ma.extend(mb.drain(..));
            }
            _ => assert_eq!(b.pop_front(&mut store), mb.pop_front()),
        }
        assert_eq!(a.front(), ma.front().copied());
        assert_eq!(b.front(), mb.front().copied());
    }
    // Walk both lists front to back: exactly the model's order.
    for (list, model) in [(&mut a, &ma), (&mut b, &mb)] {
        let mut seen = Vec::new();
        while let Some(s) = list.pop_front(&mut store) {
            seen.push(s);
        }
        assert!(seen.iter().eq(model.iter()));
    }
});
