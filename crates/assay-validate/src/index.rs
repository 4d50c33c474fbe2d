//! Indexing a folder of evaluation artifacts (`assay index`): what each file is, how many
//! entries it holds, its fields, model and a one-line description, with a summary by category
//! and a comparison of prompt formats, written as DATA_MAPPING.md and JSON. Files are
//! recognised by their content; what is not recognised is listed as unknown, never guessed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ValidateError;

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

fn jsonl_entry(
    rel: &str,
    text: &str,
    formats: &mut BTreeMap<(String, String), FormatSums>,
) -> Result<FileEntry, String> {
    let mut records: Vec<Map<String, Value>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => records.push(o),
            Ok(_) => return Err(format!("{rel}:{}: not a JSON object", i + 1)),
            Err(e) => return Err(format!("{rel}:{}: not JSON: {e}", i + 1)),
        }
    }
    let mut fields: Vec<String> = Vec::new();
    for r in &records {
        for k in r.keys() {
            if !fields.contains(k) {
                fields.push(k.clone());
            }
        }
    }
    let has = |k: &str| fields.iter().any(|f| f == k);
    let n = records.len();
    let format = format!("JSONL ({})", fields.join(", "));
    let str_of =
        |r: &Map<String, Value>, k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    let response_key = ["response", "output", "completion"]
        .into_iter()
        .find(|k| has(k));
    let (category, description) = if has("prompt_id") && has("generation_idx") && has("completion")
    {
        let prompts = records
            .iter()
            .filter_map(|r| str_of(r, "prompt_id"))
            .collect::<std::collections::HashSet<_>>()
            .len();
        (
            Category::Sampled,
            format!("{n} sampled completions of {prompts} prompts"),
        )
    } else if has("doc_id") && (has("resps") || has("filtered_resps") || has("arguments")) {
        let task = Path::new(rel)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .and_then(|s| {
                s.strip_prefix("samples_").map(|t| {
                    t.rsplit_once('_')
                        .map_or(t.to_string(), |(a, _)| a.to_string())
                })
            })
            .unwrap_or_else(|| "?".into());
        (
            Category::LmEvalSamples,
            format!("{n} per-document records of task {task}"),
        )
    } else if has("prompt") && has("response") && has("metadata") && !has("seed_id") {
        let sources = records
            .iter()
            .filter_map(|r| {
                r.get("metadata")
                    .and_then(|m| m.get("source"))
                    .and_then(Value::as_str)
            })
            .collect::<std::collections::BTreeSet<_>>();
        (
            Category::Unified,
            format!(
                "{n} items from {}",
                sources.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )
    } else if let (true, Some(resp)) = (has("prompt") || has("question"), response_key) {
        let texts: Vec<usize> = records
            .iter()
            .map(|r| {
                r.get("chars")
                    .and_then(Value::as_u64)
                    .map(|c| c as usize)
                    .unwrap_or_else(|| str_of(r, resp).map_or(0, |s| s.chars().count()))
            })
            .collect();
        let mean = texts.iter().sum::<usize>() as f64 / n.max(1) as f64;
        let mut d = format!("{n} responses, mean {mean:.0} chars");
        let format_name = most_common(records.iter().filter_map(|r| {
            r.get("format")
                .or_else(|| r.get("mode"))
                .and_then(Value::as_str)
        }));
        if let Some(f) = &format_name {
            d = format!("{n} responses in format {f}, mean {mean:.0} chars");
        }
        let flagged: Vec<bool> = records
            .iter()
            .filter_map(|r| r.get("is_refusal").and_then(Value::as_bool))
            .collect();
        if !flagged.is_empty() {
            let _ = write!(
                d,
                ", refusal rate {:.1}%",
                100.0 * flagged.iter().filter(|f| **f).count() as f64 / flagged.len() as f64
            );
        }
        let times: Vec<f64> = records
            .iter()
            .filter_map(|r| {
                r.get("gen_time")
                    .or_else(|| r.get("time"))
                    .and_then(Value::as_f64)
            })
            .collect();
        if !times.is_empty() {
            let _ = write!(
                d,
                ", mean {:.1}s per response",
                times.iter().sum::<f64>() / times.len() as f64
            );
        }
        let model = most_common(
            records
                .iter()
                .filter_map(|r| r.get("model").and_then(Value::as_str)),
        );
        for r in &records {
            let m = str_of(r, "model")
                .or_else(|| model.clone())
                .or_else(|| model_from_path(rel, Category::PromptResponse))
                .unwrap_or_else(|| "-".into());
            let Some(f) = str_of(r, "format").or_else(|| str_of(r, "mode")) else {
                continue;
            };
            let s = formats.entry((m, f)).or_default();
            s.responses += 1;
            s.chars += r
                .get("chars")
                .and_then(Value::as_u64)
                .map(|c| c as usize)
                .unwrap_or_else(|| str_of(r, resp).map_or(0, |t| t.chars().count()));
            s.reasoning_chars += r
                .get("reasoning_chars")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            if let (Some(t), Some(secs)) = (
                r.get("tokens").and_then(Value::as_f64),
                r.get("gen_time")
                    .or_else(|| r.get("time"))
                    .and_then(Value::as_f64),
            ) {
                s.tokens += t;
                s.seconds += secs;
                s.timed += 1;
            }
            if let Some(flag) = r.get("is_refusal").and_then(Value::as_bool) {
                s.flagged += 1;
                s.refusals += usize::from(flag);
            }
        }
        let mut e = entry(rel.to_string(), Category::PromptResponse, &format, d);
        e.model = model;
        e.model_source = e.model.as_ref().map(|_| "content");
        e.role = most_common(
            records
                .iter()
                .filter_map(|r| r.get("role").and_then(Value::as_str)),
        );
        e.entries = Some(n);
        e.fields = fields;
        return Ok(e);
    } else {
        (
            Category::Unknown,
            format!("{n} JSONL records; fields not recognised"),
        )
    };
    let mut e = entry(rel.to_string(), category, &format, description);
    e.entries = Some(n);
    e.fields = fields;
    Ok(e)
}

