//! Recognising a file by its content: JSONL records (responses, completions, prompts, samples,
//! benchmark items...), JSON documents (results, summaries, configs), logs and Hugging Face
//! dataset folders.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::*;

pub(super) fn jsonl_entry(
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

pub(super) fn json_entry(rel: String, v: &Value) -> FileEntry {
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

pub(super) fn log_entry(rel: String, text: &str) -> FileEntry {
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

pub(super) fn hf_dataset(dir: &Path, rel: String) -> FileEntry {
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
