//! Means, standard errors and a seeded bootstrap.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Arithmetic mean; NaN for no values.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample variance with Bessel's correction; NaN for fewer than two values.
pub fn sample_variance(values: &[f64]) -> f64 {
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() as f64 - 1.0)
}

/// Standard error of the mean: sqrt(sample variance / n).
pub fn mean_stderr(values: &[f64]) -> f64 {
    (sample_variance(values) / values.len() as f64).sqrt()
}

/// Standard deviation of `statistic` over `iters` resamples (with replacement) of `values`,
/// drawn from a generator seeded with `seed`, so the same inputs give the same answer.
pub fn bootstrap_stderr<T: Copy>(
    values: &[T],
    statistic: impl Fn(&[T]) -> f64,
    iters: usize,
    seed: u64,
) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sample = Vec::with_capacity(values.len());
    let estimates: Vec<f64> = (0..iters)
        .map(|_| {
            sample.clear();
            sample.extend((0..values.len()).map(|_| values[rng.random_range(0..values.len())]));
            statistic(&sample)
        })
        .collect();
    sample_variance(&estimates).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_matches_closed_form() {
        // 0.43 accuracy over 100 docs: sqrt(p(1-p)/(n-1)), the value lm-eval reports.
        let values: Vec<f64> = (0..100).map(|i| if i < 43 { 1.0 } else { 0.0 }).collect();
        assert!((mean_stderr(&values) - 0.049756985195624284).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_seeded_and_close_to_closed_form() {
        let values: Vec<f64> = (0..200).map(|i| f64::from(i % 3 == 0)).collect();
        let a = bootstrap_stderr(&values, mean, 2000, 7);
        let b = bootstrap_stderr(&values, mean, 2000, 7);
        assert_eq!(a, b);
        let closed = mean_stderr(&values);
        assert!((a - closed).abs() / closed < 0.1, "{a} vs {closed}");
    }
}
