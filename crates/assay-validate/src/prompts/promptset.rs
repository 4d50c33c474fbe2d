//! Prompt sets run through models and formats (`assay generate`): the prompts file, and the
//! response records written per model and format.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::grading::completions::{prompt_id, prompt_of, read_for_resume};
use crate::unified::for_each_json_line;
use crate::ValidateError;

/// One prompt of a prompt set.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedPrompt {
    /// Its id: the file's `seed_id` (or `id`), else the 16-hex hash of the prompt.
    pub seed_id: String,
    /// The prompt.
    pub prompt: String,
}

/// A prompts file read leniently: the usable prompts, and the lines refused (duplicate ids,
/// empty prompts, lines that are not JSON objects), each naming the file and line.
#[derive(Debug, Default)]
pub struct PromptSet {
    /// The prompts, in file order.
    pub prompts: Vec<SeedPrompt>,
    /// The refused lines.
    pub problems: Vec<ValidateError>,
}

/// Reads a JSONL prompts file: `{"seed_id": …, "prompt": …}` per line (`id` and `text` are
/// accepted too). A bad line is reported and skipped; a second line with an id already seen is
/// refused (the first is kept). An unreadable file, or one without any usable prompt, is an
/// error.
pub fn read_prompt_set(path: &Path) -> Result<PromptSet, ValidateError> {
    let mut set = PromptSet::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for_each_json_line(path, |line, v| {
        let problem = (|| {
            let (obj, text) = prompt_of(&v)?;
            let seed_id = match obj.get("seed_id").or_else(|| obj.get("id")) {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                Some(Value::Number(n)) => n.to_string(),
                Some(other) => return Err(format!("`seed_id` {other} is not a usable id")),
                None => prompt_id(text),
            };
            if let Some(first) = seen.get(&seed_id) {
                return Err(format!(
                    "seed_id `{seed_id}` is already used on line {first}; this line is skipped"
                ));
            }
            seen.insert(seed_id.clone(), line);
            set.prompts.push(SeedPrompt {
                seed_id,
                prompt: text.to_string(),
            });
            Ok(())
        })();
        if let Err(message) = problem {
            set.problems.push(ValidateError::BadItem {
                path: path.to_path_buf(),
                line,
                message,
            });
        }
        Ok(())
    })?;
    if set.prompts.is_empty() {
        return Err(ValidateError::BadItem {
            path: path.to_path_buf(),
            line: 0,
            message: "no usable prompts".into(),
        });
    }
    Ok(set)
}

/// Baseline or fine-tuned: where a model's outputs go (`data/baseline/…`, `data/fine-tuned/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A model before fine-tuning.
    Baseline,
    /// A fine-tuned model.
    FineTuned,
}

impl Role {
    /// The folder name under `data/`.
    pub fn folder(self) -> &'static str {
        match self {
            Role::Baseline => "baseline",
            Role::FineTuned => "fine-tuned",
        }
    }
}

/// One response of a model to a prompt in a format: a line of `assay generate`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// The prompt's id.
    pub seed_id: String,
    /// The model's label.
    pub model: String,
    /// Baseline or fine-tuned.
    pub role: Role,
    /// The format's name.
    pub format: String,
    /// The prompt as in the prompts file (before the format wrapped it).
    pub prompt: String,
    /// The answer, with any reasoning taken out.
    pub response: String,
    /// The reasoning (`<think>` blocks, harmony analysis channel), if any.
    pub reasoning: Option<String>,
    /// Characters of the response.
    pub chars: usize,
    /// Characters of the reasoning.
    pub reasoning_chars: usize,
    /// Tokens generated (reasoning included).
    pub tokens: usize,
    /// Seconds from request to answer.
    pub gen_time: f64,
    /// `tokens / gen_time`.
    pub tokens_per_s: f64,
    /// What the refusal detector said.
    pub is_refusal: bool,
    /// The refusal phrase found, if any.
    pub refusal_phrase: Option<String>,
    /// Why generation stopped (`stop`, `max_tokens`, ...).
    pub stop: String,
}

/// The seed ids already answered in an output file (a last line cut by a kill is removed
/// first, as when resuming `assay sample`). A missing file has none.
pub fn answered_ids(path: &Path) -> Result<HashSet<String>, ValidateError> {
    Ok(
        read_for_resume::<ResponseRecord>(path, "a response line of `assay generate`")?
            .into_iter()
            .map(|r| r.seed_id)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_reported_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(
            &path,
            concat!(
                "{\"seed_id\": \"P01_A\", \"prompt\": \"First?\"}\n",
                "{\"seed_id\": \"P02_B\", \"prompt\": \"  \"}\n",
                "{\"seed_id\": \"P01_A\", \"prompt\": \"Again?\"}\n",
                "[1]\n",
                "{\"prompt\": \"No id?\"}\n",
            ),
        )
        .unwrap();
        let set = read_prompt_set(&path).unwrap();
        assert_eq!(set.prompts.len(), 2);
        assert_eq!(set.prompts[1].seed_id, prompt_id("No id?"));
        let problems: Vec<String> = set.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            problems[0].ends_with("p.jsonl:2: the prompt is empty"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("p.jsonl:3: seed_id `P01_A` is already used on line 1"),
            "{problems:?}"
        );
        assert!(
            problems[2].contains("p.jsonl:4: expected a JSON object"),
            "{problems:?}"
        );
        std::fs::write(&path, "{\"prompt\": \"\"}\n").unwrap();
        assert!(read_prompt_set(&path)
            .unwrap_err()
            .to_string()
            .contains("no usable prompts"));
    }
}
