//! Indexing a folder of evaluation artifacts (`assay index`): what each file is, how many
//! entries it holds, its fields, model and a one-line description, with a summary by category
//! and a comparison of prompt formats, written as DATA_MAPPING.md and JSON. Files are
//! recognised by their content; what is not recognised is listed as unknown, never guessed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::ValidateError;

mod markdown;
mod recognise;

pub use markdown::to_markdown;
use recognise::{hf_dataset, json_entry, jsonl_entry, log_entry};

/// The Markdown index's file name.
pub const MARKDOWN_NAME: &str = "DATA_MAPPING.md";
/// The JSON index's file name.
pub const JSON_NAME: &str = "data_mapping.json";

/// What kind of artifact a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Category {
    /// Records with a prompt and a response (assay generate's, or any such JSONL).
    #[serde(rename = "Prompt/response outputs")]
    PromptResponse,
    /// `assay sample` completions.
    #[serde(rename = "Sampled completions")]
    Sampled,
    /// `assay convert`'s unified prompt/response set.
    #[serde(rename = "Unified prompt/response set")]
    Unified,
    /// lm-eval (or assay) results JSON.
    #[serde(rename = "Benchmark results (lm-eval)")]
    LmEvalResults,
    /// lm-eval (or assay) per-sample logs.
    #[serde(rename = "Per-sample logs (lm-eval)")]
    LmEvalSamples,
    /// A benchmark result with per-question details (`{label, accuracy, results: [...]}`).
    #[serde(rename = "Benchmark results")]
    Benchmark,
    /// Aggregated numbers (`summary.json`).
    #[serde(rename = "Benchmark summary")]
    Summary,
    /// A Hugging Face dataset folder.
    #[serde(rename = "Hugging Face dataset")]
    HfDataset,
    /// Text logs.
    #[serde(rename = "Validation/execution logs")]
    Logs,
    /// Markdown notes.
    #[serde(rename = "Documentation")]
    Docs,
    /// Not recognised.
    #[serde(rename = "Unknown")]
    Unknown,
    /// Could not be read or parsed.
    #[serde(rename = "Unreadable")]
    Unreadable,
}

impl Category {
    /// The category's name in the index.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One indexed file (or dataset folder).
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// Path relative to the indexed folder.
    pub path: String,
    /// Records, lines or rows (none for unknown files).
    pub entries: Option<usize>,
    /// The format, with the fields seen.
    pub format: String,
    /// Field names seen, in first-seen order.
    pub fields: Vec<String>,
    /// What it is.
    pub category: Category,
    /// The model it concerns, if known.
    pub model: Option<String>,
    /// Where the model came from: `content` or `path`.
    pub model_source: Option<&'static str>,
    /// `baseline` or `fine-tuned`, from the records or the path.
    pub role: Option<String>,
    /// One sentence with the key numbers.
    pub description: String,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// Per model and prompt format: how the responses look.
#[derive(Debug, Clone, Serialize)]
pub struct FormatRow {
    /// The model.
    pub model: String,
    /// The prompt format (`format` or `mode` field).
    pub format: String,
    /// Responses.
    pub responses: usize,
    /// Mean characters of the responses.
    pub mean_chars: f64,
    /// Mean characters of the reasoning.
    pub mean_reasoning_chars: f64,
    /// Generated tokens per second of generation time, when the records have both.
    pub tokens_per_s: Option<f64>,
    /// Share of responses flagged as refusals, when the records have the flag.
    pub refusal_rate: Option<f64>,
}

/// The index of a folder.
#[derive(Debug, Clone, Serialize)]
pub struct FolderIndex {
    /// The folder.
    pub root: PathBuf,
    /// When it was made (UTC, RFC 3339).
    pub generated: String,
    /// Every file, in path order.
    pub files: Vec<FileEntry>,
    /// The format comparison.
    pub format_comparison: Vec<FormatRow>,
}

/// Per-record numbers of prompt/response files, for the format comparison.
#[derive(Default)]
struct FormatSums {
    responses: usize,
    chars: usize,
    reasoning_chars: usize,
    tokens: f64,
    seconds: f64,
    timed: usize,
    refusals: usize,
    flagged: usize,
}

/// Indexes `root` recursively (hidden entries and the index's own files are skipped; a
/// folder holding `dataset_info.json` and `state.json` is one Hugging Face dataset).
pub fn index_folder(root: &Path, generated: String) -> Result<FolderIndex, ValidateError> {
    let mut files = Vec::new();
    let mut formats: BTreeMap<(String, String), FormatSums> = BTreeMap::new();
    walk(root, root, &mut files, &mut formats)?;
    let format_comparison = formats
        .into_iter()
        .map(|((model, format), s)| FormatRow {
            model,
            format,
            responses: s.responses,
            mean_chars: s.chars as f64 / s.responses.max(1) as f64,
            mean_reasoning_chars: s.reasoning_chars as f64 / s.responses.max(1) as f64,
            tokens_per_s: (s.timed > 0 && s.seconds > 0.0).then(|| s.tokens / s.seconds),
            refusal_rate: (s.flagged > 0).then(|| s.refusals as f64 / s.flagged as f64),
        })
        .collect();
    Ok(FolderIndex {
        root: root.to_path_buf(),
        generated,
        files,
        format_comparison,
    })
}

fn walk(
    root: &Path,
    dir: &Path,
    files: &mut Vec<FileEntry>,
    formats: &mut BTreeMap<(String, String), FormatSums>,
) -> Result<(), ValidateError> {
    let io = |source| ValidateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        if name.starts_with('.') || (dir == root && (name == MARKDOWN_NAME || name == JSON_NAME)) {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            if path.join("dataset_info.json").is_file() && path.join("state.json").is_file() {
                files.push(hf_dataset(&path, rel));
            } else {
                walk(root, &path, files, formats)?;
            }
            continue;
        }
        files.push(index_file(&path, rel, formats));
    }
    Ok(())
}

