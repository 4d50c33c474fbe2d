//! Per-sample logs in lm-eval's JSONL layout, one line per finished document, flushed as it is
//! written so that an interrupted run leaves every finished document on disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use assay_core::metrics::DocValue;
use assay_tasks::{Answers, DocInstance, DocKind, PreparedTask};
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
        values: &[DocValue],
        gen_time: Option<(f64, usize)>,
    ) -> std::io::Result<()> {
        let mut text = String::new();
        for line in sample_lines(task, instance, answers, values, gen_time) {
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
    values: &[DocValue],
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
                    json!({"arg_0": request.context, "arg_1": {
                        "until": request.until,
                        "max_gen_toks": request.max_gen_toks,
                        "temperature": request.sampling.temperature,
                        "top_p": request.sampling.top_p,
                        "top_k": request.sampling.top_k,
                        "seed": request.sampling.seed,
                        "n": request.n,
                    }}),
                );
            }
            let texts: Vec<&str> = gens.iter().map(|g| g.text.as_str()).collect();
            let filtered = task
                .filtered(answers)
                .into_iter()
                .map(|(name, vals)| {
                    // As lm-eval: one entry per request (a generation document has one), holding
                    // the filter's output: one answer, or a list of them when not reduced.
                    let v = if vals.len() == 1 {
                        json!([vals[0]])
                    } else {
                        json!([vals])
                    };
                    (name, v)
                })
                .collect();
            (vec![json!(texts)], filtered)
        }
    };
    let target_text = assay_tasks::text_of(&instance.target);
    let executions = task.take_execution(instance.doc_id);
    let mut lines = Vec::new();
    for (filter, filtered) in per_filter {
        let mut line = json!({
            "doc_id": instance.doc_id,
            "doc": task.docs[instance.doc_id],
            "target": instance.target,
            "arguments": arguments,
            "resps": resps,
            "filtered_resps": filtered,
            "filter": filter,
            "metrics": task.keys.iter().filter(|(_, f)| *f == filter).map(|(m, _)| m.name()).collect::<Vec<_>>(),
            "doc_hash": task.doc_hash(instance.doc_id),
            "prompt_hash": assay_tasks::hash_text(&prompt),
            "target_hash": assay_tasks::hash_text(&target_text),
        });
        let obj = line.as_object_mut().expect("a JSON object");
        if let Some(runs) = executions.as_ref().and_then(|e| e.get(&filter)) {
            // How each generation's program ended (pass@k tasks).
            obj.insert("execution".into(), runs.clone());
        }
        for ((m, f), v) in task.keys.iter().zip(values) {
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
