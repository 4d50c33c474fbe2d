//! Multiple choice: `acc`, `acc_norm`, TruthfulQA's `mc2`, and the (gold, predicted) pairs of
//! `f1` and `mcc`, from the choices' log-likelihoods.

use assay_core::DocValue;
use serde::Serialize;

use super::MetricKind;

/// The values of `metrics` for a document whose choices scored `logprobs`.
pub(crate) fn score(
    metrics: &[MetricKind],
    logprobs: &[f64],
    choices: &[String],
    gold: &[usize],
) -> Vec<DocValue> {
    let chars: Vec<usize> = choices.iter().map(|c| c.chars().count()).collect();
    let out = score_multiple_choice(logprobs, &chars, gold);
    // lm-eval's pairs hold the gold index (the first, for several) and the argmax choice.
    let pair = DocValue::Pair {
        gold: gold.first().map_or(-1, |&g| g as i64),
        pred: out.pred as i64,
    };
    metrics
        .iter()
        .map(|&m| match m {
            MetricKind::AccNorm => DocValue::Scalar(out.acc_norm),
            MetricKind::Mc2 => DocValue::Scalar(out.mc2),
            MetricKind::ChoiceF1 | MetricKind::Mcc => pair.clone(),
            _ => DocValue::Scalar(out.acc),
        })
        .collect()
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
}
