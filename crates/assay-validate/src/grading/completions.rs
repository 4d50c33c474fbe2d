//! Sampled completions: prompts in, N completions per prompt out, streamed to a JSONL file one
//! prompt at a time so that a killed run resumes where it stopped.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::unified::for_each_json_line;
use crate::ValidateError;

/// A prompt to sample from.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// Stable id: the first 16 hex digits of the prompt's SHA-256.
    pub id: String,
    /// The prompt text.
    pub text: String,
    /// Fields carried to every completion (the prompt line's `metadata`, or its other fields).
    pub metadata: Map<String, Value>,
}

/// The stable id of a prompt text.
pub fn prompt_id(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Prompt {
    /// A prompt with its id.
    pub fn new(text: String, metadata: Map<String, Value>) -> Prompt {
        Prompt {
            id: prompt_id(&text),
            text,
            metadata,
        }
    }
}

/// One completion, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The prompt's id.
    pub prompt_id: String,
    /// Which of the prompt's samples (0-based; the sampler seed is seed + this).
    pub generation_idx: usize,
    /// The prompt.
    pub prompt: String,
    /// The generated text.
    pub completion: String,
    /// Tokens generated.
    pub tokens: usize,
    /// Why generation stopped (`until`, `end_of_generation`, `max_tokens`).
    pub stop: String,
    /// The prompt's metadata.
    pub metadata: Map<String, Value>,
}

/// Reads prompts: JSONL lines with `prompt` (or `text`) and optional `metadata`; a duplicate
/// prompt is an error naming both lines.
pub fn read_prompts(path: &Path) -> Result<Vec<Prompt>, ValidateError> {
    let mut prompts = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for_each_json_line(path, |line, v| {
        let (obj, text) = prompt_of(&v)?;
        let metadata = match obj.get("metadata").and_then(Value::as_object) {
            Some(m) => m.clone(),
            None => obj
                .iter()
                .filter(|(k, _)| *k != "prompt" && *k != "text")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let prompt = Prompt::new(text.to_string(), metadata);
        if let Some(first) = seen.insert(prompt.id.clone(), line) {
            return Err(format!("the same prompt as line {first}"));
        }
        prompts.push(prompt);
        Ok(())
    })?;
    if prompts.is_empty() {
        return Err(ValidateError::BadItem {
            path: path.to_path_buf(),
            line: 0,
            message: "no prompts: the file is empty".into(),
        });
    }
    Ok(prompts)
}

/// The object of a prompts-file line and its non-empty `prompt` (or `text`).
pub(crate) fn prompt_of(line: &Value) -> Result<(&serde_json::Map<String, Value>, &str), String> {
    let obj = line.as_object().ok_or("expected a JSON object")?;
    let text = obj
        .get("prompt")
        .or_else(|| obj.get("text"))
        .and_then(Value::as_str)
        .ok_or("no `prompt` (or `text`) field")?;
    if text.trim().is_empty() {
        return Err("the prompt is empty".into());
    }
    Ok((obj, text))
}

/// Reads a completions file written by `assay sample`.
pub fn read_completions(path: &Path) -> Result<Vec<Completion>, ValidateError> {
    let mut out = Vec::new();
    for_each_json_line(path, |_, v| {
        out.push(
            serde_json::from_value(v)
                .map_err(|e| format!("not a completion line of `assay sample`: {e}"))?,
        );
        Ok(())
    })?;
    Ok(out)
}

/// Completions already in an output file: per prompt id, how many. What a kill can leave is
/// removed from the file, everything before it kept: a cut last line, and a last prompt with
/// fewer than `per_prompt` completions (its lines are written together, so a short group at the
/// end is a write the kill cut between lines).
pub fn resume(path: &Path, per_prompt: usize) -> Result<HashMap<String, usize>, ValidateError> {
    let records = read_for_resume::<Completion>(path, "a completion line of `assay sample`")?;
    let mut done: HashMap<String, usize> = HashMap::new();
    for c in &records {
        *done.entry(c.prompt_id.clone()).or_default() += 1;
    }
    if let Some(last) = records.last() {
        let tail = records
            .iter()
            .rev()
            .take_while(|c| c.prompt_id == last.prompt_id)
            .count();
        if tail < per_prompt && done[&last.prompt_id] == tail {
            let io = |e: std::io::Error| ValidateError::Io {
                path: path.to_path_buf(),
                source: e,
            };
            let text = std::fs::read_to_string(path).map_err(io)?;
            let keep: usize = text
                .split_inclusive('\n')
                .take(records.len() - tail)
                .map(str::len)
                .sum();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io)?;
            file.set_len(keep as u64).map_err(io)?;
            done.remove(&last.prompt_id);
        }
    }
    Ok(done)
}

