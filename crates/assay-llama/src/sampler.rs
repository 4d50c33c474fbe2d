//! Choosing the next token from a logit row (greedy, temperature, top-k, top-p) with a seeded
//! generator, and finding stop strings in generated text.

use assay_core::Sampling;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator of sample `index` of a document sampled with `seed`.
pub fn sample_rng(seed: u64, index: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best
}

/// The next token under `sampling`.
pub fn choose(logits: &[f32], sampling: &Sampling, rng: &mut ChaCha8Rng) -> usize {
    if sampling.temperature <= 0.0 {
        return argmax(logits);
    }
    let t = sampling.temperature;
    let max = f64::from(logits[argmax(logits)]);
    // Probabilities up to a constant; tokens below 1e-12 of the best one are never in a
    // nucleus short of top_p = 1 and are kept only when needed.
    let weight = |l: f32| ((f64::from(l) - max) / t).exp();
    let mut candidates: Vec<(usize, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i, weight(l)))
        .filter(|&(_, w)| w > 1e-12)
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if sampling.top_k > 0 {
        candidates.truncate(sampling.top_k);
    }
    if sampling.top_p < 1.0 {
        let total: f64 = candidates.iter().map(|c| c.1).sum();
        let mut mass = 0.0;
        let mut keep = candidates.len();
        for (i, c) in candidates.iter().enumerate() {
            mass += c.1 / total;
            if mass >= sampling.top_p {
                keep = i + 1;
                break;
            }
        }
        candidates.truncate(keep.max(1));
    }
    let total: f64 = candidates.iter().map(|c| c.1).sum();
    let mut u = rng.random::<f64>() * total;
    for &(i, w) in &candidates {
        if u < w {
            return i;
        }
        u -= w;
    }
    candidates.last().map_or(0, |c| c.0)
}

/// The earliest position in `text` where any stop string starts.
pub fn find_stop(text: &str, until: &[String]) -> Option<usize> {
    until
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(temperature: f64, top_p: f64, top_k: usize) -> Sampling {
        Sampling {
            temperature,
            top_p,
            top_k,
            seed: 1,
        }
    }

    #[test]
    fn greedy_takes_the_first_best() {
        let mut rng = sample_rng(0, 0);
        assert_eq!(
            choose(&[0.0, 2.0, 2.0, 1.0], &Sampling::greedy(), &mut rng),
            1
        );
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let logits = [0.5, 3.0, 2.9, -1.0];
        for seed in 0..20 {
            let mut rng = sample_rng(seed, 0);
            assert_eq!(choose(&logits, &sampling(1.0, 1.0, 1), &mut rng), 1);
            assert_eq!(choose(&logits, &sampling(1.0, 0.01, 0), &mut rng), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution_and_reproduces() {
        let logits = [0.0f32, (3.0f32).ln()]; // probabilities 1/4, 3/4
        let mut rng = sample_rng(7, 0);
        let draws: Vec<usize> = (0..4000)
            .map(|_| choose(&logits, &sampling(1.0, 1.0, 0), &mut rng))
            .collect();
        let ones = draws.iter().filter(|&&d| d == 1).count() as f64 / 4000.0;
        assert!((ones - 0.75).abs() < 0.03, "{ones}");
        let mut again = sample_rng(7, 0);
        let replay: Vec<usize> = (0..4000)
            .map(|_| choose(&logits, &sampling(1.0, 1.0, 0), &mut again))
            .collect();
        assert_eq!(draws, replay);
    }

    #[test]
    fn stop_strings_are_found_across_token_boundaries() {
        let until = vec!["Question:".to_string(), "\n\n".to_string(), String::new()];
        assert_eq!(find_stop("42.\n\nQuestion: x", &until), Some(3));
        assert_eq!(find_stop("no stop here", &until), None);
    }
}
