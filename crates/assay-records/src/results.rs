//! Reading results documents: assay's own and lm-eval's (0.4's `"metric,filter"` keys and
//! 0.3's bare metric names), into tasks, metric values and the run's provenance.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::RecordsError;

/// One metric of one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricValue {
    /// Metric name (`acc`, `exact_match`, ...).
    pub metric: String,
    /// Filter name (`none`, `strict-match`, ...).
    pub filter: String,
    /// The aggregate value.
    pub value: f64,
    /// Its standard error, when the file has one.
    pub stderr: Option<f64>,
}

/// One task's (or group's) entry in a results document.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// Task name.
    pub name: String,
    /// Whether this is a group aggregated from tasks.
    pub is_group: bool,
    /// Documents evaluated, when known.
    pub n: Option<usize>,
    /// Few-shot examples, when known.
    pub num_fewshot: Option<u64>,
    /// Metric values in file order.
    pub metrics: Vec<MetricValue>,
    /// `higher_is_better` per metric name, when the file says.
    pub higher_is_better: BTreeMap<String, bool>,
    /// Wall seconds spent on the task, when recorded.
    pub seconds: Option<f64>,
    /// assay's alarm on degenerate multiple-choice scores, when it raised one.
    pub alarm: Option<String>,
}

impl TaskResult {
    /// Whether a higher `metric` is better (the file's word, else by name: perplexities and
    /// bits per byte are lower-is-better).
    pub fn higher_is_better(&self, metric: &str) -> bool {
        self.higher_is_better
            .get(metric)
            .copied()
            .unwrap_or(!(metric.contains("perplexity") || metric.contains("bits_per_byte")))
    }

    /// Mean wall seconds per document, when both are known.
    pub fn seconds_per_doc(&self) -> Option<f64> {
        match (self.seconds, self.n) {
            (Some(s), Some(n)) if n > 0 => Some(s / n as f64),
            _ => None,
        }
    }
}

/// Where a run came from: what the customer's records hold for each evaluation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Provenance {
    /// The tool and version that wrote the results (`assay 0.1.0`, `lm-eval 0.4.3`).
    pub tool: String,
    /// Model name or path.
    pub model: String,
    /// Backend (`llama.cpp`, `openai`, `hf`, ...).
    pub backend: Option<String>,
    /// Evaluation start, RFC 3339 (UTC).
    pub date: Option<String>,
    /// The command line, when recorded.
    pub command: Option<String>,
    /// Device (`cpu`, `cuda`, ...).
    pub device: Option<String>,
    /// Batch size as the tool reports it.
    pub batch_size: Option<String>,
    /// Weight type or quantisation.
    pub dtype: Option<String>,
    /// SHA-256 of the model file, when known.
    pub model_sha: Option<String>,
    /// Documents-per-task limit, when one was set.
    pub limit: Option<String>,
}

/// Keys of a task entry that are not metrics.
const NOT_METRICS: [&str; 4] = ["alias", "name", "sample_len", "samples"];

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The metric values of one entry of `results`.
fn metrics_of(entry: &serde_json::Map<String, Value>) -> Vec<MetricValue> {
    let mut out = Vec::new();
    for (key, value) in entry {
        if NOT_METRICS.contains(&key.as_str()) {
            continue;
        }
        let (metric, filter) = key.split_once(',').unwrap_or((key.as_str(), "none"));
        if metric.ends_with("_stderr") {
            continue;
        }
        let Some(value) = value.as_f64() else {
            continue;
        };
        let stderr_key = if key.contains(',') {
            format!("{metric}_stderr,{filter}")
        } else {
            format!("{metric}_stderr")
        };
        let stderr = entry
            .get(&stderr_key)
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite());
        out.push(MetricValue {
            metric: metric.to_string(),
            filter: filter.to_string(),
            value,
            stderr,
        });
    }
    out
}

/// The model from lm-eval's `model_args` (a dict, or a `pretrained=...,k=v` string).
fn model_from_args(args: &Value) -> Option<String> {
    match args {
        Value::Object(o) => o
            .get("pretrained")
            .or_else(|| o.get("model"))
            .and_then(text),
        Value::String(s) => s
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| matches!(k.trim(), "pretrained" | "model" | "path"))
            .map(|(_, v)| v.trim().to_string()),
        _ => None,
    }
}

