//! Per-document views of runs for the sample browsers: the prompt, each choice's
//! log-probability or the generation, the extracted answer and whether it was right, side by
//! side for every run, and whether the runs disagree.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::registry::{Registry, SampleLine};
use crate::RecordsError;

/// One run's answer to a document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DocAnswer {
    /// The prompt this run sent (runs with different few-shot settings differ).
    pub prompt: String,
    /// Log-probability of each choice (multiple-choice tasks).
    pub logprobs: Vec<f64>,
    /// Whether each choice was the greedy continuation.
    pub greedy: Vec<bool>,
    /// The generated text (generation tasks).
    pub generation: Option<String>,
    /// The answer extracted from it by the filter.
    pub extracted: Option<String>,
    /// Per-document metric values.
    pub metrics: BTreeMap<String, f64>,
    /// Whether the task's first metric scored it 1 (`None` for non-0/1 metrics).
    pub correct: Option<bool>,
}

/// One document across runs.
#[derive(Debug, Clone, Serialize)]
pub struct DocRow {
    /// Document index.
    pub doc_id: u64,
    /// The prompt (context) the first run sent.
    pub prompt: String,
    /// The reference answer.
    pub target: String,
    /// The choices' continuations (multiple-choice tasks).
    pub choices: Vec<String>,
    /// Per run, in the order asked; `None` where the run lacks the document.
    pub answers: Vec<Option<DocAnswer>>,
    /// Whether the runs that have the document scored it differently.
    pub disagree: bool,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        other => other.as_f64(),
    }
}

fn boolean(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        other => other.as_f64().is_some_and(|x| x != 0.0),
    }
}

