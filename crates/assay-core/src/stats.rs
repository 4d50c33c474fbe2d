//! Means, standard errors, a seeded bootstrap, and the tests that compare two runs: McNemar's
//! exact test for paired 0/1 outcomes, the paired t-test, and a z-test for unpaired estimates.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal, StudentsT};

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
pub fn bootstrap_stderr<T: Clone>(
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
            sample.extend(
                (0..values.len()).map(|_| values[rng.random_range(0..values.len())].clone()),
            );
            statistic(&sample)
        })
        .collect();
    sample_variance(&estimates).sqrt()
}

/// Binary F1 of (gold, predicted) label pairs with 1 the positive class, as scikit-learn's
/// `f1_score`: 2TP / (2TP + FP + FN), and 0 when there is no positive label at all.
pub fn binary_f1(pairs: &[(i64, i64)]) -> f64 {
    let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
    for &(gold, pred) in pairs {
        match (gold == 1, pred == 1) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fneg += 1.0,
            (false, false) => {}
        }
    }
    let denominator = 2.0 * tp + fp + fneg;
    if denominator == 0.0 {
        0.0
    } else {
        2.0 * tp / denominator
    }
}

/// Matthews correlation coefficient of (gold, predicted) label pairs, any number of classes,
/// as scikit-learn's `matthews_corrcoef` (0 when either side has a single label).
pub fn matthews_corrcoef(pairs: &[(i64, i64)]) -> f64 {
    use std::collections::BTreeMap;
    let n = pairs.len() as f64;
    let correct = pairs.iter().filter(|(g, p)| g == p).count() as f64;
    let mut gold_counts: BTreeMap<i64, f64> = BTreeMap::new();
    let mut pred_counts: BTreeMap<i64, f64> = BTreeMap::new();
    for &(g, p) in pairs {
        *gold_counts.entry(g).or_default() += 1.0;
        *pred_counts.entry(p).or_default() += 1.0;
    }
    let both: f64 = gold_counts
        .iter()
        .map(|(label, t)| t * pred_counts.get(label).copied().unwrap_or(0.0))
        .sum();
    let squares = |counts: &BTreeMap<i64, f64>| counts.values().map(|c| c * c).sum::<f64>();
    let denominator = ((n * n - squares(&pred_counts)) * (n * n - squares(&gold_counts))).sqrt();
    if denominator == 0.0 {
        0.0
    } else {
        (correct * n - both) / denominator
    }
}

/// McNemar's exact test: the two-sided p-value of `b` documents right only in the first run and
/// `c` right only in the second, under "either is equally likely" (a binomial test on the
/// discordant pairs). 1.0 when there are none.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let tail = Binomial::new(0.5, n)
        .expect("p = 0.5 is a valid probability")
        .cdf(b.min(c));
    (2.0 * tail).min(1.0)
}

/// A paired comparison: the mean of per-document differences, its standard error and the
/// two-sided p-value of the paired t-test (n - 1 degrees of freedom).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    /// Documents paired.
    pub n: usize,
    /// Mean difference (second minus first).
    pub mean: f64,
    /// Standard error of the mean difference.
    pub stderr: f64,
    /// Two-sided p-value; 1.0 when every difference is zero, NaN for fewer than two pairs.
    pub p_value: f64,
}

/// Paired t-test over per-document differences.
pub fn paired_difference(diffs: &[f64]) -> PairedDifference {
    let n = diffs.len();
    let m = mean(diffs);
    if n < 2 {
        return PairedDifference {
            n,
            mean: m,
            stderr: f64::NAN,
            p_value: f64::NAN,
        };
    }
    let se = mean_stderr(diffs);
    let p_value = if se == 0.0 {
        if m == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("n > 1 degrees of freedom");
        2.0 * t.cdf(-(m / se).abs())
    };
    PairedDifference {
        n,
        mean: m,
        stderr: se,
        p_value,
    }
}

/// Two-sided p-value of the difference of two independent estimates with standard errors
/// `se_a` and `se_b` (a z-test); NaN when neither has a standard error.
pub fn unpaired_p_value(a: f64, se_a: f64, b: f64, se_b: f64) -> f64 {
    let se = (se_a * se_a + se_b * se_b).sqrt();
    if !se.is_finite() || se == 0.0 {
        return f64::NAN;
    }
    let z = (b - a) / se;
    2.0 * Normal::standard().cdf(-z.abs())
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

    #[test]
    fn mcnemar_matches_the_binomial_tail() {
        // b = 1, c = 9: 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11/1024.
        assert!((mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-10);
        assert!((mcnemar_exact(9, 1) - 22.0 / 1024.0).abs() < 1e-10);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        // One discordant pair cannot be significant.
        assert!(mcnemar_exact(0, 1) > 1.0 - 1e-12);
    }

    #[test]
    fn paired_t_test_matches_a_hand_computation() {
        // diffs 1, 2, 3, 4: mean 2.5, sd 1.29099, se 0.645497, t = 3.87298, df 3 -> p = 0.030466.
        let d = paired_difference(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.n, 4);
        assert!((d.mean - 2.5).abs() < 1e-12);
        assert!((d.stderr - 0.6454972243679028).abs() < 1e-12);
        assert!((d.p_value - 0.030466).abs() < 1e-5, "{}", d.p_value);
        assert_eq!(paired_difference(&[0.0, 0.0, 0.0]).p_value, 1.0);
        assert!(paired_difference(&[1.0]).p_value.is_nan());
    }

    #[test]
    fn unpaired_z_test() {
        // A difference of 1.96 standard errors is p = 0.05.
        let p = unpaired_p_value(0.5, 0.03, 0.5 + 1.959964 * 0.05, 0.04);
        assert!((p - 0.05).abs() < 1e-6, "{p}");
        assert!(unpaired_p_value(0.5, f64::NAN, 0.6, 0.1).is_nan());
    }
}