/// Whether a JSON value holds only numbers, text, booleans and nulls in nested objects, with
/// at least one number.
fn is_summary(v: &Value) -> bool {
    fn walk(v: &Value, numbers: &mut usize) -> bool {
        match v {
            Value::Number(_) => {
                *numbers += 1;
                true
            }
            Value::String(_) | Value::Bool(_) | Value::Null => true,
            Value::Object(o) => o.values().all(|x| walk(x, numbers)),
            Value::Array(_) => false,
        }
    }
    let mut numbers = 0;
    v.is_object() && walk(v, &mut numbers) && numbers > 0
}

fn json_entry(rel: String, v: &Value) -> FileEntry {
    let obj = v.as_object();
    let keys: Vec<String> = obj.map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let get = |k: &str| obj.and_then(|o| o.get(k));
    if let (Some(Value::Object(results)), true) = (
        get("results"),
        get("versions").is_some() || get("config").is_some() || get("configs").is_some(),
    ) {
        let mut parts = Vec::new();
        for (task, metrics) in results {
            let Some(m) = metrics.as_object() else {
                continue;
            };
            // lm-eval 0.4's metric keys are `metric,filter` (0.3's bare names); counts such as
            // `sample_len` are not metrics.
            let metric_like = |k: &str| !k.contains("_stderr") && k != "sample_len";
            let main = m
                .iter()
                .find(|(k, v)| k.contains(',') && metric_like(k) && v.is_number())
                .or_else(|| m.iter().find(|(k, v)| metric_like(k) && v.is_number()));
            if let Some((k, val)) = main {
                let metric = k.split(',').next().unwrap_or(k);
                let stderr = m
                    .get(&k.replacen(metric, &format!("{metric}_stderr"), 1))
                    .and_then(Value::as_f64);
                parts.push(match stderr {
                    Some(s) => format!(
                        "{task} {metric} {:.3} ± {s:.3}",
                        val.as_f64().unwrap_or(f64::NAN)
                    ),
                    None => format!("{task} {metric} {:.3}", val.as_f64().unwrap_or(f64::NAN)),
                });
            }
        }
        let mut e = entry(
            rel,
            Category::LmEvalResults,
            "JSON (lm-eval results)",
            parts.join("; "),
        );
        e.entries = Some(results.len());
        e.fields = keys;
        let pretrained = get("config")
            .and_then(|c| c.get("model_args"))
            .and_then(|a| match a {
                Value::String(s) => s
                    .split(',')
                    .find_map(|p| p.strip_prefix("pretrained="))
                    .map(str::to_string),
                Value::Object(o) => o
                    .get("pretrained")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            });
        e.model = get("model_name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(pretrained)
            .map(|m| {
                Path::new(&m)
                    .file_stem()
                    .map_or(m.clone(), |s| s.to_string_lossy().into_owned())
            });
        e.model_source = e.model.as_ref().map(|_| "content");
        return e;
    }
    if let Some(Value::Array(results)) = get("results") {
        let correct = get("correct").and_then(Value::as_u64);
        let total = get("total")
            .and_then(Value::as_u64)
            .unwrap_or(results.len() as u64);
        let mut d = format!("{} per-question results", results.len());
        if let Some(acc) = get("accuracy").and_then(Value::as_f64) {
            d = format!(
                "accuracy {acc}% ({}/{total}), {} per-question results",
                correct.map_or("?".into(), |c| c.to_string()),
                results.len()
            );
        }
        for (k, v) in keys.iter().filter_map(|k| Some((k, get(k)?))) {
            if k.ends_with("_rate") {
                if let Some(x) = v.as_f64() {
                    let _ = write!(d, ", {k} {x}");
                }
            }
        }
        let mut e = entry(
            rel,
            Category::Benchmark,
            "JSON (object with an array of result objects)",
            d,
        );
        e.entries = Some(results.len());
        e.fields = keys;
        e.model = get("label")
            .or_else(|| get("model"))
            .and_then(Value::as_str)
            .map(str::to_string);
        e.model_source = e.model.as_ref().map(|_| "content");
        return e;
    }
    if is_summary(v) {
        let mut e = entry(
            rel,
            Category::Summary,
            "JSON (aggregated numbers)",
            format!("aggregated values under {}", keys.join(", ")),
        );
        e.entries = Some(1);
        e.fields = keys;
        return e;
    }
    let shape = match v {
        Value::Array(a) => format!("JSON (array of {} values)", a.len()),
        Value::Object(_) => "JSON (object)".into(),
        _ => "JSON (scalar)".into(),
    };
    let mut e = entry(
        rel,
        Category::Unknown,
        &shape,
        "JSON; structure not recognised".into(),
    );
    e.fields = keys;
    e
}

/// Whether a log line reports a timing (a number followed by `s`) or a character count.
fn is_timing_line(line: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .any(|w| {
            w.strip_suffix('s')
                .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok())
                || w == "chars"
        })
}

