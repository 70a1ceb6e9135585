//! The interest tree against `BTreeMap`: every operation's answer must match the model,
//! and every red-black invariant must hold after every operation.

#![no_main]

use std::collections::BTreeMap;

use epitome_runtime::__fuzz::InterestTree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut tree: InterestTree<u32> = InterestTree::new();
    let mut model: BTreeMap<i32, (u32, u32)> = BTreeMap::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        let [op, k0, k1] = match chunk {
            [a, b, c] => [*a, *b, *c],
            _ => break,
        };
        // A small key space (with negative keys) so inserts collide and removes hit.
        let key = i16::from_le_bytes([k0, k1 & 0x03]) as i32 - 512;
        match op % 4 {
            0 | 1 => match tree.insert(key, i as u32) {
                Ok(slot) => assert!(model.insert(key, (slot, i as u32)).is_none()),
                Err(v) => {
                    assert_eq!(v, i as u32);
                    assert!(model.contains_key(&key));
                }
            },
            2 => match model.remove(&key) {
                Some((slot, value)) => {
                    assert_eq!(tree.find(key), Some(slot));
                    assert_eq!(tree.remove(slot), value);
                }
                None => assert_eq!(tree.find(key), None),
            },
            _ => assert_eq!(tree.find(key), model.get(&key).map(|e| e.0)),
        }
        tree.check_invariants().unwrap();
        assert_eq!(tree.len(), model.len());
    }
    let mut keys = Vec::new();
    tree.for_each(|k, slot| {
        assert_eq!(model[&k].0, slot);
        keys.push(k);
    });
    assert!(keys.iter().copied().eq(model.keys().copied()));
});
