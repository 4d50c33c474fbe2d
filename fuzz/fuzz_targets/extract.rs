//! Every answer extractor and comparer of `assay-tasks` on a model's text (before the first
//! NUL), a reference (after it) and a user's `regexes_to_ignore` pattern (after a second NUL):
//! MATH's final answer, `\boxed{}`, normalisation and equivalence; GSM8K-style exact match with
//! lm-eval's options (the built-in ones and the user's pattern); DROP's EM/F1; TruthfulQA's
//! BLEU, ROUGE and refusal check. Besides not panicking, an answer equals itself.
#![no_main]

use std::sync::LazyLock;

use assay_tasks::answers::{
    drop_em_f1, last_boxed, math_answer, math_equiv, normalize_math, ExactMatch,
};
use assay_tasks::similarity::{bleu, is_refusal, rouge_l, rouge_n};
use fancy_regex::Regex;
use libfuzzer_sys::fuzz_target;

/// GSM8K's `exact_match` options.
static GSM8K: LazyLock<ExactMatch> = LazyLock::new(|| ExactMatch {
    ignore_case: true,
    ignore_punctuation: false,
    regexes_to_ignore: [",", "\\$", "(?s).*#### ", "\\.$"]
        .iter()
        .map(|r| Regex::new(r).unwrap())
        .collect(),
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(3, '\0');
    let output = fields.next().unwrap_or("");
    let reference = fields.next().unwrap_or("42");
    let pattern = fields.next();

    let answer = math_answer(output);
    assert!(!answer.is_empty());
    if let Some(inner) = last_boxed(output) {
        assert!(output.contains(&inner));
    }
    let _ = normalize_math(output);
    let _ = math_equiv(&answer, reference);
    assert_eq!(math_equiv(&answer, &answer), 1.0, "{answer:?}");

    let (em, f1) = drop_em_f1(output, reference);
    assert!(
        (0.0..=1.0).contains(&em) && (0.0..=1.0).contains(&f1),
        "{em} {f1}"
    );
    assert_eq!(drop_em_f1(output, output).0, 1.0);

    assert_eq!(GSM8K.score(output, output), 1.0);
    let _ = GSM8K.score(output, reference);
    if let Some(re) = pattern.and_then(|p| Regex::new(p).ok()) {
        for (ignore_case, ignore_punctuation) in [(false, false), (true, true)] {
            let em = ExactMatch {
                ignore_case,
                ignore_punctuation,
                regexes_to_ignore: vec![re.clone()],
            };
            assert_eq!(em.score(output, output), 1.0);
            let _ = em.score(output, reference);
        }
    }

    for score in [
        bleu(output, reference),
        rouge_n(output, reference, 1),
        rouge_n(output, reference, 2),
        rouge_l(output, reference),
    ] {
        assert!(
            score.is_finite() && (0.0..=100.0 + 1e-9).contains(&score),
            "{score}"
        );
    }
    let _ = is_refusal(output);
});