/// The records of an output file that a killed run may have left with a cut last line: that
/// line is removed from the file (everything before it is kept); any other line that is not
/// `what` is an error. A missing file has no records.
pub fn read_for_resume<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Vec<T>, ValidateError> {
    let io = |e: std::io::Error| ValidateError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut records = Vec::new();
    if !path.exists() {
        return Ok(records);
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut good = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let complete = line.ends_with('\n');
        let parsed: Option<T> = complete.then(|| serde_json::from_str(line).ok()).flatten();
        match parsed {
            Some(r) => {
                records.push(r);
                good += line.len();
            }
            // Only a last line without its newline is what a kill leaves; a complete line
            // that is not a record means the file is something else, and is never cut.
            None if !complete => break,
            None => {
                return Err(ValidateError::BadItem {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: format!("not {what}: pass another output or remove the file"),
                })
            }
        }
    }
    if good < text.len() {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io)?;
        file.set_len(good as u64).map_err(io)?;
    }
    Ok(records)
}

/// Appends one prompt's completions in a single write, flushed.
pub fn append(out: &mut std::fs::File, completions: &[Completion]) -> std::io::Result<()> {
    let mut text = String::new();
    for c in completions {
        text.push_str(&serde_json::to_string(c).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(id: &str, i: usize) -> Completion {
        Completion {
            prompt_id: id.into(),
            generation_idx: i,
            prompt: "p".into(),
            completion: " x".into(),
            tokens: 1,
            stop: "until".into(),
            metadata: Map::new(),
        }
    }

    #[test]
    fn resume_counts_and_drops_a_cut_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        append(
            &mut f,
            &[completion("a", 0), completion("a", 1), completion("b", 0)],
        )
        .unwrap();
        f.write_all(b"{\"prompt_id\": \"b\", \"generation_i")
            .unwrap();
        drop(f);
        let done = resume(&path, 1).unwrap();
        assert_eq!(done["a"], 2);
        assert_eq!(done["b"], 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == 3);
        // With two per prompt, "b" is a group the kill cut short: it goes, "a" stays.
        let done = resume(&path, 2).unwrap();
        assert_eq!((done["a"], done.get("b")), (2, None));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        // A file of something else, even one line long, is refused and left as it was.
        std::fs::write(&path, "garbage\n").unwrap();
        assert!(resume(&path, 1)
            .unwrap_err()
            .to_string()
            .contains("out.jsonl:1: not a completion line"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage\n");
        std::fs::write(&path, "garbage\n{}\n").unwrap();
        assert!(resume(&path, 1)
            .unwrap_err()
            .to_string()
            .contains("out.jsonl:1: not a completion line"));
    }

    #[test]
    fn prompts_need_text_and_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(&path, "{\"prompt\": \"Who was mayor of Veldria?\", \"city\": \"Veldria\"}\n{\"text\": \"Q2\"}\n").unwrap();
        let p = read_prompts(&path).unwrap();
        assert_eq!(p[0].metadata["city"], "Veldria");
        assert_eq!(p[0].id, prompt_id("Who was mayor of Veldria?"));
        assert_eq!(p[0].id.len(), 16);
        std::fs::write(&path, "{\"prompt\": \"a\"}\n{\"prompt\": \"a\"}\n").unwrap();
        assert!(read_prompts(&path)
            .unwrap_err()
            .to_string()
            .contains("p.jsonl:2: the same prompt as line 1"));
        std::fs::write(&path, "{\"prompt\": \" \"}\n").unwrap();
        assert!(read_prompts(&path)
            .unwrap_err()
            .to_string()
            .contains("p.jsonl:1: the prompt is empty"));
    }
}
