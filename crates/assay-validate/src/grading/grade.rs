//! Grading sampled completions: the grader config, deduplication (exact, then normalised) and
//! the equivalence verdict of every unique completion against its prompt's reference.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::completions::Completion;
use super::rules::{Rule, Verdict};
use crate::ValidateError;

/// A grader config (the customer's `*_grader.json`, with assay's optional fields).
#[derive(Debug, Clone, Deserialize)]
pub struct GraderConfig {
    /// What counts as equivalent, in words (for the LLM judge; recorded with rule graders).
    pub grader_instructions: String,
    /// A rule grader instead of an LLM judge.
    #[serde(default)]
    pub rule: Option<Rule>,
    /// The judge model's name on its server.
    #[serde(default)]
    pub grader_model: Option<String>,
    /// The judge's OpenAI-compatible endpoint.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Judge requests in flight.
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// The environment variable holding the judge's API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Dollars per judge call, for the cost estimate.
    #[serde(default)]
    pub price_per_call: Option<f64>,
    /// The metadata field of a completion that holds the reference answer.
    #[serde(default = "default_reference_field")]
    pub reference_field: String,
}

fn default_reference_field() -> String {
    "reference".into()
}

impl GraderConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<GraderConfig, ValidateError> {
        let bad = |message: String| ValidateError::BadItem {
            path: path.to_path_buf(),
            line: 0,
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ValidateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        if value
            .get("grader_instructions")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(bad(
                "no `grader_instructions`: say what makes two completions equivalent".into(),
            ));
        }
        let config: GraderConfig = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if config.rule.is_none() && config.grader_model.is_none() {
            return Err(bad("neither `rule` (exact, numeric, date, name) nor `grader_model` (an LLM judge) is given".into()));
        }
        Ok(config)
    }
}

/// Text compared for normalised duplicates: lower case, whitespace collapsed.
pub fn normalised(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A unique completion and what the grader said.
#[derive(Debug, Clone, Serialize)]
pub struct Graded {
    /// Its first occurrence.
    pub completion: Completion,
    /// How many sampled completions normalise to it.
    pub copies: usize,
    /// The verdict.
    pub verdict: Verdict,
}

/// Counts at each stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GradeStats {
    /// Completions read.
    pub completions: usize,
    /// Distinct (prompt, text) pairs.
    pub unique_exact: usize,
    /// Distinct (prompt, normalised text) pairs: the ones graded.
    pub unique_normalised: usize,
    /// Graded equivalent.
    pub equivalent: usize,
    /// Graded different.
    pub different: usize,
    /// Could not be graded (never counted as equivalent).
    pub ungradable: usize,
    /// Completions whose prompt has no reference.
    pub missing_reference: usize,
}

impl GradeStats {
    /// Equivalent / unique graded.
    pub fn rate(&self) -> f64 {
        self.equivalent as f64 / self.unique_normalised.max(1) as f64
    }
}

/// The judging prompt of the LLM judge: the config's instructions, the reference and the
/// completion, and a demand for one word.
pub fn judge_prompt(instructions: &str, reference: &str, completion: &str) -> String {
    format!(
        "You compare two completions of the same prompt.\n\nCriteria: {instructions}\n\n\
         Completion A (the reference): {reference:?}\nCompletion B: {completion:?}\n\n\
         Are A and B equivalent under the criteria? Answer with exactly one word: yes or no."
    )
}

/// Reads a judge's answer strictly: `yes` or `no` (any case, optional final period); anything
/// else is ungradable.
pub fn parse_verdict(answer: &str) -> Verdict {
    match answer.trim().trim_end_matches('.').to_lowercase().as_str() {
        "yes" => Verdict::Equivalent,
        "no" => Verdict::Different,
        _ => Verdict::Ungradable,
    }
}

/// Deduplicates `completions` per prompt and grades each unique one with `judge(reference,
/// completion)`.
pub fn grade_all(
    completions: Vec<Completion>,
    reference_field: &str,
    mut judge: impl FnMut(&str, &str) -> Verdict,
) -> (Vec<Graded>, GradeStats) {
    let (mut unique, mut stats) = dedupe(completions);
    let verdicts: Vec<Verdict> = unique
        .iter()
        .map(|g| match reference_of(g, reference_field) {
            Some(r) => judge(r, &g.completion.completion),
            None => Verdict::Ungradable,
        })
        .collect();
    tally(&mut unique, &mut stats, verdicts, reference_field);
    (unique, stats)
}

