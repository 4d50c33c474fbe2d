//! A metric's per-document values and how they aggregate over a task, as lm-eval defines them
//! (the metrics themselves are in `assay-tasks`' registry).

use serde::Serialize;

use crate::stats;

/// One document's contribution to a metric: a value, a log-likelihood with its weight
/// (words or bytes) for the perplexity-type metrics, or what a task's own metric function gave
/// for its own aggregation function.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// A multiple-choice document's gold and predicted choice, for corpus-level F1 and MCC.
    Pair {
        /// The gold choice.
        gold: i64,
        /// The choice with the highest log-likelihood.
        pred: i64,
    },
    /// A task file's `!function` metric's value that is not a number (lm-eval's pass-through
    /// metrics give `[gold, answer]`), kept for the task's `!function` aggregation.
    Item(serde_json::Value),
}

impl DocValue {
    /// The value written in per-sample logs.
    pub fn as_json(&self) -> serde_json::Value {
        match self {
            DocValue::Scalar(v) => serde_json::json!(v),
            DocValue::Weighted { logprob, weight } => serde_json::json!([logprob, weight]),
            DocValue::Pair { gold, pred } => serde_json::json!([gold, pred]),
            DocValue::Item(v) => v.clone(),
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
    /// Binary F1 of (gold, predicted) pairs, positive class 1 (lm-eval's `f1`).
    F1,
    /// Matthews correlation of (gold, predicted) pairs, any number of classes.
    MatthewsCorrcoef,
}

impl Aggregation {
    /// Every aggregation, in the order error messages list them.
    pub const ALL: [Aggregation; 6] = [
        Aggregation::Mean,
        Aggregation::Perplexity,
        Aggregation::WeightedPerplexity,
        Aggregation::BitsPerByte,
        Aggregation::F1,
        Aggregation::MatthewsCorrcoef,
    ];

    /// Its name in lm-eval's task files (`aggregation: mean`).
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Mean => "mean",
            Aggregation::Perplexity => "perplexity",
            Aggregation::WeightedPerplexity => "weighted_perplexity",
            Aggregation::BitsPerByte => "bits_per_byte",
            Aggregation::F1 => "f1",
            Aggregation::MatthewsCorrcoef => "matthews_corrcoef",
        }
    }

    /// The aggregation named `name`, if assay has it.
    pub fn parse(name: &str) -> Option<Aggregation> {
        Aggregation::ALL.into_iter().find(|a| a.name() == name)
    }

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
            Aggregation::F1 => stats::binary_f1(&pairs(values)),
            Aggregation::MatthewsCorrcoef => stats::matthews_corrcoef(&pairs(values)),
        }
    }

    /// Whether `values` can be aggregated: F1 is binary (labels 0 and 1, positive 1), as
    /// lm-eval's (scikit-learn's `f1_score`), which refuses other labels.
    pub fn check(self, values: &[DocValue]) -> Result<(), String> {
        match self {
            Aggregation::F1 => match pairs(values)
                .iter()
                .flat_map(|&(g, p)| [g, p])
                .find(|l| !(0..=1).contains(l))
            {
                Some(label) => Err(format!(
                    "the f1 aggregation is binary (choices 0 and 1, as lm-eval's), but choice {label} occurs; use an `aggregation: !function` for a multi-class F1"
                )),
                None => Ok(()),
            },
            _ => Ok(()),
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
            DocValue::Pair { .. } => f64::NAN,
            DocValue::Item(ref item) => item.as_f64().unwrap_or(f64::NAN),
        })
        .collect()
}

/// The (gold, predicted) pairs among `values`.
fn pairs(values: &[DocValue]) -> Vec<(i64, i64)> {
    values
        .iter()
        .filter_map(|v| match *v {
            DocValue::Pair { gold, pred } => Some((gold, pred)),
            _ => None,
        })
        .collect()
}

fn weighted_sums(values: &[DocValue]) -> (f64, f64) {
    values.iter().fold((0.0, 0.0), |(ll, w), v| match *v {
        DocValue::Weighted { logprob, weight } => (ll + logprob, w + weight),
        DocValue::Scalar(x) => (ll + x, w + 1.0),
        DocValue::Pair { .. } => (f64::NAN, w + 1.0),
        DocValue::Item(ref item) => (ll + item.as_f64().unwrap_or(f64::NAN), w + 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_and_mcc_of_choice_pairs_match_scikit_learn() {
        let values: Vec<DocValue> = [(1, 1), (1, 0), (0, 0), (0, 1), (1, 1), (0, 0)]
            .into_iter()
            .map(|(gold, pred)| DocValue::Pair { gold, pred })
            .collect();
        // sklearn.metrics.f1_score([1,1,0,0,1,0], [1,0,0,1,1,0]) and matthews_corrcoef(...).
        assert!((Aggregation::F1.apply(&values) - 2.0 / 3.0).abs() < 1e-12);
        assert!((Aggregation::MatthewsCorrcoef.apply(&values) - 1.0 / 3.0).abs() < 1e-12);
        assert!(Aggregation::F1.check(&values).is_ok());
        let three = [DocValue::Pair { gold: 2, pred: 0 }];
        assert!(Aggregation::F1
            .check(&three)
            .unwrap_err()
            .contains("choice 2"));
        // Three classes: sklearn gives 0.5 for golds [0,1,2,2,1,0], preds [0,2,2,1,1,0].
        let multi: Vec<DocValue> = [(0, 0), (1, 2), (2, 2), (2, 1), (1, 1), (0, 0)]
            .into_iter()
            .map(|(gold, pred)| DocValue::Pair { gold, pred })
            .collect();
        assert!((Aggregation::MatthewsCorrcoef.apply(&multi) - 0.5).abs() < 1e-12);
    }

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
