//! The unbiased pass@k estimator of the HumanEval paper (Chen et al., 2021).

/// Probability that at least one of `k` samples drawn without replacement from `n` samples, of
/// which `c` are correct, passes: `1 - C(n-c, k) / C(n, k)`, computed as a stable product.
/// `None` when `k > n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k > n || c > n || k == 0 {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let fail: f64 = ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product();
    Some(1.0 - fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binomial(n: u64, k: u64) -> f64 {
        (0..k).map(|i| (n - i) as f64 / (i + 1) as f64).product()
    }

    #[test]
    fn matches_the_binomial_form() {
        for (n, c, k) in [
            (10, 3, 1),
            (10, 3, 5),
            (200, 13, 10),
            (200, 13, 100),
            (5, 0, 2),
        ] {
            let want = 1.0 - binomial((n - c) as u64, k as u64) / binomial(n as u64, k as u64);
            let got = pass_at_k(n, c, k).unwrap();
            assert!((got - want).abs() < 1e-9, "{n} {c} {k}: {got} vs {want}");
        }
        assert!((pass_at_k(10, 3, 1).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(pass_at_k(10, 8, 5), Some(1.0));
        assert_eq!(pass_at_k(5, 1, 10), None);
    }
}
