//! Smooth weighted round robin, exactly nginx's (`ngx_http_upstream_get_peer`).
//!
//! Each pick adds every eligible node's weight to its current weight, chooses the node with the
//! largest current weight (the first one on a tie), and subtracts the total weight from it. For
//! weights 5:1:1 this gives `a a b a c a a`: the heavy node's turns are spread out instead of
//! bunched (`a a a a a b c`), so no node sees bursts.

use std::sync::Mutex;

use crate::sync::lock;

/// The current weights, one per node. The algorithm is sequential by nature; the lock is held for
/// one pass over the nodes.
#[derive(Debug)]
pub(crate) struct SmoothRoundRobin {
    current: Mutex<Vec<i64>>,
}

impl SmoothRoundRobin {
    pub(crate) fn new(len: usize) -> SmoothRoundRobin {
        SmoothRoundRobin { current: Mutex::new(vec![0; len]) }
    }

    pub(crate) fn pick(
        &self,
        len: usize,
        weight: impl Fn(usize) -> u32,
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut current = lock(&self.current);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for i in (0..len.min(current.len())).filter(|&i| eligible(i)) {
            let w = i64::from(weight(i));
            current[i] += w;
            total += w;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        current[best] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_5_1_1_give_nginx_sequence() {
        let wrr = SmoothRoundRobin::new(3);
        let weights = [5, 1, 1];
        let picks: String = (0..14).map(|_| ["a", "b", "c"][wrr.pick(3, |i| weights[i], |_| true).unwrap()]).collect();
        assert_eq!(picks, "aabacaa".repeat(2));
    }

    #[test]
    fn an_ineligible_node_is_skipped_and_the_others_keep_their_proportions() {
        let wrr = SmoothRoundRobin::new(3);
        let weights = [2, 1, 5];
        let picks: Vec<usize> = (0..30).map(|_| wrr.pick(3, |i| weights[i], |i| i != 2).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 20);
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 10);
    }
}
