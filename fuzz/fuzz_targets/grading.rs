//! `assay grade`'s rules and the checks on a model's reply: a reference (before the first NUL)
//! and a completion (after it) through every rule (exact, numeric, date, name) both ways, the
//! first date of each, the refusal detector, the reasoning split and the LLM judge's verdict.
#![no_main]

use assay_validate::grading::grade::parse_verdict;
use assay_validate::prompts::reasoning::split_reasoning;
use assay_validate::prompts::refusal::detect_refusal;
use assay_validate::grading::rules::{first_date, grade, Rule, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (reference, completion) = text.split_once('\0').unwrap_or(("January 5, 1920", &text));
    for rule in [Rule::Exact, Rule::Numeric, Rule::Date, Rule::Name] {
        let _ = grade(rule, reference, completion);
        let _ = grade(rule, completion, reference);
    }
    for side in [reference, completion] {
        if let Some((y, m, d)) = first_date(side) {
            assert!((100..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(grade(Rule::Date, side, side), Verdict::Equivalent);
        }
        if let Some(found) = detect_refusal(side) {
            assert!(!found.phrase.is_empty());
        }
        let split = split_reasoning(side);
        assert!(split.response.len() <= side.len());
        let _ = parse_verdict(side);
    }
});
