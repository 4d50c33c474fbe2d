//! Every token of a text scored: word and byte perplexity and bits per byte, each the text's
//! log-likelihood weighted by its words or UTF-8 bytes.

use assay_core::{DocValue, RollingLoglikelihood};

use super::MetricKind;

/// The values of `metrics` for `text`, which scored `answer`.
pub(crate) fn score(
    metrics: &[MetricKind],
    text: &str,
    answer: &RollingLoglikelihood,
) -> Vec<DocValue> {
    let words = text.split_whitespace().count() as f64;
    let bytes = text.len() as f64;
    metrics
        .iter()
        .map(|&m| {
            let weight = if m == MetricKind::WordPerplexity {
                words
            } else {
                bytes
            };
            DocValue::Weighted {
                logprob: answer.logprob,
                weight,
            }
        })
        .collect()
}