/// An entry with only the essentials filled in.
fn entry(path: String, category: Category, format: &str, description: String) -> FileEntry {
    FileEntry {
        path,
        entries: None,
        format: format.into(),
        fields: Vec::new(),
        category,
        model: None,
        model_source: None,
        role: None,
        description,
        error: None,
    }
}

fn unreadable(path: String, error: String) -> FileEntry {
    let mut e = entry(
        path,
        Category::Unreadable,
        "-",
        format!("could not be read: {error}"),
    );
    e.error = Some(error);
    e
}

fn index_file(
    path: &Path,
    rel: String,
    formats: &mut BTreeMap<(String, String), FormatSums>,
) -> FileEntry {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return unreadable(rel, e.to_string()),
    };
    let ext = path
        .extension()
        .map_or(String::new(), |e| e.to_string_lossy().to_lowercase());
    let size = bytes.len();
    let text = match (ext.as_str(), String::from_utf8(bytes)) {
        ("jsonl" | "json" | "log" | "txt" | "md", Ok(t)) => t,
        ("jsonl" | "json" | "log" | "txt" | "md", Err(e)) => {
            return unreadable(rel, format!("not UTF-8 text ({e})"))
        }
        _ => {
            return entry(
                rel,
                Category::Unknown,
                &format!("{} bytes", size),
                "not recognised".into(),
            )
        }
    };
    let mut e = match ext.as_str() {
        "jsonl" => match jsonl_entry(&rel, &text, formats) {
            Ok(e) => e,
            Err(error) => return unreadable(rel, error),
        },
        "json" => match serde_json::from_str::<Value>(&text) {
            Ok(v) => json_entry(rel, &v),
            Err(err) => {
                return unreadable(
                    rel.clone(),
                    format!("{rel}:{}: not JSON: {err}", err.line()),
                )
            }
        },
        "md" => {
            let lines = text.lines().count();
            let mut e = entry(
                rel,
                Category::Docs,
                "Markdown",
                format!("{lines} lines of notes"),
            );
            e.entries = Some(lines);
            e
        }
        _ => log_entry(rel, &text),
    };
    if e.model.is_none() {
        e.model = model_from_path(&e.path, e.category);
        e.model_source = e.model.as_ref().map(|_| "path");
    }
    if e.role.is_none() {
        e.role = role_from_path(&e.path);
    }
    e
}

/// The role a path's `data/baseline/…` or `data/fine-tuned/…` segment gives.
fn role_from_path(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    parts
        .iter()
        .find(|p| **p == "baseline" || **p == "fine-tuned")
        .map(|p| p.to_string())
}

/// A model name from the path: the folder under `baseline/` or `fine-tuned/`; for lm-eval
/// results and samples, their folder (lm-eval names it after the model); else the file name
/// without suffixes that name a variant rather than a model.
fn model_from_path(path: &str, category: Category) -> Option<String> {
    let parts: Vec<&str> = path.split(['/', '\\']).collect();
    if let Some(i) = parts
        .iter()
        .position(|p| *p == "baseline" || *p == "fine-tuned")
    {
        if i + 2 < parts.len() {
            return Some(parts[i + 1].to_string());
        }
    }
    match category {
        Category::LmEvalResults | Category::LmEvalSamples => {
            (parts.len() >= 2).then(|| parts[parts.len() - 2].to_string())
        }
        Category::PromptResponse | Category::Logs | Category::Benchmark => {
            let stem = Path::new(parts.last()?)
                .file_stem()?
                .to_string_lossy()
                .into_owned();
            let mut stem = stem.as_str();
            for suffix in [
                "-unsigned",
                "-signed",
                "-validation",
                "_validation",
                "-outputs",
                "-responses",
            ] {
                stem = stem.strip_suffix(suffix).unwrap_or(stem);
            }
            Some(stem.to_string())
        }
        _ => None,
    }
}

/// The value of a string field seen most often (ties: the first seen).
fn most_common<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for v in values {
        match counts.iter_mut().find(|(s, _)| *s == v) {
            Some(c) => c.1 += 1,
            None => counts.push((v, 1)),
        }
    }
    let best = counts.iter().map(|c| c.1).max()?;
    counts.iter().find(|c| c.1 == best).map(|c| c.0.to_string())
}

#[cfg(test)]
mod tests;
