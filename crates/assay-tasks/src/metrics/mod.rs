//! Every metric assay computes, in one registry, and how a document's answers become their
//! values. One file per family of metrics; [`REGISTRY`] says for each metric its name in task
//! files and results, how its per-document values aggregate, whether higher is better, which
//! output types it applies to and whether it is one of their defaults.
//!
//! Scoring a document gives [`Scored`]: the values (one per `(metric, filter)` key of the task)
//! and the details a per-sample log shows beside them (how each program of a pass@k task ended).
//!
//! To add a metric: a variant of [`MetricKind`], a row of [`REGISTRY`], and its scoring in the
//! family's file (or a new file for a new family), called from `PreparedTask::score`.

pub(crate) mod loglikelihood;
pub(crate) mod multiple_choice;
pub(crate) mod pass_at_k;
pub(crate) mod reference;
pub(crate) mod rolling;
mod task_metric;
pub(crate) mod truthfulqa;

pub(crate) use task_metric::{function_name, hook_kwargs, number};
pub use task_metric::{Metric, MetricAggregation};

use assay_core::{Aggregation, DocValue};
use serde::Serialize;
use serde_json::Value;

use crate::spec::OutputType;
use Aggregation::{BitsPerByte, Mean, WeightedPerplexity};
use MetricKind as M;

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
    /// Multiple choice: (gold, predicted) choice pairs for a corpus-level binary F1 (lm-eval's
    /// `f1` on multiple-choice tasks; generation's `f1` is DROP's).
    ChoiceF1,
    /// Multiple choice: (gold, predicted) choice pairs for the Matthews correlation.
    Mcc,
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

/// Why a metric name could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    /// The name is not a metric assay knows.
    #[error("unknown metric `{0}` (known: {known})", known = REGISTRY.iter().map(|m| m.name).collect::<Vec<_>>().join(", "))]
    Unknown(String),
}

/// One metric's entry in the registry.
#[derive(Debug)]
pub struct MetricInfo {
    /// The metric.
    pub kind: MetricKind,
    /// Its name in task files and results.
    pub name: &'static str,
    /// How per-document values combine into the task's value.
    pub aggregation: Aggregation,
    /// Whether a larger value is better.
    pub higher_is_better: bool,
    /// The output types it applies to.
    pub outputs: &'static [OutputType],
    /// Whether a task of those output types reports it when its file names no metrics.
    pub default: bool,
}

const MC: &[OutputType] = &[OutputType::MultipleChoice];
const LL: &[OutputType] = &[OutputType::Loglikelihood];
const MC_LL: &[OutputType] = &[OutputType::MultipleChoice, OutputType::Loglikelihood];
const ROLLING: &[OutputType] = &[OutputType::LoglikelihoodRolling];
const GEN: &[OutputType] = &[OutputType::GenerateUntil];

const fn metric(
    kind: MetricKind,
    name: &'static str,
    aggregation: Aggregation,
    higher_is_better: bool,
    outputs: &'static [OutputType],
    default: bool,
) -> MetricInfo {
    MetricInfo {
        kind,
        name,
        aggregation,
        higher_is_better,
        outputs,
        default,
    }
}

/// Every metric, in a stable order (the order of the output types' allowed lists).
pub const REGISTRY: &[MetricInfo] = &[
    metric(M::Acc, "acc", Mean, true, MC_LL, true),
    metric(M::AccNorm, "acc_norm", Mean, true, MC, true),
    metric(M::Mc2, "mc2", Mean, true, MC, false),
    metric(M::ChoiceF1, "f1", Aggregation::F1, true, MC, false),
    metric(
        M::Mcc,
        "mcc",
        Aggregation::MatthewsCorrcoef,
        true,
        MC,
        false,
    ),
    metric(
        M::Perplexity,
        "perplexity",
        Aggregation::Perplexity,
        false,
        LL,
        true,
    ),
    metric(
        M::WordPerplexity,
        "word_perplexity",
        WeightedPerplexity,
        false,
        ROLLING,
        true,
    ),
    metric(
        M::BytePerplexity,
        "byte_perplexity",
        WeightedPerplexity,
        false,
        ROLLING,
        true,
    ),
    metric(
        M::BitsPerByte,
        "bits_per_byte",
        BitsPerByte,
        false,
        ROLLING,
        true,
    ),
    metric(M::ExactMatch, "exact_match", Mean, true, GEN, true),
    metric(M::MathEquiv, "math_equiv", Mean, true, GEN, false),
    metric(M::Em, "em", Mean, true, GEN, false),
    metric(M::F1, "f1", Mean, true, GEN, false),
    metric(M::BleuMax, "bleu_max", Mean, true, GEN, false),
    metric(M::BleuAcc, "bleu_acc", Mean, true, GEN, false),
    metric(M::BleuDiff, "bleu_diff", Mean, true, GEN, false),
    metric(M::Rouge1Max, "rouge1_max", Mean, true, GEN, false),
    metric(M::Rouge1Acc, "rouge1_acc", Mean, true, GEN, false),
    metric(M::Rouge1Diff, "rouge1_diff", Mean, true, GEN, false),
    metric(M::Rouge2Max, "rouge2_max", Mean, true, GEN, false),
    metric(M::Rouge2Acc, "rouge2_acc", Mean, true, GEN, false),
    metric(M::Rouge2Diff, "rouge2_diff", Mean, true, GEN, false),
    metric(M::RougeLMax, "rougeL_max", Mean, true, GEN, false),
    metric(M::RougeLAcc, "rougeL_acc", Mean, true, GEN, false),
    metric(M::RougeLDiff, "rougeL_diff", Mean, true, GEN, false),
    metric(M::Truthful, "truthful", Mean, true, GEN, false),
    metric(M::Untruthful, "untruthful", Mean, false, GEN, false),
    metric(M::Refusal, "refusal", Mean, false, GEN, false),
    metric(M::PassAt1, "pass@1", Mean, true, GEN, false),
    metric(M::PassAt10, "pass@10", Mean, true, GEN, false),
    metric(M::PassAt100, "pass@100", Mean, true, GEN, false),
];

