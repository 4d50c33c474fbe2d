//! A metric's per-document values and how they aggregate over a task, as lm-eval defines them
//! (the metrics themselves are in `assay-tasks`' registry).

use serde::Serialize;

use crate::stats;

/// One document's contribution to a metric: a value, or a log-likelihood with its weight
/// (words or bytes) for the perplexity-type metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DocValue {
    /// A plain per-document value (accuracy 0/1, MC2 mass, log-likelihood).
    Scalar(f64),
    /// A log-likelihood and the number of units (words, bytes) it covers.
    Weighted {
        /// Sum of natural-log probabilities.
        logprob: f64,
        /// Number of words or bytes.
        weight: f64,
    },
}

impl DocValue {
    /// The value written in per-sample logs.
    pub fn as_json(&self) -> serde_json::Value {
        match *self {
            DocValue::Scalar(v) => serde_json::json!(v),
            DocValue::Weighted { logprob, weight } => serde_json::json!([logprob, weight]),
        }
    }
}

/// How per-document values aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// Arithmetic mean; closed-form standard error.
    Mean,
    /// exp(-mean(logprob)).
    Perplexity,
    /// exp(-sum(logprob) / sum(weight)).
    WeightedPerplexity,
    /// -sum(logprob) / sum(weight) / ln 2.
    BitsPerByte,
}

impl Aggregation {
    /// The aggregate of `values` (all of one metric).
    pub fn apply(self, values: &[DocValue]) -> f64 {
        match self {
            Aggregation::Mean => stats::mean(&scalars(values)),
            Aggregation::Perplexity => (-stats::mean(&scalars(values))).exp(),
            Aggregation::WeightedPerplexity => {
                let (ll, w) = weighted_sums(values);
                (-ll / w).exp()
            }
            Aggregation::BitsPerByte => {
                let (ll, w) = weighted_sums(values);
                -ll / w / std::f64::consts::LN_2
            }
        }
    }

    /// The standard error of the aggregate: closed form for means, a seeded bootstrap otherwise.
    /// `None` with fewer than two documents.
    pub fn stderr(self, values: &[DocValue], bootstrap_iters: usize, seed: u64) -> Option<f64> {
        if values.len() < 2 {
            return None;
        }
        match self {
            Aggregation::Mean => Some(stats::mean_stderr(&scalars(values))),
            _ if bootstrap_iters == 0 => None,
            _ => Some(stats::bootstrap_stderr(
                values,
                |sample| self.apply(sample),
                bootstrap_iters,
                seed,
            )),
        }
    }
}

fn scalars(values: &[DocValue]) -> Vec<f64> {
    values
        .iter()
        .map(|v| match *v {
            DocValue::Scalar(x) => x,
            DocValue::Weighted { logprob, .. } => logprob,
        })
        .collect()
}

fn weighted_sums(values: &[DocValue]) -> (f64, f64) {
    values.iter().fold((0.0, 0.0), |(ll, w), v| match *v {
        DocValue::Weighted { logprob, weight } => (ll + logprob, w + weight),
        DocValue::Scalar(x) => (ll + x, w + 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_perplexity_and_bits_per_byte() {
        let values = [
            DocValue::Weighted {
                logprob: -4.0,
                weight: 2.0,
            },
            DocValue::Weighted {
                logprob: -2.0,
                weight: 1.0,
            },
        ];
        assert!((Aggregation::WeightedPerplexity.apply(&values) - 2f64.exp()).abs() < 1e-12);
        let bpb = Aggregation::BitsPerByte.apply(&values);
        assert!((bpb - 2.0 / std::f64::consts::LN_2).abs() < 1e-12);
    }
}