/// The (context, continuation) arguments of a line: lm-eval 0.4's `{"gen_args_0": {"arg_0",
/// "arg_1"}}` or older `[[context, continuation], ...]`.
fn arguments(line: &Value) -> Vec<(Value, Value)> {
    match &line["arguments"] {
        Value::Object(o) => {
            let mut args: Vec<(usize, (Value, Value))> = o
                .iter()
                .filter_map(|(k, v)| {
                    let i = k.strip_prefix("gen_args_")?.parse().ok()?;
                    Some((i, (v["arg_0"].clone(), v["arg_1"].clone())))
                })
                .collect();
            args.sort_by_key(|(i, _)| *i);
            args.into_iter().map(|(_, a)| a).collect()
        }
        Value::Array(a) => a
            .iter()
            .map(|x| (x[0].clone(), x.get(1).cloned().unwrap_or(Value::Null)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A run's answer, and the document's prompt, target and choices, from one sample line.
fn read_line(line: &Value) -> (DocAnswer, String, String, Vec<String>) {
    let args = arguments(line);
    let prompt = args.first().map(|a| text(&a.0)).unwrap_or_default();
    let choices: Vec<String> = args
        .iter()
        .filter_map(|(_, c)| c.as_str().map(str::to_string))
        .collect();
    let resps = line["resps"].as_array().cloned().unwrap_or_default();
    let mut answer = DocAnswer {
        prompt: prompt.clone(),
        logprobs: Vec::new(),
        greedy: Vec::new(),
        generation: None,
        extracted: None,
        metrics: BTreeMap::new(),
        correct: None,
    };
    let first_resp = |r: &Value| {
        r.as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or(Value::Null)
    };
    if !choices.is_empty() {
        for r in &resps {
            let pair = first_resp(r);
            if let Some(lp) = number(&pair[0]) {
                answer.logprobs.push(lp);
                answer.greedy.push(boolean(&pair[1]));
            }
        }
    } else if let Some(r) = resps.first() {
        // A rolling log-likelihood has one argument (the text) and no generation settings;
        // lm-eval writes its log-probability as a string, like every response.
        let rolling = args.first().is_some_and(|(_, settings)| settings.is_null());
        match first_resp(r) {
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(lp) if rolling => answer.logprobs.push(lp),
                _ => answer.generation = Some(s),
            },
            Value::Array(pair) => {
                if let Some(lp) = pair.first().and_then(number) {
                    answer.logprobs.push(lp);
                }
            }
            other => {
                if let Some(lp) = number(&other) {
                    answer.logprobs.push(lp);
                }
            }
        }
        if let Some(f) = line["filtered_resps"].as_array().and_then(|a| a.first()) {
            answer.extracted = Some(match f {
                Value::Array(xs) if xs.len() == 1 => text(&xs[0]),
                other => text(other),
            });
        }
    }
    let named: Vec<String> = line["metrics"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(obj) = line.as_object() {
        for name in &named {
            if let Some(v) = obj.get(name).and_then(|v| match v {
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                other => other.as_f64(),
            }) {
                answer.metrics.insert(name.clone(), v);
            }
        }
    }
    answer.correct = named
        .first()
        .and_then(|m| answer.metrics.get(m))
        .filter(|v| **v == 0.0 || **v == 1.0)
        .map(|v| *v == 1.0);
    // A choice index (or a list of them) names the choice; anything else is the answer text.
    let choice = |v: &Value| {
        v.as_u64()
            .and_then(|i| choices.get(i as usize).cloned())
            .unwrap_or_else(|| text(v))
    };
    // lm-eval writes the target as Python's str(): a choice index 3 as "3", a list as "[0, 2]".
    let target_value = match &line["target"] {
        Value::String(s) if !choices.is_empty() => serde_json::from_str::<Value>(s.trim())
            .ok()
            .filter(|v| v.is_u64() || v.as_array().is_some_and(|a| a.iter().all(Value::is_u64))),
        _ => None,
    };
    let target = match target_value.as_ref().unwrap_or(&line["target"]) {
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(choice).collect::<Vec<_>>().join(" / ")
        }
        other => choice(other),
    };
    (answer, prompt, target, choices)
}

/// The filters logged for `task` across runs, `none` first.
fn pick_filter(all: &[Vec<SampleLine>], wanted: Option<&str>) -> Option<String> {
    if let Some(w) = wanted {
        return Some(w.to_string());
    }
    let filters: BTreeSet<&str> = all.iter().flatten().map(|l| l.filter.as_str()).collect();
    if filters.contains("none") {
        Some("none".into())
    } else {
        filters.into_iter().next().map(str::to_string)
    }
}

/// Every logged document of `task` across `ids`, for filter `filter` (default: `none`, else
/// the first logged).
pub fn doc_rows(
    registry: &Registry,
    ids: &[i64],
    task: &str,
    filter: Option<&str>,
) -> Result<Vec<DocRow>, RecordsError> {
    let all: Vec<Vec<SampleLine>> = ids
        .iter()
        .map(|id| registry.samples(*id, task))
        .collect::<Result<_, _>>()?;
    let Some(filter) = pick_filter(&all, filter) else {
        return Ok(Vec::new());
    };
    let mut rows: BTreeMap<(u64, Option<String>), DocRow> = BTreeMap::new();
    for (i, lines) in all.iter().enumerate() {
        for l in lines.iter().filter(|l| l.filter == filter) {
            let (answer, prompt, target, choices) = read_line(&l.line);
            let row = rows
                .entry((l.doc_id, l.doc_hash.clone()))
                .or_insert_with(|| DocRow {
                    doc_id: l.doc_id,
                    prompt,
                    target,
                    choices,
                    answers: vec![None; ids.len()],
                    disagree: false,
                });
            row.answers[i] = Some(answer);
        }
    }
    let mut out: Vec<DocRow> = rows.into_values().collect();
    for row in &mut out {
        let present: Vec<&DocAnswer> = row.answers.iter().flatten().collect();
        row.disagree = present
            .windows(2)
            .any(|w| match (w[0].correct, w[1].correct) {
                (Some(a), Some(b)) => a != b,
                _ => w[0].extracted != w[1].extracted || w[0].metrics != w[1].metrics,
            });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_multiple_choice_and_generation_lines() {
        let mc = json!({
            "doc_id": 3, "target": 1, "filter": "none", "metrics": ["acc", "acc_norm"],
            "arguments": {"gen_args_0": {"arg_0": "Q: 2+2?\nA:", "arg_1": " 3"},
                          "gen_args_1": {"arg_0": "Q: 2+2?\nA:", "arg_1": " 4"}},
            "resps": [[[-2.5, false]], [[-0.5, true]]],
            "filtered_resps": [[-2.5, false], [-0.5, true]],
            "acc": 1.0, "acc_norm": 1.0,
        });
        let (_, _, target, _) = read_line(&json!({"target": [1], "arguments": mc["arguments"]}));
        assert_eq!(target, " 4");
        let (a, prompt, target, choices) = read_line(&mc);
        assert_eq!(prompt, "Q: 2+2?\nA:");
        assert_eq!(choices, vec![" 3", " 4"]);
        assert_eq!(target, " 4");
        assert_eq!(a.logprobs, vec![-2.5, -0.5]);
        assert_eq!(a.greedy, vec![false, true]);
        assert_eq!(a.correct, Some(true));

        let gen = json!({
            "doc_id": 0, "target": "18", "filter": "flexible-extract", "metrics": ["exact_match"],
            "arguments": {"gen_args_0": {"arg_0": "Question: ...", "arg_1": {"until": ["\n\n"]}}},
            "resps": [["The answer is 17."]], "filtered_resps": ["17"], "exact_match": 0.0,
        });
        let (a, _, target, choices) = read_line(&gen);
        assert!(choices.is_empty());
        assert_eq!(target, "18");
        assert_eq!(a.generation.as_deref(), Some("The answer is 17."));
        assert_eq!(a.extracted.as_deref(), Some("17"));
        assert_eq!(a.correct, Some(false));
    }

    #[test]
    fn lm_eval_string_targets_name_choices() {
        let line = json!({
            "doc_id": 0, "target": "1", "metrics": ["acc"], "acc": 1.0,
            "arguments": {"gen_args_0": {"arg_0": "ctx", "arg_1": " a"},
                          "gen_args_1": {"arg_0": "ctx", "arg_1": " b"}},
            "resps": [[["-2.5", "False"]], [["-0.5", "True"]]],
        });
        let (a, _, target, _) = read_line(&line);
        assert_eq!(target, " b");
        assert_eq!(a.logprobs, vec![-2.5, -0.5]);
        let mut two = line.clone();
        two["target"] = json!("[0, 1]");
        assert_eq!(read_line(&two).2, " a /  b");
    }

    #[test]
    fn rolling_logprob_as_string() {
        let line = json!({
            "doc_id": 0, "target": "some text", "metrics": ["word_perplexity"],
            "arguments": {"gen_args_0": {"arg_0": "some text"}},
            "resps": [["-12.5"]], "filtered_resps": ["-12.5"],
        });
        let (a, _, _, _) = read_line(&line);
        assert_eq!(a.logprobs, vec![-12.5]);
        assert_eq!(a.generation, None);
    }

    #[test]
    fn older_list_arguments_and_string_logprobs() {
        let line = json!({
            "doc_id": 0, "target": " b", "metrics": ["acc"], "acc": 0,
            "arguments": [["ctx", " a"], ["ctx", " b"]],
            "resps": [[["-1.5", "True"]], [["-2.0", "False"]]],
        });
        let (a, prompt, _, choices) = read_line(&line);
        assert_eq!(prompt, "ctx");
        assert_eq!(choices.len(), 2);
        assert_eq!(a.logprobs, vec![-1.5, -2.0]);
        assert_eq!(a.greedy, vec![true, false]);
        assert_eq!(a.correct, Some(false));
    }
}