impl MetricKind {
    /// Every metric, in the registry's order.
    pub fn all() -> impl Iterator<Item = MetricKind> {
        REGISTRY.iter().map(|m| m.kind)
    }

    /// The metric's registry entry.
    pub fn info(self) -> &'static MetricInfo {
        REGISTRY
            .iter()
            .find(|m| m.kind == self)
            .expect("every metric has a row")
    }

    /// The metric's name in task files and results.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Parses a metric name for a task of `output` (`f1` is a different metric for multiple
    /// choice and for generation, as in lm-eval); a name known only for other output types
    /// gives one of those.
    pub fn parse(name: &str, output: OutputType) -> Result<MetricKind, MetricError> {
        let named = || REGISTRY.iter().filter(|m| m.name == name);
        named()
            .find(|m| m.outputs.contains(&output))
            .or_else(|| named().next())
            .map(|m| m.kind)
            .ok_or_else(|| MetricError::Unknown(name.to_string()))
    }

    /// How per-document values of this metric combine into the task's value.
    pub fn aggregation(self) -> Aggregation {
        self.info().aggregation
    }

    /// Whether a larger value is better.
    pub fn higher_is_better(self) -> bool {
        self.info().higher_is_better
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

/// The metrics that apply to `output`, in registry order.
pub fn allowed(output: OutputType) -> Vec<MetricKind> {
    REGISTRY
        .iter()
        .filter(|m| m.outputs.contains(&output))
        .map(|m| m.kind)
        .collect()
}

/// The metrics a task of `output` reports when its file names none.
pub fn defaults(output: OutputType) -> Vec<MetricKind> {
    REGISTRY
        .iter()
        .filter(|m| m.default && m.outputs.contains(&output))
        .map(|m| m.kind)
        .collect()
}

/// One document's scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scored {
    /// One value per `(metric, filter)` key of the task, in the task's key order.
    pub values: Vec<DocValue>,
    /// What the per-sample log shows beside the values, per filter: for pass@k tasks, how each
    /// generation's program ended (`[{"outcome", "kind"?, "seconds"}]`).
    pub details: Option<Value>,
    /// A generation's answers after each filter pipeline (in the task's filter order); empty
    /// for other tasks.
    pub filtered: Vec<(String, Vec<String>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_round_trip() {
        for m in MetricKind::all() {
            for &output in m.info().outputs {
                assert_eq!(MetricKind::parse(m.name(), output).unwrap(), m);
            }
        }
        assert_eq!(
            MetricKind::parse("f1", OutputType::GenerateUntil).unwrap(),
            MetricKind::F1
        );
        assert_eq!(
            MetricKind::parse("f1", OutputType::MultipleChoice).unwrap(),
            MetricKind::ChoiceF1
        );
        assert!(MetricKind::parse("accuracy", OutputType::MultipleChoice).is_err());
    }

    #[test]
    fn defaults_and_allowed_lists_per_output_type() {
        use MetricKind::*;
        assert_eq!(defaults(OutputType::MultipleChoice), [Acc, AccNorm]);
        assert_eq!(
            allowed(OutputType::MultipleChoice),
            [Acc, AccNorm, Mc2, ChoiceF1, Mcc]
        );
        assert_eq!(defaults(OutputType::Loglikelihood), [Acc, Perplexity]);
        assert_eq!(defaults(OutputType::GenerateUntil), [ExactMatch]);
        assert_eq!(
            defaults(OutputType::LoglikelihoodRolling),
            allowed(OutputType::LoglikelihoodRolling)
        );
        assert_eq!(allowed(OutputType::GenerateUntil).len(), 22);
        // Every metric applies to some output type.
        assert!(REGISTRY.iter().all(|m| !m.outputs.is_empty()));
    }
}
