//! Seeded stratified sampling: every difficulty level keeps at least one item, the rest is
//! shared in proportion to the levels' sizes (largest remainders), and the draw within a level
//! is a seeded shuffle, so the same seed gives the same set.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::Item;

/// Indices of the items of `strata` (a level per item) to keep, `n` in all (`None`: all), in
/// their original order.
pub fn stratified_sample(strata: &[&str], n: Option<usize>, seed: u64) -> Vec<usize> {
    let total = strata.len();
    let Some(n) = n.filter(|n| *n < total) else {
        return (0..total).collect();
    };
    let mut levels: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in strata.iter().enumerate() {
        levels.entry(s).or_default().push(i);
    }
    // At least one per level (when n allows), the rest by largest remainder.
    let mut quota: BTreeMap<&str, usize> = levels.keys().map(|k| (*k, 0)).collect();
    let mut left = n;
    if n >= levels.len() {
        for q in quota.values_mut() {
            *q = 1;
        }
        left -= levels.len();
    }
    let spare: usize =
        levels.values().map(|v| v.len()).sum::<usize>() - quota.values().sum::<usize>();
    let mut shares: Vec<(&str, f64)> = levels
        .iter()
        .map(|(k, v)| {
            let room = v.len() - quota[k];
            (*k, left as f64 * room as f64 / spare.max(1) as f64)
        })
        .collect();
    for (k, share) in &shares {
        let q = quota.get_mut(k).expect("every level has a quota");
        *q += share.floor() as usize;
    }
    let mut given: usize = quota.values().sum();
    shares.sort_by(|a, b| {
        (b.1 - b.1.floor())
            .total_cmp(&(a.1 - a.1.floor()))
            .then(a.0.cmp(b.0))
    });
    let mut i = 0;
    while given < n {
        let k = shares[i % shares.len()].0;
        if quota[k] < levels[k].len() {
            *quota.get_mut(k).expect("known level") += 1;
            given += 1;
        }
        i += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut keep = Vec::with_capacity(n);
    for (k, members) in &levels {
        let mut members = members.clone();
        members.shuffle(&mut rng);
        keep.extend_from_slice(&members[..quota[k]]);
    }
    keep.sort_unstable();
    keep
}

/// A seed for `source` derived from the user's seed, so each benchmark draws independently.
pub(crate) fn source_seed(seed: u64, source: &str) -> u64 {
    source.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The difficulty of each item.
pub(crate) fn difficulties(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.meta("difficulty")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_with_one_per_level_and_seeded() {
        // 30% medium, 69% hard, 1 item easy.
        let mut strata = vec!["medium"; 300];
        strata.extend(vec!["hard"; 690]);
        strata.push("easy");
        let keep = stratified_sample(&strata, Some(100), 7);
        assert_eq!(keep.len(), 100);
        let count = |l: &str| keep.iter().filter(|i| strata[**i] == l).count();
        assert_eq!(count("easy"), 1);
        assert_eq!(count("medium"), 30);
        assert_eq!(count("hard"), 69);
        assert_eq!(keep, stratified_sample(&strata, Some(100), 7));
        assert_ne!(keep, stratified_sample(&strata, Some(100), 8));
        assert!(keep.windows(2).all(|w| w[0] < w[1]), "original order");
    }

    #[test]
    fn all_when_asked_for_more_or_everything() {
        let strata = vec!["a", "b", "b"];
        assert_eq!(stratified_sample(&strata, Some(10), 1), vec![0, 1, 2]);
        assert_eq!(stratified_sample(&strata, None, 1), vec![0, 1, 2]);
        // Fewer than the levels: no level is promised an item.
        assert_eq!(stratified_sample(&strata, Some(1), 1).len(), 1);
    }
}
