//! Per-document metrics and how they aggregate over a task, as lm-eval defines them.

use serde::Serialize;

use crate::stats;

/// The metrics assay computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Multiple choice: the highest-scoring choice is a gold one. Loglikelihood: the continuation
    /// is the greedy one.
    Acc,
    /// Multiple choice: like `acc`, with each choice's log-likelihood divided by its length in
    /// characters.
    AccNorm,
    /// TruthfulQA MC2: the normalised probability mass on the true answers.
    Mc2,
    /// Loglikelihood: exp of the negative mean log-likelihood over documents.
    Perplexity,
    /// Rolling: exp of negative log-likelihood per word.
    WordPerplexity,
    /// Rolling: exp of negative log-likelihood per UTF-8 byte.
    BytePerplexity,
    /// Rolling: negative log-likelihood per byte, in bits.
    BitsPerByte,
    /// Generation: the filtered answer equals the target (with the task's normalisation).
    ExactMatch,
    /// Generation: the final answer equals the target after MATH normalisation.
    MathEquiv,
    /// Generation: DROP's exact match after its answer normalisation (best gold answer).
    Em,
    /// Generation: DROP's bag-of-words F1 with number matching (best gold answer).
    F1,
    /// TruthfulQA generation: best BLEU against a true answer.
    BleuMax,
    /// TruthfulQA generation: best BLEU against a true answer beats the best against a false one.
    BleuAcc,
    /// TruthfulQA generation: best BLEU against true minus best against false answers.
    BleuDiff,
    /// As `BleuMax` with ROUGE-1.
    Rouge1Max,
    /// As `BleuAcc` with ROUGE-1.
    Rouge1Acc,
    /// As `BleuDiff` with ROUGE-1.
    Rouge1Diff,
    /// As `BleuMax` with ROUGE-2.
    Rouge2Max,
    /// As `BleuAcc` with ROUGE-2.
    Rouge2Acc,
    /// As `BleuDiff` with ROUGE-2.
    Rouge2Diff,
    /// As `BleuMax` with ROUGE-L.
    RougeLMax,
    /// As `BleuAcc` with ROUGE-L.
    RougeLAcc,
    /// As `BleuDiff` with ROUGE-L.
    RougeLDiff,
    /// TruthfulQA generation: not a refusal, and closer (ROUGE-L) to a true than to a false answer.
    Truthful,
    /// TruthfulQA generation: not a refusal, and not closer to a true answer.
    Untruthful,
    /// TruthfulQA generation: the rule-based refusal detector fired.
    Refusal,
    /// Code generation: the unbiased estimate that one of 1 samples passes the tests.
    PassAt1,
    /// As `PassAt1` with 10 samples.
    PassAt10,
    /// As `PassAt1` with 100 samples.
    PassAt100,
}

/// Why a metric name or value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    /// The name is not a metric assay knows.
    #[error("unknown metric `{0}` (known: {known})", known = MetricKind::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "))]
    Unknown(String),
}

/// Every metric: (kind, name, aggregation, higher is better).
const METRICS: [(MetricKind, &str, Aggregation, bool); 29] = [
    (MetricKind::Acc, "acc", Aggregation::Mean, true),
    (MetricKind::AccNorm, "acc_norm", Aggregation::Mean, true),
    (MetricKind::Mc2, "mc2", Aggregation::Mean, true),
    (
        MetricKind::Perplexity,
        "perplexity",
        Aggregation::Perplexity,
        false,
    ),
    (
        MetricKind::WordPerplexity,
        "word_perplexity",
        Aggregation::WeightedPerplexity,
        false,
    ),
    (
        MetricKind::BytePerplexity,
        "byte_perplexity",
        Aggregation::WeightedPerplexity,
        false,
    ),
    (
        MetricKind::BitsPerByte,
        "bits_per_byte",
        Aggregation::BitsPerByte,
        false,
    ),
    (
        MetricKind::ExactMatch,
        "exact_match",
        Aggregation::Mean,
        true,
    ),
    (MetricKind::MathEquiv, "math_equiv", Aggregation::Mean, true),
    (MetricKind::Em, "em", Aggregation::Mean, true),
    (MetricKind::F1, "f1", Aggregation::Mean, true),
    (MetricKind::BleuMax, "bleu_max", Aggregation::Mean, true),
    (MetricKind::BleuAcc, "bleu_acc", Aggregation::Mean, true),
    (MetricKind::BleuDiff, "bleu_diff", Aggregation::Mean, true),
    (MetricKind::Rouge1Max, "rouge1_max", Aggregation::Mean, true),
    (MetricKind::Rouge1Acc, "rouge1_acc", Aggregation::Mean, true),
    (
        MetricKind::Rouge1Diff,
        "rouge1_diff",
        Aggregation::Mean,
        true,
    ),
    (MetricKind::Rouge2Max, "rouge2_max", Aggregation::Mean, true),
    (MetricKind::Rouge2Acc, "rouge2_acc", Aggregation::Mean, true),
    (
        MetricKind::Rouge2Diff,
        "rouge2_diff",
        Aggregation::Mean,
        true,
    ),
    (MetricKind::RougeLMax, "rougeL_max", Aggregation::Mean, true),
    (MetricKind::RougeLAcc, "rougeL_acc", Aggregation::Mean, true),
    (
        MetricKind::RougeLDiff,
        "rougeL_diff",
        Aggregation::Mean,
        true,
    ),
    (MetricKind::Truthful, "truthful", Aggregation::Mean, true),
    (
        MetricKind::Untruthful,
        "untruthful",
        Aggregation::Mean,
        false,
    ),
    (MetricKind::Refusal, "refusal", Aggregation::Mean, false),
    (MetricKind::PassAt1, "pass@1", Aggregation::Mean, true),
    (MetricKind::PassAt10, "pass@10", Aggregation::Mean, true),
    (MetricKind::PassAt100, "pass@100", Aggregation::Mean, true),
];

