//! One log-likelihood request per document: `acc` (the continuation is the greedy one) and
//! `perplexity` (its log-likelihood, aggregated as exp of the negative mean).

use assay_core::{DocValue, Loglikelihood};

use super::MetricKind;

/// The values of `metrics` for a document whose one request scored `answer`.
pub(crate) fn score(metrics: &[MetricKind], answer: &Loglikelihood) -> Vec<DocValue> {
    metrics
        .iter()
        .map(|&m| {
            DocValue::Scalar(match m {
                MetricKind::Acc => f64::from(u8::from(answer.is_greedy)),
                _ => answer.logprob,
            })
        })
        .collect()
}