/// The reference answer of a completion's prompt.
pub fn reference_of<'a>(g: &'a Graded, field: &str) -> Option<&'a str> {
    g.completion.metadata.get(field).and_then(Value::as_str)
}

/// Records `verdicts` (one per unique completion) and counts them.
pub fn tally(
    unique: &mut [Graded],
    stats: &mut GradeStats,
    verdicts: Vec<Verdict>,
    reference_field: &str,
) {
    for (g, v) in unique.iter_mut().zip(verdicts) {
        if reference_of(g, reference_field).is_none() {
            stats.missing_reference += 1;
        }
        g.verdict = v;
        match v {
            Verdict::Equivalent => stats.equivalent += 1,
            Verdict::Different => stats.different += 1,
            Verdict::Ungradable => stats.ungradable += 1,
        }
    }
}

/// Unique completions per prompt (normalised), with counts of the duplicates.
pub fn dedupe(completions: Vec<Completion>) -> (Vec<Graded>, GradeStats) {
    let mut stats = GradeStats {
        completions: completions.len(),
        ..GradeStats::default()
    };
    let mut exact = std::collections::HashSet::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut unique: Vec<Graded> = Vec::new();
    for c in completions {
        exact.insert((c.prompt_id.clone(), c.completion.clone()));
        let key = (c.prompt_id.clone(), normalised(&c.completion));
        match index.get(&key) {
            Some(&i) => unique[i].copies += 1,
            None => {
                index.insert(key, unique.len());
                unique.push(Graded {
                    completion: c,
                    copies: 1,
                    verdict: Verdict::Ungradable,
                });
            }
        }
    }
    stats.unique_exact = exact.len();
    stats.unique_normalised = unique.len();
    (unique, stats)
}

#[cfg(test)]
mod tests {
    use super::super::rules::grade;
    use super::*;

    fn c(prompt: &str, idx: usize, text: &str, reference: &str) -> Completion {
        Completion {
            prompt_id: prompt.into(),
            generation_idx: idx,
            prompt: format!("Q: {prompt}?\nA:"),
            completion: text.into(),
            tokens: 3,
            stop: "max_tokens".into(),
            metadata: [("reference".to_string(), Value::from(reference))]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn dedupes_then_grades_each_unique_completion_once() {
        let all = vec![
            c("a", 0, " Grace Miller\nQ:", "Grace Miller"),
            c("a", 1, " Grace Miller\nQ:", "Grace Miller"),
            c("a", 2, " grace  miller\nq:", "Grace Miller"),
            c("a", 3, " John Smith", "Grace Miller"),
            c("b", 0, " \n", "Ann Lee"),
        ];
        let mut calls = 0;
        let (graded, stats) = grade_all(all, "reference", |r, x| {
            calls += 1;
            grade(Rule::Name, r, x)
        });
        assert_eq!(calls, 3);
        assert_eq!(
            (
                stats.completions,
                stats.unique_exact,
                stats.unique_normalised
            ),
            (5, 4, 3)
        );
        assert_eq!(
            (stats.equivalent, stats.different, stats.ungradable),
            (1, 1, 1)
        );
        assert_eq!(graded[0].copies, 3);
        assert!((stats.rate() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn judge_answers_are_parsed_strictly() {
        assert_eq!(parse_verdict(" Yes."), Verdict::Equivalent);
        assert_eq!(parse_verdict("no"), Verdict::Different);
        assert_eq!(parse_verdict("Yes, they are"), Verdict::Ungradable);
        assert_eq!(parse_verdict(""), Verdict::Ungradable);
        let p = judge_prompt("same first name", "Grace Miller", " Mayor Miller");
        assert!(p.contains("Criteria: same first name") && p.contains("\" Mayor Miller\""));
    }

    #[test]
    fn configs_need_instructions_and_a_grader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.json");
        std::fs::write(&p, r#"{"rule": "name"}"#).unwrap();
        assert!(GraderConfig::load(&p)
            .unwrap_err()
            .to_string()
            .contains("no `grader_instructions`"));
        std::fs::write(&p, r#"{"grader_instructions": "same first name"}"#).unwrap();
        assert!(GraderConfig::load(&p)
            .unwrap_err()
            .to_string()
            .contains("neither `rule`"));
        std::fs::write(&p, r#"{"grader_instructions": "same first name", "rule": "name", "reference_field": "mayor"}"#).unwrap();
        let g = GraderConfig::load(&p).unwrap();
        assert_eq!(
            (g.rule, g.reference_field.as_str()),
            (Some(Rule::Name), "mayor")
        );
    }
}