impl MetricKind {
    /// Every metric, in a stable order.
    pub const ALL: [MetricKind; 29] = {
        let mut all = [MetricKind::Acc; 29];
        let mut i = 0;
        while i < METRICS.len() {
            all[i] = METRICS[i].0;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static (MetricKind, &'static str, Aggregation, bool) {
        METRICS
            .iter()
            .find(|r| r.0 == self)
            .expect("every metric has a row")
    }

    /// The metric's name in task files and results.
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// Parses a metric name.
    pub fn parse(name: &str) -> Result<MetricKind, MetricError> {
        METRICS
            .iter()
            .find(|r| r.1 == name)
            .map(|r| r.0)
            .ok_or_else(|| MetricError::Unknown(name.to_string()))
    }

    /// How per-document values of this metric combine into the task's value.
    pub fn aggregation(self) -> Aggregation {
        self.row().2
    }

    /// Whether a larger value is better.
    pub fn higher_is_better(self) -> bool {
        self.row().3
    }

    /// For pass@k metrics, k.
    pub fn pass_k(self) -> Option<usize> {
        match self {
            MetricKind::PassAt1 => Some(1),
            MetricKind::PassAt10 => Some(10),
            MetricKind::PassAt100 => Some(100),
            _ => None,
        }
    }
}

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

/// The outcome of one multiple-choice document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MultipleChoiceOutcome {
    /// Index of the choice with the highest log-likelihood (first on ties).
    pub pred: usize,
    /// Index of the choice with the highest log-likelihood per character.
    pub pred_norm: usize,
    /// 1 when `pred` is gold, else 0.
    pub acc: f64,
    /// 1 when `pred_norm` is gold, else 0.
    pub acc_norm: f64,
    /// Probability mass on the gold choices after normalising over all choices.
    pub mc2: f64,
}

/// Scores a multiple-choice document from its choices' log-likelihoods, the choices' lengths in
/// characters, and the gold indices (usually one).
pub fn score_multiple_choice(
    logprobs: &[f64],
    choice_chars: &[usize],
    gold: &[usize],
) -> MultipleChoiceOutcome {
    let pred = argmax(logprobs.iter().copied());
    let pred_norm = argmax(
        logprobs
            .iter()
            .zip(choice_chars)
            .map(|(ll, &len)| ll / (len.max(1) as f64)),
    );
    let max = logprobs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = logprobs.iter().map(|ll| (ll - max).exp()).sum();
    let gold_mass: f64 = gold
        .iter()
        .filter_map(|&g| logprobs.get(g))
        .map(|ll| (ll - max).exp())
        .sum();
    MultipleChoiceOutcome {
        pred,
        pred_norm,
        acc: f64::from(u8::from(gold.contains(&pred))),
        acc_norm: f64::from(u8::from(gold.contains(&pred_norm))),
        mc2: gold_mass / total,
    }
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acc_norm_divides_by_characters() {
        // Choice 1 has the best total, choice 0 the best per character.
        let out = score_multiple_choice(&[-10.0, -6.0], &[20, 6], &[0]);
        assert_eq!(out.pred, 1);
        assert_eq!(out.pred_norm, 0);
        assert_eq!((out.acc, out.acc_norm), (0.0, 1.0));
    }

    #[test]
    fn ties_pick_the_first_choice() {
        let out = score_multiple_choice(&[-1.0, -1.0], &[1, 1], &[1]);
        assert_eq!(out.pred, 0);
        assert_eq!(out.acc, 0.0);
    }

    #[test]
    fn mc2_is_normalised_mass_on_true_answers() {
        let lls = [0.5f64.ln(), 0.25f64.ln(), 0.25f64.ln()];
        let out = score_multiple_choice(&lls, &[1, 1, 1], &[0, 1]);
        assert!((out.mc2 - 0.75).abs() < 1e-12);
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

    #[test]
    fn metric_names_round_trip() {
        for m in MetricKind::ALL {
            assert_eq!(MetricKind::parse(m.name()).unwrap(), m);
        }
        assert!(MetricKind::parse("accuracy").is_err());
    }
}
