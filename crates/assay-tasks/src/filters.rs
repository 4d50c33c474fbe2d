//! Filters: how a task turns a document's generated texts into the answer that is scored, as
//! lm-eval's `filter_list` defines them. Each named pipeline gives one result per document; its
//! metrics are reported under `"{metric},{pipeline name}"`.

use fancy_regex::Regex;
use serde::{Deserialize, Serialize};

use assay_data::Record;

use crate::{answers, hooks};

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
    /// `remove_whitespace`, `math_answer`, `custom` (with `filter_fn`), or a filter class of
    /// the task's own (`!function module.Class`, built with the step's other keys).
    pub function: serde_yaml::Value,
    /// For `custom`: the `!function` called as `filter_fn(resps, docs)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_fn: Option<serde_yaml::Value>,
    /// For `regex`: the pattern (Python syntax, lookarounds allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_pattern: Option<String>,
    /// For `regex`: which match to keep (0 first, -1 last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_select: Option<i64>,
    /// For `regex`: the result when nothing matches (default `[invalid]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// For a filter class: lm-eval's `MultiChoiceRegexFilter` option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_case: Option<bool>,
    /// For a filter class: lm-eval's `MultiChoiceRegexFilter` option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_punctuation: Option<bool>,
    /// For a filter class: a mapping from patterns to values (lm-eval's `MapRegexFilter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_pattern_to_value: Option<serde_json::Map<String, serde_json::Value>>,
}

impl FilterStep {
    /// The step's options other than `function` and `filter_fn`, as a filter class's keyword
    /// arguments.
    fn kwargs(&self) -> serde_json::Value {
        let mut all = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = all.as_object_mut() {
            map.remove("function");
            map.remove("filter_fn");
        }
        all
    }

    /// The options a class or `custom` hook takes but the built-in functions do not.
    fn hook_only_options(&self) -> Vec<&'static str> {
        [
            ("ignore_case", self.ignore_case.is_some()),
            ("ignore_punctuation", self.ignore_punctuation.is_some()),
            (
                "regex_pattern_to_value",
                self.regex_pattern_to_value.is_some(),
            ),
            ("filter_fn", self.filter_fn.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
}

/// The `folder/module.name` of a `!function` value.
fn function_path(value: &serde_yaml::Value) -> Option<&str> {
    match value {
        serde_yaml::Value::Tagged(t) if t.tag == "function" => t.value.as_str(),
        _ => None,
    }
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
    /// A filter in the user's Python: `filter_fn` (`is_class` false) or a filter class.
    Hook {
        path: String,
        is_class: bool,
        kwargs: serde_json::Value,
    },
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
                let shown = match (&step.function, function_path(&step.function)) {
                    (_, Some(path)) => format!("!function {}", hooks::display_name(path)),
                    (serde_yaml::Value::String(s), None) => s.clone(),
                    (other, None) => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
                };
                let at = format!("filter `{}`, step {} ({shown})", spec.name, i + 1);
                if let Some(path) = function_path(&step.function) {
                    return Ok(Step::Hook {
                        path: path.to_string(),
                        is_class: true,
                        kwargs: step.kwargs(),
                    });
                }
                if step.function.as_str() == Some("custom") {
                    let path = step.filter_fn.as_ref().and_then(function_path).ok_or_else(|| {
                        format!("{at}: `custom` needs `filter_fn: !function module.function`")
                    })?;
                    return Ok(Step::Hook {
                        path: path.to_string(),
                        is_class: false,
                        kwargs: serde_json::json!({}),
                    });
                }
                if let Some(key) = step.hook_only_options().first() {
                    return Err(format!(
                        "{at}: `{key}` applies to `custom` and `!function` filters only"
                    ));
                }
                let Some(function) = step.function.as_str() else {
                    return Err(format!(
                        "{at}: function must be a name or a `!function module.Class`"
                    ));
                };
                Ok(match function {
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
                            "{at}: unknown filter function `{other}` (known: regex, take_first, majority_vote, lowercase, uppercase, strip, remove_whitespace, math_answer, custom with filter_fn, or a `!function` filter class)"
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

    /// Applies the pipeline to a document's generations; a hook step's failure is an error
    /// naming the pipeline and the hook.
    pub fn apply(&self, generations: &[String], doc: &Record) -> Result<Vec<String>, String> {
        let mut values = generations.to_vec();
        for step in &self.steps {
            values = match step {
                Step::Hook {
                    path,
                    is_class,
                    kwargs,
                } => hooks::filter(path, *is_class, kwargs, &values, doc).map_err(|m| {
                    format!(
                        "filter `{}` (`!function {}`): {m}",
                        self.name,
                        hooks::display_name(path)
                    )
                })?,
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
        Ok(values)
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
        assert_eq!(strict.apply(&gen, &Record::new()).unwrap(), vec!["18"]);
        assert_eq!(flexible.apply(&gen, &Record::new()).unwrap(), vec!["18"]);
        let loose = vec!["The answer is 1,250 dollars.".to_string()];
        assert_eq!(
            strict.apply(&loose, &Record::new()).unwrap(),
            vec!["[invalid]"]
        );
        assert_eq!(
            flexible.apply(&loose, &Record::new()).unwrap(),
            vec!["1,250"]
        );
        let single_digit = vec!["It is 7".to_string()];
        assert_eq!(
            flexible.apply(&single_digit, &Record::new()).unwrap(),
            vec!["7"]
        );
    }

    #[test]
    fn lookbehind_patterns_work() {
        let p = pipeline("name: x\nfilter:\n  - function: regex\n    regex_pattern: \"(?<=The answer is )(.*)(?=.)\"\n").unwrap();
        assert_eq!(
            p.apply(&["So. The answer is (B).".into()], &Record::new())
                .unwrap(),
            vec!["(B)"]
        );
    }

    #[test]
    fn a_pattern_past_the_backtracking_limit_is_no_match() {
        // The matches before the search that hit the limit are not the answer (`-1` would
        // have taken "2").
        let p = pipeline("name: x\nfilter:\n  - function: regex\n    group_select: -1\n    regex_pattern: \"[0-9]|(?:a|b|ab)*(?=c)\"\n").unwrap();
        let text = format!("1 2 {}", "ab".repeat(30));
        assert_eq!(p.apply(&[text], &Record::new()).unwrap(), vec!["[invalid]"]);
        assert_eq!(
            p.apply(&["1 2 b".into()], &Record::new()).unwrap(),
            vec!["2"]
        );
    }

    #[test]
    fn majority_vote_and_case() {
        let p =
            pipeline("name: maj\nfilter:\n  - function: lowercase\n  - function: majority_vote\n")
                .unwrap();
        assert_eq!(
            p.apply(&["A".into(), "b".into(), "B".into()], &Record::new())
                .unwrap(),
            vec!["b"]
        );
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
