//! Weighted random: each eligible node with probability weight / total weight.

/// Picks among `0..len` with probability proportional to `weight`, skipping ineligible nodes.
pub(super) fn pick(len: usize, weight: impl Fn(usize) -> u32, eligible: impl Fn(usize) -> bool) -> Option<usize> {
    let total: u64 = (0..len).filter(|&i| eligible(i)).map(|i| u64::from(weight(i))).sum();
    if total == 0 {
        return None;
    }
    let mut point = rand::random_range(0..total);
    for i in (0..len).filter(|&i| eligible(i)) {
        let w = u64::from(weight(i));
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_the_weights_and_ineligible_nodes_get_nothing() {
        let weights = [1u32, 3, 6, 10];
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[pick(4, |i| weights[i], |i| i != 3).unwrap()] += 1;
        }
        assert_eq!(counts[3], 0);
        // Expected 10%, 30%, 60%; ±2 points is over 20 standard deviations.
        for (count, expected) in counts.iter().zip([0.1, 0.3, 0.6]) {
            let share = f64::from(*count) / 100_000.0;
            assert!((share - expected).abs() < 0.02, "{counts:?}");
        }
        assert_eq!(pick(4, |i| weights[i], |_| false), None);
    }
}
