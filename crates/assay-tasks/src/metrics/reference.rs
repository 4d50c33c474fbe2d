//! Generation against reference answers: `exact_match` (with the task's options), MATH's
//! `math_equiv` and DROP's `em`/`f1`, each the best over the acceptable answers.

use assay_core::DocValue;

use super::MetricKind;
use crate::answers::{self, ExactMatch};

/// The value of `metric` for `answer`: its best score over `references`.
pub(crate) fn score(
    metric: MetricKind,
    answer: &str,
    references: &[String],
    exact_match: &ExactMatch,
) -> DocValue {
    let best = references
        .iter()
        .map(|r| match metric {
            MetricKind::MathEquiv => answers::math_equiv(answer, r),
            MetricKind::Em => answers::drop_em_f1(answer, r).0,
            MetricKind::F1 => answers::drop_em_f1(answer, r).1,
            _ => exact_match.score(answer, r),
        })
        .fold(0.0, f64::max);
    DocValue::Scalar(best)
}