fn date_of(doc: &Value) -> Option<String> {
    match &doc["date"] {
        Value::Number(n) => n.as_f64().and_then(|secs| {
            chrono::DateTime::from_timestamp_micros((secs * 1e6) as i64)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The tasks and provenance of a results document; `origin` names it in errors.
pub fn parse_results(
    doc: &Value,
    origin: &str,
) -> Result<(Vec<TaskResult>, Provenance), RecordsError> {
    let bad = |message: String| RecordsError::BadResults {
        origin: origin.to_string(),
        message,
    };
    let Some(results) = doc.get("results").and_then(Value::as_object) else {
        return Err(bad(if doc.is_object() {
            "not a results file of lm-eval (0.3 or 0.4) or assay: it has no `results` object".into()
        } else {
            "not a results file: expected a JSON object with a `results` object".into()
        }));
    };
    let groups: Vec<&String> = doc["group_subtasks"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, children)| children.as_array().is_some_and(|c| !c.is_empty()))
        .map(|(name, _)| name)
        .chain(doc["groups"].as_object().into_iter().flat_map(|g| g.keys()))
        .collect();
    let mut tasks = Vec::new();
    for (name, entry) in results {
        let Some(entry) = entry.as_object() else {
            return Err(bad(format!(
                "`results.{name}` is not an object of metric values"
            )));
        };
        let metrics = metrics_of(entry);
        if metrics.is_empty() {
            continue;
        }
        let n = doc["n-samples"][name]["effective"]
            .as_u64()
            .or_else(|| entry.get("sample_len").and_then(Value::as_u64))
            .map(|n| n as usize);
        let num_fewshot = doc["n-shot"][name]
            .as_u64()
            .or_else(|| doc["configs"][name]["num_fewshot"].as_u64())
            .or_else(|| doc["config"]["num_fewshot"].as_u64());
        let higher_is_better = doc["higher_is_better"][name]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(m, b)| b.as_bool().map(|b| (m.clone(), b)))
            .collect();
        let seconds = doc["assay"]["task_timing"][name]["seconds"]
            .as_f64()
            .or_else(|| doc["assay"]["generation_timing"][name]["seconds"].as_f64());
        tasks.push(TaskResult {
            name: name.clone(),
            is_group: groups.contains(&name),
            n,
            num_fewshot,
            metrics,
            higher_is_better,
            seconds,
            alarm: text(&doc["assay"]["alarms"][name]),
        });
    }
    if tasks.is_empty() {
        return Err(bad(
            "`results` holds no metric values (expected entries like \"acc,none\": 0.5)".into(),
        ));
    }
    let config = &doc["config"];
    let assay = &doc["assay"];
    let tool = if assay.is_object() {
        format!("assay {}", assay["version"].as_str().unwrap_or("?"))
    } else {
        match doc["lm_eval_version"].as_str() {
            Some(v) => format!("lm-eval {v}"),
            None if doc.get("n-samples").is_some() => "lm-eval 0.4".into(),
            None => "lm-eval 0.3".into(),
        }
    };
    let model = text(&doc["model_name"])
        .or_else(|| model_from_args(&config["model_args"]))
        .or_else(|| text(&config["model"]))
        .unwrap_or_else(|| "unknown model".into());
    let command = assay["command_line"].as_array().map(|parts| {
        parts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    });
    let provenance = Provenance {
        tool,
        model,
        backend: text(&doc["model_source"]).or_else(|| text(&config["model"])),
        date: date_of(doc),
        command,
        device: text(&config["device"]),
        batch_size: text(&config["batch_size"]),
        dtype: text(&config["model_dtype"])
            .or_else(|| text(&config["model_args"]["dtype"]))
            .or_else(|| {
                config["model_args"].as_str().and_then(|s| {
                    s.split(',')
                        .filter_map(|kv| kv.split_once('='))
                        .find(|(k, _)| k.trim() == "dtype")
                        .map(|(_, v)| v.to_string())
                })
            }),
        model_sha: text(&config["model_sha"]),
        limit: text(&config["limit"]),
    };
    Ok((tasks, provenance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_assays_alarms() {
        let doc = json!({
            "results": {"arc_easy": {"acc,none": 0.25}, "piqa": {"acc,none": 0.6}},
            "assay": {"version": "0.1.0", "alarms": {"arc_easy": "degenerate scores: ..."}},
        });
        let (tasks, _) = parse_results(&doc, "r.json").unwrap();
        assert_eq!(tasks[0].alarm.as_deref(), Some("degenerate scores: ..."));
        assert_eq!(tasks[1].alarm, None);
    }

    #[test]
    fn reads_lm_eval_0_4_results() {
        let doc = json!({
            "results": {
                "mmlu": {"alias": "mmlu", "acc,none": 0.3, "acc_stderr,none": 0.01},
                "mmlu_anatomy": {"alias": " - anatomy", "acc,none": 0.25, "acc_stderr,none": "N/A"},
                "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.1,
                          "exact_match_stderr,strict-match": 0.02,
                          "exact_match,flexible-extract": 0.2,
                          "exact_match_stderr,flexible-extract": 0.03},
            },
            "group_subtasks": {"mmlu": ["mmlu_anatomy"], "mmlu_anatomy": [], "gsm8k": []},
            "n-shot": {"gsm8k": 5, "mmlu_anatomy": 0},
            "n-samples": {"gsm8k": {"original": 1319, "effective": 100}},
            "higher_is_better": {"gsm8k": {"exact_match": true}},
            "config": {"model": "hf", "model_args": "pretrained=meta-llama/Llama-3.2-1B,dtype=float16",
                       "batch_size": 4, "device": "cuda"},
            "date": 1741400000.5,
            "lm_eval_version": "0.4.8",
        });
        let (tasks, p) = parse_results(&doc, "r.json").unwrap();
        assert_eq!(tasks.len(), 3);
        assert!(tasks[0].is_group && !tasks[1].is_group);
        assert_eq!(tasks[1].metrics[0].stderr, None);
        let gsm = &tasks[2];
        assert_eq!(gsm.n, Some(100));
        assert_eq!(gsm.num_fewshot, Some(5));
        assert_eq!(gsm.metrics.len(), 2);
        assert_eq!(gsm.metrics[1].filter, "flexible-extract");
        assert_eq!(gsm.metrics[1].stderr, Some(0.03));
        assert_eq!(p.tool, "lm-eval 0.4.8");
        assert_eq!(p.model, "meta-llama/Llama-3.2-1B");
        assert_eq!(p.dtype.as_deref(), Some("float16"));
        assert_eq!(p.batch_size.as_deref(), Some("4"));
        assert_eq!(p.date.as_deref(), Some("2025-03-08T02:13:20Z"));
    }

    #[test]
    fn reads_lm_eval_0_3_bare_metric_names() {
        let doc = json!({
            "results": {"hellaswag": {"acc": 0.45, "acc_stderr": 0.005, "acc_norm": 0.6, "acc_norm_stderr": 0.0049}},
            "versions": {"hellaswag": 0},
            "config": {"model": "hf-causal", "model_args": "pretrained=x", "num_fewshot": 0},
        });
        let (tasks, p) = parse_results(&doc, "r.json").unwrap();
        assert_eq!(tasks[0].metrics.len(), 2);
        assert_eq!(tasks[0].metrics[1].metric, "acc_norm");
        assert_eq!(tasks[0].metrics[1].filter, "none");
        assert_eq!(tasks[0].metrics[1].stderr, Some(0.0049));
        assert_eq!(tasks[0].num_fewshot, Some(0));
        assert_eq!(p.tool, "lm-eval 0.3");
    }

    #[test]
    fn files_that_are_not_results_are_named() {
        for (doc, needle) in [
            (json!({"a": 1}), "no `results` object"),
            (json!([1, 2]), "expected a JSON object"),
            (json!({"results": {"t": 3}}), "`results.t` is not an object"),
            (
                json!({"results": {"t": {"alias": "t"}}}),
                "no metric values",
            ),
        ] {
            let err = parse_results(&doc, "x.json").unwrap_err().to_string();
            assert!(err.starts_with("x.json: ") && err.contains(needle), "{err}");
        }
    }
}
