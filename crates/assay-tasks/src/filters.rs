//! Filters: how a task turns a document's generated texts into the answer that is scored, as
//! lm-eval's `filter_list` defines them. Each named pipeline gives one result per document; its
//! metrics are reported under `"{metric},{pipeline name}"`.

use fancy_regex::Regex;
use serde::{Deserialize, Serialize};

use crate::answers;

/// A named filter pipeline in a task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// The name in result keys (`strict-match`, `flexible-extract`, ...).
    pub name: String,
    /// The steps, applied in order.
    pub filter: Vec<FilterStep>,
}

/// One step of a filter pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterStep {
    /// `regex`, `take_first`, `majority_vote`, `lowercase`, `uppercase`, `strip`,
    /// `remove_whitespace` or `math_answer`.
    pub function: String,
    /// For `regex`: the pattern (Python syntax, lookarounds allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_pattern: Option<String>,
    /// For `regex`: which match to keep (0 first, -1 last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_select: Option<i64>,
    /// For `regex`: the result when nothing matches (default `[invalid]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// A compiled step.
#[derive(Debug, Clone)]
enum Step {
    Regex {
        re: Regex,
        group_select: i64,
        fallback: String,
    },
    TakeFirst,
    MajorityVote,
    Lowercase,
    Uppercase,
    Strip,
    RemoveWhitespace,
    MathAnswer,
}

/// A compiled filter pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Its name.
    pub name: String,
    steps: Vec<Step>,
}

/// The pipeline used when a generation task names none: keep the first generation as it is.
pub fn default_pipeline() -> Pipeline {
    Pipeline {
        name: "none".into(),
        steps: vec![Step::TakeFirst],
    }
}

