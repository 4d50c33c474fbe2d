//! Filter pipelines as a task YAML's `filter_list` defines them, with any steps and any regex
//! pattern, over any generations. The input's first line picks the steps (one byte each: the
//! function, and for `regex` its `group_select` and whether it has a fallback); the next line
//! is the regex pattern; every later line (up to 8) is a generation. A pattern that does not compile is an error; one that
//! runs into the backtracking limit is no match; nothing panics.
#![no_main]

use assay_tasks::filters::{FilterSpec, FilterStep, Pipeline};
use libfuzzer_sys::fuzz_target;

const FUNCTIONS: [&str; 9] = [
    "regex",
    "take_first",
    "majority_vote",
    "lowercase",
    "uppercase",
    "strip",
    "remove_whitespace",
    "math_answer",
    "regex",
];

fuzz_target!(|data: &[u8]| {
    let (steps, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let pattern = lines.next().unwrap_or("");
    let generations: Vec<String> = lines.take(8).map(str::to_string).collect();
    let filter = steps
        .iter()
        .take(8)
        .map(|&b| {
            let function = FUNCTIONS[usize::from(b) % FUNCTIONS.len()];
            let regex = function == "regex";
            FilterStep {
                function: function.into(),
                regex_pattern: regex.then(|| pattern.to_string()),
                // -4 ..= 3: the last matches, the first ones, and past either end.
                group_select: regex.then(|| i64::from(b >> 5) - 4),
                fallback: (regex && (b & 16) != 0).then(|| "none".to_string()),
                filter_fn: None,
                ignore_case: None,
                ignore_punctuation: None,
                regex_pattern_to_value: None,
            }
        })
        .collect();
    let spec = FilterSpec {
        name: "fuzz".into(),
        filter,
    };
    let Ok(pipeline) = Pipeline::compile(&spec) else {
        return;
    };
    // Built-in steps never fail (only a Python hook step can).
    let out = pipeline
        .apply(&generations, &Default::default())
        .expect("built-in filter steps do not fail");
    assert!(out.len() <= generations.len().max(1), "{out:?}");
});
