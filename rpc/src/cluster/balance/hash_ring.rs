//! Consistent hash ring with 160 virtual nodes per node (ketama's number).
//!
//! Each node is placed at 160 points of a 64-bit ring; a key belongs to the first point at or
//! after its own hash. Adding a node only takes over the keys between its points and their
//! predecessors, about 1/n of them, and every key that moves, moves to the new node. Positions
//! depend only on node addresses, so every client process builds the same ring.

use crate::client::hash_key;

/// Virtual nodes per node: enough that each of a handful of nodes owns close to its fair share.
pub(crate) const VIRTUAL_NODES: u32 = 160;

/// The ring: points sorted by hash, each naming a node index.
#[derive(Debug)]
pub(crate) struct HashRing {
    points: Box<[(u64, usize)]>,
}

impl HashRing {
    /// A ring over the nodes at `addrs` (node `i` is the `i`-th address).
    pub(crate) fn new<'a>(addrs: impl Iterator<Item = &'a str>) -> HashRing {
        let mut points: Vec<(u64, usize)> = addrs
            .enumerate()
            .flat_map(|(node, addr)| (0..VIRTUAL_NODES).map(move |v| (mix(hash_key(&(addr, v))), node)))
            .collect();
        points.sort_unstable();
        HashRing { points: points.into() }
    }

    /// The node owning `key`, or, if it is ineligible, the next eligible node clockwise (so a
    /// broken node's keys spread over its successors and come back when it recovers).
    pub(crate) fn pick(&self, key: u64, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.points.len();
        let start = self.points.partition_point(|&(point, _)| point < mix(key));
        (0..len).map(|offset| self.points[(start + offset) % len].1).find(|&node| eligible(node))
    }
}

/// A finalizer (MurmurHash3's fmix64) over FNV-1a: FNV spreads similar short inputs (`addr#1`,
/// `addr#2`) poorly around the ring, and well-mixed points keep the shares even.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize) -> (Vec<String>, HashRing) {
        let addrs: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}:7000")).collect();
        let ring = HashRing::new(addrs.iter().map(String::as_str));
        (addrs, ring)
    }

    #[test]
    fn a_key_always_lands_on_the_same_node() {
        let (_, first) = ring(4);
        let (_, second) = ring(4);
        for key in 0..1_000u64 {
            let owner = first.pick(hash_key(&key), |_| true);
            assert_eq!(owner, first.pick(hash_key(&key), |_| true));
            assert_eq!(owner, second.pick(hash_key(&key), |_| true), "rings must not depend on the process");
        }
    }

    #[test]
    fn a_fifth_node_takes_about_a_fifth_of_the_keys_and_only_moves_keys_to_itself() {
        let (_, four) = ring(4);
        let (_, five) = ring(5);
        let keys = 100_000u64;
        let mut moved = 0;
        let mut shares = [0u32; 5];
        for key in (0..keys).map(|k| hash_key(&k)) {
            let (before, after) = (four.pick(key, |_| true).unwrap(), five.pick(key, |_| true).unwrap());
            shares[after] += 1;
            if before != after {
                assert_eq!(after, 4, "a key may only move to the new node");
                moved += 1;
            }
        }
        // Ideal: 1/5 = 20%. Bound tested: at most 25%, and the new node gets at least 15%.
        let moved = f64::from(moved) / keys as f64;
        assert!((0.15..=0.25).contains(&moved), "moved {moved:.3}");
        // With 160 virtual nodes each node owns within ±30% of its fair share.
        for share in shares {
            let share = f64::from(share) / keys as f64;
            assert!((0.14..=0.26).contains(&share), "shares {shares:?}");
        }
    }

    #[test]
    fn keys_of_an_ineligible_node_go_to_its_successors_and_come_back() {
        let (_, ring) = ring(4);
        for key in (0..1_000u64).map(|k| hash_key(&k)) {
            let owner = ring.pick(key, |_| true).unwrap();
            let fallback = ring.pick(key, |node| node != owner).unwrap();
            assert_ne!(fallback, owner);
            assert_eq!(ring.pick(key, |_| true), Some(owner));
        }
    }
}