impl Pipeline {
    /// Compiles a pipeline; errors name the step and say what is wrong.
    pub fn compile(spec: &FilterSpec) -> Result<Pipeline, String> {
        let steps = spec
            .filter
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let at = format!("filter `{}`, step {} ({})", spec.name, i + 1, step.function);
                Ok(match step.function.as_str() {
                    "regex" => {
                        let pattern = step
                            .regex_pattern
                            .as_deref()
                            .ok_or_else(|| format!("{at}: regex_pattern is missing"))?;
                        let re = Regex::new(pattern)
                            .map_err(|e| format!("{at}: invalid regex {pattern:?}: {e}"))?;
                        Step::Regex {
                            re,
                            group_select: step.group_select.unwrap_or(0),
                            fallback: step.fallback.clone().unwrap_or_else(|| "[invalid]".into()),
                        }
                    }
                    "take_first" => Step::TakeFirst,
                    "majority_vote" => Step::MajorityVote,
                    "lowercase" => Step::Lowercase,
                    "uppercase" => Step::Uppercase,
                    "strip" => Step::Strip,
                    "remove_whitespace" => Step::RemoveWhitespace,
                    "math_answer" => Step::MathAnswer,
                    other => {
                        return Err(format!(
                            "{at}: unknown filter function `{other}` (known: regex, take_first, majority_vote, lowercase, uppercase, strip, remove_whitespace, math_answer)"
                        ))
                    }
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Pipeline {
            name: spec.name.clone(),
            steps,
        })
    }

    /// Applies the pipeline to a document's generations.
    pub fn apply(&self, generations: &[String]) -> Vec<String> {
        let mut values = generations.to_vec();
        for step in &self.steps {
            values = match step {
                Step::TakeFirst => values.into_iter().take(1).collect(),
                Step::MajorityVote => majority(&values).into_iter().collect(),
                Step::Lowercase => values.iter().map(|v| v.to_lowercase()).collect(),
                Step::Uppercase => values.iter().map(|v| v.to_uppercase()).collect(),
                Step::Strip => values.iter().map(|v| v.trim().to_string()).collect(),
                Step::RemoveWhitespace => {
                    values.iter().map(|v| v.trim_start().to_string()).collect()
                }
                Step::MathAnswer => values.iter().map(|v| answers::math_answer(v)).collect(),
                Step::Regex {
                    re,
                    group_select,
                    fallback,
                } => values
                    .iter()
                    .map(|v| regex_extract(re, *group_select, fallback, v))
                    .collect(),
            };
        }
        values
    }
}

/// The most common value (the first seen on ties).
fn majority(values: &[String]) -> Option<String> {
    let mut counts: Vec<(&String, usize)> = Vec::new();
    for v in values {
        match counts.iter_mut().find(|(k, _)| *k == v) {
            Some(entry) => entry.1 += 1,
            None => counts.push((v, 1)),
        }
    }
    let best = counts.iter().map(|c| c.1).max()?;
    counts
        .into_iter()
        .find(|c| c.1 == best)
        .map(|c| c.0.clone())
}

/// Python's `re.findall(pattern, text)[group_select]`, then the first non-empty group of a
/// multi-group match, stripped; `fallback` when nothing matches, and when the search fails (a
/// pattern past fancy-regex's backtracking limit): the matches found before the failure are not
/// all of them, so none is taken.
fn regex_extract(re: &Regex, group_select: i64, fallback: &str, text: &str) -> String {
    let groups = re.captures_len() - 1;
    let mut found: Vec<Vec<String>> = Vec::new();
    for caps in re.captures_iter(text) {
        let Ok(caps) = caps else {
            return fallback.to_string();
        };
        let row = if groups == 0 {
            vec![caps.get(0).map_or("", |m| m.as_str()).to_string()]
        } else {
            (1..=groups)
                .map(|g| caps.get(g).map_or("", |m| m.as_str()).to_string())
                .collect()
        };
        found.push(row);
    }
    let index = if group_select < 0 {
        found.len() as i64 + group_select
    } else {
        group_select
    };
    let Some(row) = usize::try_from(index).ok().and_then(|i| found.get(i)) else {
        return fallback.to_string();
    };
    let chosen = if row.len() == 1 {
        Some(row[0].clone())
    } else {
        row.iter().find(|g| !g.is_empty()).cloned()
    };
    chosen.map_or_else(|| fallback.to_string(), |m| m.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(yaml: &str) -> Result<Pipeline, String> {
        Pipeline::compile(&serde_yaml::from_str::<FilterSpec>(yaml).unwrap())
    }

    #[test]
    fn gsm8k_strict_and_flexible_extraction() {
        let strict = pipeline("name: strict-match\nfilter:\n  - function: regex\n    regex_pattern: \"#### (\\\\-?[0-9\\\\.\\\\,]+)\"\n  - function: take_first\n").unwrap();
        let flexible = pipeline("name: flexible-extract\nfilter:\n  - function: regex\n    group_select: -1\n    regex_pattern: \"(-?[$0-9.,]{2,})|(-?[0-9]+)\"\n  - function: take_first\n").unwrap();
        let gen = vec!["She sells 16 - 3 - 4 = 9 eggs, so 9 * 2 = $18.\n#### 18".to_string()];
        assert_eq!(strict.apply(&gen), vec!["18"]);
        assert_eq!(flexible.apply(&gen), vec!["18"]);
        let loose = vec!["The answer is 1,250 dollars.".to_string()];
        assert_eq!(strict.apply(&loose), vec!["[invalid]"]);
        assert_eq!(flexible.apply(&loose), vec!["1,250"]);
        let single_digit = vec!["It is 7".to_string()];
        assert_eq!(flexible.apply(&single_digit), vec!["7"]);
    }

    #[test]
    fn lookbehind_patterns_work() {
        let p = pipeline("name: x\nfilter:\n  - function: regex\n    regex_pattern: \"(?<=The answer is )(.*)(?=.)\"\n").unwrap();
        assert_eq!(p.apply(&["So. The answer is (B).".into()]), vec!["(B)"]);
    }

    #[test]
    fn a_pattern_past_the_backtracking_limit_is_no_match() {
        // The matches before the search that hit the limit are not the answer (`-1` would
        // have taken "2").
        let p = pipeline("name: x\nfilter:\n  - function: regex\n    group_select: -1\n    regex_pattern: \"[0-9]|(?:a|b|ab)*(?=c)\"\n").unwrap();
        let text = format!("1 2 {}", "ab".repeat(30));
        assert_eq!(p.apply(&[text]), vec!["[invalid]"]);
        assert_eq!(p.apply(&["1 2 b".into()]), vec!["2"]);
    }

    #[test]
    fn majority_vote_and_case() {
        let p =
            pipeline("name: maj\nfilter:\n  - function: lowercase\n  - function: majority_vote\n")
                .unwrap();
        assert_eq!(p.apply(&["A".into(), "b".into(), "B".into()]), vec!["b"]);
    }

    #[test]
    fn bad_filters_are_rejected_with_the_place() {
        let err =
            pipeline("name: bad\nfilter:\n  - function: regex\n    regex_pattern: \"(unclosed\"\n")
                .unwrap_err();
        assert!(
            err.starts_with("filter `bad`, step 1 (regex): invalid regex"),
            "{err}"
        );
        let err = pipeline("name: bad\nfilter:\n  - function: nonsense\n").unwrap_err();
        assert!(err.contains("unknown filter function `nonsense`"), "{err}");
    }
}
