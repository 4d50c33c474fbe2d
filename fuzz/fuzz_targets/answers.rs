//! Answer extraction and normalisation: a model's text (before the first NUL) and a reference
//! (after it) through the MATH normaliser and equivalence, DROP's F1, the built-in filter
//! pipelines (regex extraction, majority vote, ...) and the grading rules of `assay grade`.
#![no_main]

use std::sync::LazyLock;

use assay_tasks::answers::{drop_em_f1, last_boxed, math_answer, math_equiv, normalize_math};
use assay_tasks::filters::{FilterSpec, FilterStep, Pipeline};
use assay_validate::grading::rules::{grade, Rule};
use libfuzzer_sys::fuzz_target;

fn step(function: &str, pattern: Option<&str>, group: Option<i64>) -> FilterStep {
    FilterStep {
        function: function.into(),
        regex_pattern: pattern.map(str::to_string),
        group_select: group,
        fallback: None,
        filter_fn: None,
        ignore_case: None,
        ignore_punctuation: None,
        regex_pattern_to_value: None,
    }
}

/// The filter pipelines of the built-in tasks' kinds, compiled once.
static PIPELINES: LazyLock<Vec<Pipeline>> = LazyLock::new(|| {
    [
        vec![step("regex", Some(r"#### (\-?[0-9\.\,]+)"), None), step("take_first", None, None)],
        vec![step("regex", Some(r"(-?[$0-9.,]{2,})|(-?[0-9]+)"), Some(-1)), step("take_first", None, None)],
        vec![step("lowercase", None, None), step("remove_whitespace", None, None), step("majority_vote", None, None), step("take_first", None, None)],
        vec![step("math_answer", None, None), step("strip", None, None), step("take_first", None, None)],
    ]
    .into_iter()
    .map(|filter| Pipeline::compile(&FilterSpec { name: "fuzz".into(), filter }).unwrap())
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (output, reference) = text.split_once('\0').unwrap_or((&text, "42"));
    let _ = last_boxed(output);
    let _ = normalize_math(output);
    let answer = math_answer(output);
    let _ = math_equiv(&answer, reference);
    let _ = drop_em_f1(output, reference);
    for pipeline in PIPELINES.iter() {
        let generations = [output.to_string(), reference.to_string(), output.to_string()];
        // Built-in steps never fail (only a Python hook step can).
        pipeline
            .apply(&generations, &Default::default())
            .expect("built-in filter steps do not fail");
    }
    for rule in [Rule::Exact, Rule::Numeric, Rule::Date, Rule::Name] {
        let _ = grade(rule, reference, output);
    }
});
