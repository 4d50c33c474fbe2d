//! Per-sample logs in lm-eval's JSONL layout, one line per finished document, flushed as it is
//! written so that an interrupted run leaves every finished document on disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use assay_core::metrics::DocValue;
use assay_core::MetricKind;
use assay_tasks::{Answers, DocInstance, PreparedTask};
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
        values: &[(MetricKind, DocValue)],
    ) -> std::io::Result<()> {
        let line = sample_line(task, instance, answers, values);
        let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        text.push('\n');
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

fn sample_line(
    task: &PreparedTask,
    instance: &DocInstance,
    answers: &Answers,
    values: &[(MetricKind, DocValue)],
) -> Value {
    let mut arguments = Map::new();
    for (i, r) in instance.requests.iter().enumerate() {
        arguments.insert(
            format!("gen_args_{i}"),
            json!({"arg_0": r.context, "arg_1": r.continuation}),
        );
    }
    let (resps, filtered): (Vec<Value>, Vec<Value>) = match answers {
        Answers::Loglikelihoods(lls) => lls
            .iter()
            .map(|l| {
                (
                    json!([[l.logprob, l.is_greedy]]),
                    json!([l.logprob, l.is_greedy]),
                )
            })
            .unzip(),
        Answers::Rolling(r) => {
            arguments.insert("gen_args_0".into(), json!({"arg_0": instance.target}));
            (vec![json!([r.logprob])], vec![json!(r.logprob)])
        }
    };
    let prompt = instance
        .requests
        .first()
        .map(|r| r.context.clone())
        .unwrap_or_default();
    let target_text = match &instance.target {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut line = json!({
        "doc_id": instance.doc_id,
        "doc": task.docs[instance.doc_id],
        "target": instance.target,
        "arguments": arguments,
        "resps": resps,
        "filtered_resps": filtered,
        "filter": "none",
        "metrics": values.iter().map(|(m, _)| m.name()).collect::<Vec<_>>(),
        "doc_hash": task.doc_hash(instance.doc_id),
        "prompt_hash": assay_tasks::hash_text(&prompt),
        "target_hash": assay_tasks::hash_text(&target_text),
    });
    let obj = line.as_object_mut().expect("a JSON object");
    for (m, v) in values {
        obj.insert(m.name().to_string(), v.as_json());
    }
    if let Answers::Loglikelihoods(lls) = answers {
        obj.insert("truncated".into(), json!(lls.iter().any(|l| l.truncated)));
        obj.insert(
            "continuation_tokens".into(),
            json!(lls
                .iter()
                .map(|l| l.continuation_tokens)
                .collect::<Vec<_>>()),
        );
    }
    line
}
