//! Per-sample logs in lm-eval's JSONL layout, one line per finished document, flushed as it is
//! written so that an interrupted run leaves every finished document on disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use assay_tasks::{Answers, DocInstance, DocKind, PreparedTask, Scored};
use serde_json::{json, Map, Value};

/// An open per-sample log of one task.
pub struct SampleLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl SampleLog {
    /// Creates (truncates) the log file.
    pub fn create(path: &Path) -> std::io::Result<SampleLog> {
        Ok(SampleLog {
            path: path.to_path_buf(),
            out: BufWriter::new(File::create(path)?),
        })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one document's line and flushes it.
    pub(crate) fn write(
        &mut self,
        task: &PreparedTask,
        instance: &DocInstance,
        answers: &Answers,
        scored: &Scored,
        gen_time: Option<(f64, usize)>,
    ) -> std::io::Result<()> {
        let mut text = String::new();
        for line in sample_lines(task, instance, answers, scored, gen_time) {
            text.push_str(&serde_json::to_string(&line).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        // One write per document: a document's lines land together or not at all.
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

/// The lines of one document: one per filter, as lm-eval writes them.
fn sample_lines(
    task: &PreparedTask,
    instance: &DocInstance,
    answers: &Answers,
    scored: &Scored,
    gen_time: Option<(f64, usize)>,
) -> Vec<Value> {
    let mut arguments = Map::new();
    for (i, r) in instance.requests.iter().enumerate() {
        arguments.insert(
            format!("gen_args_{i}"),
            json!({"arg_0": r.context, "arg_1": r.continuation}),
        );
    }
    let mut prompt = instance
        .requests
        .first()
        .map(|r| r.context.clone())
        .unwrap_or_default();
    // (filter name, filtered responses) per line.
    let (resps, per_filter): (Vec<Value>, Vec<(String, Value)>) = match answers {
        Answers::Loglikelihoods(lls) => {
            let (r, f): (Vec<Value>, Vec<Value>) = lls
                .iter()
                .map(|l| {
                    (
                        json!([[l.logprob, l.is_greedy]]),
                        json!([l.logprob, l.is_greedy]),
                    )
                })
                .unzip();
            (r, vec![("none".into(), json!(f))])
        }
        Answers::Rolling(r) => {
            arguments.insert("gen_args_0".into(), json!({"arg_0": instance.target}));
            (
                vec![json!([r.logprob])],
                vec![("none".into(), json!([r.logprob]))],
            )
        }
        Answers::Generations(gens) => {
            if let DocKind::Generate { request } = &instance.kind {
                prompt = request.context.clone();
                arguments.insert(
                    "gen_args_0".into(),
                    json!({"arg_0": request.context, "arg_1": task.generation_arguments()}),
                );
            }
            let texts: Vec<&str> = gens.iter().map(|g| g.text.as_str()).collect();
            let filtered = scored
                .filtered
                .iter()
                .map(|(name, vals)| {
                    // As lm-eval: one entry per request (a generation document has one), holding
                    // the filter's output: one answer, or a list of them when not reduced.
                    let v = if vals.len() == 1 {
                        json!([vals[0]])
                    } else {
                        json!([vals])
                    };
                    (name.clone(), v)
                })
                .collect();
            (vec![json!(texts)], filtered)
        }
    };
    // lm-eval hashes str(target).
    let target_text = python_str(&instance.target);
    let mut lines = Vec::new();
    for (filter, filtered) in per_filter {
        let mut line = json!({
            "doc_id": instance.doc_id,
            "doc": task.docs[instance.doc_id],
            "target": python_str(&instance.target),
            "arguments": arguments,
            "resps": stringify_leaves(&Value::Array(resps.clone())),
            "filtered_resps": stringify_leaves(&filtered),
            "filter": filter,
            "metrics": task.keys.iter().filter(|(_, f)| *f == filter).map(|(m, _)| m.name()).collect::<Vec<_>>(),
            "doc_hash": task.doc_hash(instance.doc_id),
            "prompt_hash": assay_tasks::hash_text(&prompt),
            "target_hash": assay_tasks::hash_text(&target_text),
        });
        let obj = line.as_object_mut().expect("a JSON object");
        if let Some(runs) = scored.details.as_ref().and_then(|e| e.get(&filter)) {
            // How each generation's program ended (pass@k tasks).
            obj.insert("execution".into(), runs.clone());
        }
        for ((m, f), v) in task.keys.iter().zip(&scored.values) {
            if *f == filter {
                obj.insert(m.name().to_string(), v.as_json());
            }
        }
        match answers {
            Answers::Loglikelihoods(lls) => {
                obj.insert("truncated".into(), json!(lls.iter().any(|l| l.truncated)));
                obj.insert(
                    "continuation_tokens".into(),
                    json!(lls
                        .iter()
                        .map(|l| l.continuation_tokens)
                        .collect::<Vec<_>>()),
                );
            }
            Answers::Generations(gens) => {
                let (seconds, tokens) = gen_time.unwrap_or((0.0, 0));
                obj.insert("gen_time".into(), json!(seconds));
                obj.insert("gen_tokens".into(), json!(tokens));
                obj.insert(
                    "tokens_per_second".into(),
                    json!(tokens as f64 / seconds.max(1e-9)),
                );
                obj.insert(
                    "stop".into(),
                    json!(gens.iter().map(|g| &g.stop).collect::<Vec<_>>()),
                );
                obj.insert("truncated".into(), json!(gens.iter().any(|g| g.truncated)));
            }
            Answers::Rolling(_) => {}
        }
        lines.push(line);
    }
    lines
}

/// `str(value)` as Python prints it: lm-eval writes every sample's `target` this way (a choice
/// index 3 as "3", a list of answers as "['a', 'b']").
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr` of a JSON value.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if !(n.is_i64() || n.is_u64()) => python_float(x),
            _ => n.to_string(),
        },
        Value::String(s) => python_string_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", python_string_repr(k), python_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr(float)`: the shortest digits that read back, positional from 1e-4 up to
/// 1e16, scientific (`1e-05`, `1.5e+16`) outside.
fn python_float(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        }
        .into();
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    if x == 0.0 || (-4..16).contains(&exponent) {
        let fixed = x.to_string();
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// Python's `repr(str)`: single quotes unless the text holds one and no double quote.
fn python_string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Every leaf of nested lists as its Python `str`, as lm-eval stores `resps` and
/// `filtered_resps` (a log-likelihood pair [-1.5, false] as ["-1.5", "False"]).
fn stringify_leaves(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(stringify_leaves).collect()),
        leaf => Value::String(python_str(leaf)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_str_matches_python() {
        // Each right-hand side is what CPython 3.11 prints for str() of the left-hand value.
        let cases = [
            (json!(3), "3"),
            (json!([3]), "[3]"),
            (json!([0, 2]), "[0, 2]"),
            (json!("17"), "17"),
            (json!(["a", "it's"]), "['a', \"it's\"]"),
            (json!(["say \"hi\" it's"]), "['say \"hi\" it\\'s']"),
            (json!(["a\nb\\c"]), "['a\\nb\\\\c']"),
            (json!(-46.54351806640625), "-46.54351806640625"),
            (json!(1.0), "1.0"),
            (json!(-0.5), "-0.5"),
            (json!(0.0001), "0.0001"),
            (json!(1.2e-5), "1.2e-05"),
            (json!(-3e-7), "-3e-07"),
            (json!(1e16), "1e+16"),
            (json!(1234567890123456.0), "1234567890123456.0"),
            (json!(true), "True"),
            (json!(null), "None"),
            (json!({"a": [1, false]}), "{'a': [1, False]}"),
        ];
        for (value, python) in cases {
            assert_eq!(python_str(&value), python, "{value}");
        }
    }

    #[test]
    fn leaves_become_strings() {
        assert_eq!(
            stringify_leaves(&json!([[[-1.5, false]], [[-0.25, true]]])),
            json!([[["-1.5", "False"]], [["-0.25", "True"]]])
        );
        assert_eq!(stringify_leaves(&json!([["17"]])), json!([["17"]]));
    }
}
