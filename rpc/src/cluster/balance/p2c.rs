//! Power of two choices: draw two eligible nodes at random, keep the cheaper.
//!
//! Nearly as good as always taking the cheapest node, without its herd behaviour (every client
//! rushing to the same momentarily idle node) and in constant time (Mitzenmacher, "The Power of
//! Two Choices in Randomized Load Balancing").

/// Random draws before falling back to a scan, when many nodes are ineligible.
const DRAWS: usize = 4;

/// Picks the cheaper of two distinct random eligible nodes (the only one, if just one is).
pub(super) fn pick(len: usize, eligible: impl Fn(usize) -> bool, cost: impl Fn(usize) -> f64) -> Option<usize> {
    let first = draw(len, None, &eligible)?;
    let Some(second) = draw(len, Some(first), &eligible) else { return Some(first) };
    Some(if cost(second) < cost(first) { second } else { first })
}

/// A random eligible node other than `other`.
fn draw(len: usize, other: Option<usize>, eligible: &impl Fn(usize) -> bool) -> Option<usize> {
    // Draw among the slots other than `other`, so no draw is wasted on it.
    let slots = len - usize::from(other.is_some());
    let node = |slot: usize| match other {
        Some(other) if slot >= other => slot + 1,
        _ => slot,
    };
    if slots == 0 {
        return None;
    }
    for _ in 0..DRAWS.min(slots) {
        let i = node(rand::random_range(0..slots));
        if eligible(i) {
            return Some(i);
        }
    }
    let start = rand::random_range(0..slots);
    (0..slots).map(|offset| node((start + offset) % slots)).find(|&i| eligible(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_costliest_node_is_never_chosen_and_the_cheapest_most_often() {
        let costs = [5.0, 1.0, 3.0, 9.0];
        let mut counts = [0u32; 4];
        for _ in 0..10_000 {
            counts[pick(4, |_| true, |i| costs[i]).unwrap()] += 1;
        }
        assert_eq!(counts[3], 0, "{counts:?}");
        assert!(counts[1] > counts[2] && counts[2] > counts[0], "{counts:?}");
    }

    #[test]
    fn only_eligible_nodes_are_drawn() {
        for _ in 0..1_000 {
            assert_eq!(pick(50, |i| i == 42, |_| 1.0), Some(42));
            let two = pick(50, |i| i == 3 || i == 7, |i| i as f64).unwrap();
            assert_eq!(two, 3);
        }
        assert_eq!(pick(5, |_| false, |_| 1.0), None);
        assert_eq!(pick(0, |_| true, |_| 1.0), None);
    }
}