fn log_entry(rel: String, text: &str) -> FileEntry {
    let lines = text.lines().count();
    let timed = text.lines().filter(|l| is_timing_line(l)).count();
    let warnings = text
        .lines()
        .filter(|l| l.to_lowercase().contains("warning"))
        .count();
    let mut e = entry(
        rel,
        Category::Logs,
        "Text log",
        format!("{lines} lines, {timed} with timings or character counts, {warnings} warnings"),
    );
    e.entries = Some(lines);
    e
}

fn hf_dataset(dir: &Path, rel: String) -> FileEntry {
    let info: Option<Value> = std::fs::read_to_string(dir.join("dataset_info.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let Some(info) = info else {
        return unreadable(rel, "dataset_info.json is not readable JSON".into());
    };
    let fields: Vec<String> = info
        .get("features")
        .and_then(Value::as_object)
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    let rows = info.get("splits").and_then(Value::as_object).map(|s| {
        s.values()
            .filter_map(|x| x.get("num_examples").and_then(Value::as_u64))
            .sum::<u64>() as usize
    });
    let mut e = entry(
        rel,
        Category::HfDataset,
        &format!("Hugging Face dataset ({})", fields.join(", ")),
        match rows {
            Some(r) => format!("{r} rows"),
            None => "rows not recorded in dataset_info.json".into(),
        },
    );
    e.entries = rows;
    e.fields = fields;
    e
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The index as Markdown: the files table, a summary by category, the format comparison, and
/// the unreadable or unknown files with the reasons.
pub fn to_markdown(index: &FolderIndex) -> String {
    let name = index
        .root
        .file_name()
        .map_or(index.root.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        });
    let mut md = format!(
        "# Data mapping: {name}\n\nGenerated: {} by assay index\n\n## Files\n\n",
        index.generated
    );
    md.push_str(
        "| File | Entries | Format | Category | Model | Description |\n|---|---|---|---|---|---|\n",
    );
    for f in &index.files {
        let model = match (&f.model, &f.role) {
            (Some(m), Some(r)) => format!("{m} ({r})"),
            (Some(m), None) => m.clone(),
            _ => "-".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&f.path),
            f.entries.map_or("-".into(), |n| n.to_string()),
            cell(&f.format),
            f.category.name(),
            cell(&model),
            cell(&f.description)
        );
    }
    md.push_str(
        "\n## Summary by category\n\n| Category | Files | Entries | Models |\n|---|---|---|---|\n",
    );
    let mut by: BTreeMap<Category, (usize, usize, Vec<String>)> = BTreeMap::new();
    for f in &index.files {
        let c = by.entry(f.category).or_default();
        c.0 += 1;
        c.1 += f.entries.unwrap_or(0);
        if let Some(m) = &f.model {
            if !c.2.contains(m) {
                c.2.push(m.clone());
            }
        }
    }
    for (cat, (files, entries, models)) in &by {
        let _ = writeln!(
            md,
            "| {} | {files} | {entries} | {} |",
            cat.name(),
            cell(&models.join(", "))
        );
    }
    if !index.format_comparison.is_empty() {
        md.push_str("\n## Format comparison\n\n| Model | Format | Responses | Mean chars | Mean reasoning chars | Tokens/s | Refusal rate |\n|---|---|---|---|---|---|---|\n");
        for r in &index.format_comparison {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {:.0} | {} | {} |",
                cell(&r.model),
                cell(&r.format),
                r.responses,
                r.mean_chars,
                r.mean_reasoning_chars,
                r.tokens_per_s.map_or("-".into(), |t| format!("{t:.1}")),
                r.refusal_rate
                    .map_or("-".into(), |x| format!("{:.1}%", 100.0 * x))
            );
        }
    }
    let odd: Vec<&FileEntry> = index
        .files
        .iter()
        .filter(|f| matches!(f.category, Category::Unknown | Category::Unreadable))
        .collect();
    if !odd.is_empty() {
        md.push_str("\n## Unreadable or unknown files\n\n");
        for f in odd {
            let _ = writeln!(
                md,
                "- `{}`: {}",
                f.path,
                f.error.as_deref().unwrap_or(&f.description)
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn record(
        model: &str,
        format: &str,
        chars: usize,
        tokens: u32,
        secs: f64,
        refusal: bool,
    ) -> String {
        serde_json::json!({"seed_id": "P01", "model": model, "role": "baseline", "format": format,
            "prompt": "p", "response": "r".repeat(chars), "reasoning": null, "chars": chars,
            "reasoning_chars": 0, "tokens": tokens, "gen_time": secs, "is_refusal": refusal})
        .to_string()
            + "\n"
    }

    #[test]
    fn recognises_each_kind_and_reports_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "data/baseline/base/naked.jsonl",
            &(record("base", "naked", 100, 10, 1.0, false)
                + &record("base", "naked", 300, 30, 2.0, true)),
        );
        write(root, "old-1b-unsigned.jsonl", "{\"seed_id\": \"P01\", \"prompt\": \"q\", \"response\": \"abcd\", \"gen_time\": 2.5}\n");
        write(
            root,
            "benchmarks/arith-base.json",
            r#"{"label": "BASE", "accuracy": 50.0, "correct": 1, "total": 2, "avg_time": 0.4, "results": [{"question": "1+1", "gold": "2", "predicted": "2", "correct": true}, {"question": "2+2", "gold": "4", "predicted": "5", "correct": false}]}"#,
        );
        write(
            root,
            "benchmarks/summary.json",
            r#"{"arith": {"base": {"accuracy": 50.0}, "lem": {"accuracy": 0.0}}}"#,
        );
        write(
            root,
            "runs/m1/results_2026.json",
            r#"{"results": {"arc_easy": {"alias": "arc_easy", "sample_len": 40, "acc,none": 0.55, "acc_stderr,none": 0.035}}, "versions": {"arc_easy": 1.0}, "config": {"model_args": "pretrained=/models/m1.gguf"}}"#,
        );
        write(root, "runs/m1/samples_arc_easy_2026.jsonl", "{\"doc_id\": 0, \"doc\": {}, \"target\": 1, \"resps\": [], \"filtered_resps\": [], \"acc\": 1.0}\n");
        write(
            root,
            "logs/base.log",
            "loading\nP01: 13.9s, 1200 chars\nwarning: slow\n",
        );
        write(root, "broken.jsonl", "{\"a\": 1}\n{not json\n");
        write(root, "blob.bin", "\u{1}\u{2}");
        write(
            root,
            "ds/dataset_info.json",
            r#"{"features": {"id": {}, "input_ids": {}}, "splits": {"train": {"num_examples": 3}}}"#,
        );
        write(root, "ds/state.json", "{}");
        write(root, "ds/data-00000-of-00001.arrow", "x");
        let index = index_folder(root, "now".into()).unwrap();
        let by = |p: &str| {
            index
                .files
                .iter()
                .find(|f| f.path == p)
                .unwrap_or_else(|| panic!("{p}: {:?}", index.files))
        };
        let gen = by("data/baseline/base/naked.jsonl");
        assert_eq!(
            (
                gen.category,
                gen.entries,
                gen.model.as_deref(),
                gen.role.as_deref()
            ),
            (
                Category::PromptResponse,
                Some(2),
                Some("base"),
                Some("baseline")
            )
        );
        assert!(
            gen.description
                .contains("format naked, mean 200 chars, refusal rate 50.0%"),
            "{}",
            gen.description
        );
        let old = by("old-1b-unsigned.jsonl");
        assert_eq!(
            (old.model.as_deref(), old.model_source),
            (Some("old-1b"), Some("path"))
        );
        assert_eq!(old.format, "JSONL (seed_id, prompt, response, gen_time)");
        let bench = by("benchmarks/arith-base.json");
        assert_eq!(
            (bench.category, bench.entries, bench.model.as_deref()),
            (Category::Benchmark, Some(2), Some("BASE"))
        );
        assert!(
            bench.description.starts_with("accuracy 50% (1/2)"),
            "{}",
            bench.description
        );
        assert_eq!(by("benchmarks/summary.json").category, Category::Summary);
        let res = by("runs/m1/results_2026.json");
        assert_eq!(
            (res.category, res.model.as_deref()),
            (Category::LmEvalResults, Some("m1"))
        );
        assert_eq!(res.description, "arc_easy acc 0.550 ± 0.035");
        let samples = by("runs/m1/samples_arc_easy_2026.jsonl");
        assert_eq!(
            (samples.category, samples.description.as_str()),
            (
                Category::LmEvalSamples,
                "1 per-document records of task arc_easy"
            )
        );
        let log = by("logs/base.log");
        assert_eq!((log.category, log.entries), (Category::Logs, Some(3)));
        assert!(
            log.description.contains("1 with timings") && log.description.contains("1 warnings")
        );
        let broken = by("broken.jsonl");
        assert_eq!(broken.category, Category::Unreadable);
        assert!(
            broken
                .error
                .as_deref()
                .unwrap()
                .starts_with("broken.jsonl:2: not JSON"),
            "{:?}",
            broken.error
        );
        assert_eq!(by("blob.bin").category, Category::Unknown);
        let ds = by("ds");
        assert_eq!((ds.category, ds.entries), (Category::HfDataset, Some(3)));
        assert!(!index.files.iter().any(|f| f.path.starts_with("ds/")));
        // 30+10 tokens over 3 s; one of two flagged.
        let row = &index.format_comparison[0];
        assert_eq!(
            (row.model.as_str(), row.format.as_str(), row.responses),
            ("base", "naked", 2)
        );
        assert_eq!(
            (row.mean_chars, row.tokens_per_s, row.refusal_rate),
            (200.0, Some(40.0 / 3.0), Some(0.5))
        );
        let md = to_markdown(&index);
        assert!(
            md.contains("| base | naked | 2 | 200 | 0 | 13.3 | 50.0% |"),
            "{md}"
        );
        assert!(
            md.contains("- `broken.jsonl`: broken.jsonl:2: not JSON"),
            "{md}"
        );
        assert!(md.contains("| Unreadable | 1 | 0 |"), "{md}");
    }
}
