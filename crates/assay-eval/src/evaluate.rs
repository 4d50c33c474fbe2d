//! The evaluation loop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::sanity::ChoiceStats;
use assay_backend::{Backend, BackendError};
use assay_core::{DocValue, GenerationRequest, LoglikelihoodRequest};
use assay_tasks::{Answers, DocInstance, DocKind, GroupNode, Metric, PreparedTask, TaskError};
use serde_json::Value;

use crate::aggregate::{self, GroupResult, MetricResult};
use crate::SampleLog;

/// How many documents of each task to evaluate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// The first N documents.
    Count(usize),
    /// This fraction of the documents (rounded up), as lm-eval's `--limit 0.1`.
    Fraction(f64),
}

impl Limit {
    /// Documents to evaluate out of `total`.
    pub fn apply(self, total: usize) -> usize {
        match self {
            Limit::Count(n) => n.min(total),
            Limit::Fraction(f) => ((total as f64) * f).ceil().min(total as f64) as usize,
        }
    }
}

/// Settings of one evaluation.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Documents per task; all when `None`.
    pub limit: Option<Limit>,
    /// Resamples for bootstrap standard errors (0 disables them).
    pub bootstrap_iters: usize,
    /// Where per-sample logs go, and the run's timestamp for their names; none when `None`.
    pub samples: Option<(PathBuf, String)>,
    /// Set from a signal handler to stop after the current document.
    pub interrupt: Arc<AtomicBool>,
}

/// Receives progress as documents finish.
pub trait Progress {
    /// A task starts with `docs` documents to evaluate.
    fn task_started(&mut self, task: &str, docs: usize);
    /// A document's answers are all in.
    fn doc_done(&mut self);
    /// The backend's running token count, after each batch of documents.
    fn tokens(&mut self, total: u64);
}

/// Why an evaluation stopped with an error. Per-sample lines of finished documents stay on disk.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The task could not build a document's requests.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The backend failed on a batch of documents.
    #[error("task {task}, {}: {source}", describe_docs(docs))]
    Engine {
        /// The task.
        task: String,
        /// The documents of the batch.
        docs: std::ops::Range<usize>,
        /// The backend's error.
        source: BackendError,
    },
    /// A per-sample log could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The result of one task.
#[derive(Debug, Clone)]
pub struct TaskOutcome {
    /// Task name.
    pub name: String,
    /// Display name.
    pub alias: String,
    /// `metadata.version`.
    pub version: f64,
    /// Few-shot examples per document.
    pub num_fewshot: usize,
    /// Documents in the evaluated split.
    pub n_original: usize,
    /// Documents evaluated.
    pub n_effective: usize,
    /// Aggregated metrics.
    pub metrics: Vec<MetricResult>,
    /// What each entry of `values` is: (metric, filter).
    pub keys: Vec<(Metric, String)>,
    /// Per-document values, per key.
    pub values: Vec<Vec<DocValue>>,
    /// Generation timing (generation tasks only).
    pub timing: Option<Timing>,
    /// Requests whose context was cut from the left to fit the window.
    pub truncated_requests: usize,
    /// Requests sent to the backend.
    pub requests: usize,
    /// The per-sample log written, if any.
    pub samples_path: Option<PathBuf>,
    /// The task's merged spec, with the few-shot count used.
    pub config: Value,
    /// Wall-clock seconds spent on the task.
    pub seconds: f64,
    /// Why the scores look degenerate (multiple-choice tasks), if they do.
    pub alarm: Option<String>,
}

/// Time spent generating, for the results' average time per item.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// Documents generated for.
    pub docs: usize,
    /// Seconds spent in generation.
    pub seconds: f64,
    /// Tokens generated (all samples).
    pub tokens: usize,
}

impl Timing {
    /// Mean seconds per document.
    pub fn seconds_per_doc(&self) -> f64 {
        self.seconds / self.docs.max(1) as f64
    }

    /// Generated tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// The result of an evaluation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Tasks in evaluation order (the last one partial when interrupted).
    pub tasks: Vec<TaskOutcome>,
    /// Groups, members before parents.
    pub groups: Vec<GroupResult>,
    /// Whether the run was stopped before the end.
    pub interrupted: bool,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Tokens the backend ran through the model.
    pub tokens_processed: u64,
}

/// Evaluates `tasks` on `backend`; groups are aggregated from the task results.
pub fn evaluate(
    backend: &mut dyn Backend,
    tasks: &[PreparedTask],
    groups: &[GroupNode],
    options: &EvalOptions,
    progress: &mut dyn Progress,
) -> Result<Outcome, EvalError> {
    let start = Instant::now();
    let tokens_at_start = backend.tokens_processed();
    let mut outcomes = Vec::new();
    let mut interrupted = false;
    for task in tasks {
        let n = options
            .limit
            .map_or(task.docs.len(), |l| l.apply(task.docs.len()));
        progress.task_started(&task.name, n);
        let task_start = Instant::now();
        backend
            .set_shared_prefix(task.shared_prefix()?.as_deref())
            .map_err(|source| EvalError::Engine {
                task: task.name.clone(),
                docs: 0..1,
                source,
            })?;
        let mut log = match &options.samples {
            Some((dir, stamp)) => {
                let path = dir.join(format!("samples_{}_{stamp}.jsonl", task.name));
                Some(SampleLog::create(&path).map_err(|source| EvalError::Io { path, source })?)
            }
            None => None,
        };
        let mut values: Vec<Vec<DocValue>> = vec![Vec::with_capacity(n); task.keys.len()];
        let mut timing: Option<Timing> = None;
        let mut truncated_requests = 0;
        let mut choices = ChoiceStats::default();
        let mut requests = 0;
        let mut done = 0;
        // Documents go to the backend a batch at a time (it schedules their requests);
        // results are scored and logged in document order.
        let chunk = backend.batch_documents(task.is_generation()).max(1);
        let mut first = 0;
        while first < n {
            if options.interrupt.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            let last = (first + chunk).min(n);
            let instances = (first..last)
                .map(|doc_id| task.instance(doc_id))
                .collect::<Result<Vec<_>, _>>()?;
            let batch = answer_batch(backend, &instances, progress).map_err(|source| {
                EvalError::Engine {
                    task: task.name.clone(),
                    docs: first..last,
                    source,
                }
            })?;
            progress.tokens(backend.tokens_processed());
            requests += batch.requests;
            let answers = batch.answers;
            let gen_times = batch.gen_times;
            for (a, t) in answers.iter().zip(&gen_times) {
                match a {
                    Answers::Loglikelihoods(lls) => {
                        truncated_requests += lls.iter().filter(|l| l.truncated).count();
                    }
                    Answers::Generations(g) => {
                        truncated_requests += usize::from(g.iter().any(|g| g.truncated));
                    }
                    Answers::Rolling(_) => {}
                }
                if let Some((seconds, tokens)) = t {
                    let tm = timing.get_or_insert_with(Timing::default);
                    tm.docs += 1;
                    tm.seconds += seconds;
                    tm.tokens += tokens;
                }
            }
            for ((instance, answers), gen_time) in instances.iter().zip(&answers).zip(gen_times) {
                if let (DocKind::MultipleChoice { .. }, Answers::Loglikelihoods(lls)) =
                    (&instance.kind, answers)
                {
                    choices.observe(lls);
                }
                let scored = task.score(instance, answers)?;
                for (slot, v) in values.iter_mut().zip(&scored.values) {
                    slot.push(v.clone());
                }
                if let Some(log) = &mut log {
                    log.write(task, instance, answers, &scored, gen_time)
                        .map_err(|source| EvalError::Io {
                            path: log.path().to_path_buf(),
                            source,
                        })?;
                }
                done += 1;
            }
            first = last;
        }
        let mut config = serde_json::to_value(&task.spec).unwrap_or(Value::Null);
        if let Some(obj) = config.as_object_mut() {
            obj.insert("num_fewshot".into(), task.num_fewshot.into());
            if let Some(chat) = task.chat() {
                obj.insert("chat_template_sha".into(), chat.template_sha.clone().into());
                obj.insert(
                    "system_instruction".into(),
                    chat.system_instruction.clone().into(),
                );
                obj.insert(
                    "fewshot_as_multiturn".into(),
                    chat.fewshot_as_multiturn.into(),
                );
            }
            // The task file's entries (with their options), completed with the defaults.
            let written = task.spec.metric_list.clone().unwrap_or_default();
            obj.insert(
                "metric_list".into(),
                task.metrics
                    .iter()
                    .map(|m| {
                        let mut entry = written
                            .iter()
                            .find(|w| w.name() == m.name())
                            .and_then(|w| serde_json::to_value(w).ok())
                            .unwrap_or_else(|| serde_json::json!({"metric": m.name()}));
                        if let Some(e) = entry.as_object_mut() {
                            e.insert("metric".into(), m.name().into());
                            e.insert("aggregation".into(), m.aggregation_name().into());
                            e.entry("higher_is_better")
                                .or_insert(m.higher_is_better().into());
                        }
                        entry
                    })
                    .collect(),
            );
        }
        outcomes.push(TaskOutcome {
            name: task.name.clone(),
            alias: task.alias.clone(),
            version: task.spec.version(),
            num_fewshot: task.num_fewshot,
            n_original: task.docs.len(),
            n_effective: done,
            metrics: aggregate::task_metrics(
                &task.name,
                &task.keys,
                &values,
                options.bootstrap_iters,
            )?,
            keys: task.keys.clone(),
            values,
            timing,
            truncated_requests,
            requests,
            samples_path: log.map(|l| l.path().to_path_buf()),
            config,
            seconds: task_start.elapsed().as_secs_f64(),
            alarm: choices.alarm(),
        });
        if interrupted {
            break;
        }
    }
    let groups = aggregate::groups(groups, &outcomes);
    Ok(Outcome {
        tasks: outcomes,
        groups,
        interrupted,
        seconds: start.elapsed().as_secs_f64(),
        tokens_processed: backend.tokens_processed() - tokens_at_start,
    })
}

/// The answers of a batch of documents, in document order.
struct Batch {
    answers: Vec<Answers>,
    /// Per generation document: (seconds, generated tokens).
    gen_times: Vec<Option<(f64, usize)>>,
    /// Requests sent to the backend.
    requests: usize,
}

/// Asks the backend for the answers of `instances`, one batch call per request primitive;
/// `progress` hears of each document as its answers arrive.
fn answer_batch(
    backend: &mut dyn Backend,
    instances: &[DocInstance],
    progress: &mut dyn Progress,
) -> Result<Batch, BackendError> {
    let mut answers: Vec<Option<Answers>> = vec![None; instances.len()];
    let mut gen_times = vec![None; instances.len()];
    let mut requests = 0;
    let (mut choice_docs, mut rolling_docs, mut gen_docs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, instance) in instances.iter().enumerate() {
        match &instance.kind {
            DocKind::Generate { .. } => gen_docs.push(i),
            DocKind::Rolling { .. } => rolling_docs.push(i),
            _ => choice_docs.push(i),
        }
    }
    if !choice_docs.is_empty() {
        let docs: Vec<Vec<LoglikelihoodRequest>> = choice_docs
            .iter()
            .map(|&i| instances[i].requests.clone())
            .collect();
        requests += docs.iter().map(Vec::len).sum::<usize>();
        let mut left: Vec<usize> = docs.iter().map(Vec::len).collect();
        let got = backend.loglikelihood_many(&docs, &mut |d, part| {
            left[d] -= part.len();
            if left[d] == 0 {
                progress.doc_done();
            }
        })?;
        for (&i, lls) in choice_docs.iter().zip(got) {
            answers[i] = Some(Answers::Loglikelihoods(lls));
        }
    }
    if !rolling_docs.is_empty() {
        let texts: Vec<String> = rolling_docs
            .iter()
            .map(|&i| match &instances[i].kind {
                DocKind::Rolling { text } => text.clone(),
                _ => unreachable!("only rolling documents"),
            })
            .collect();
        requests += texts.len();
        let got = backend.loglikelihood_rolling_many(&texts, &mut |_, _| progress.doc_done())?;
        for (&i, r) in rolling_docs.iter().zip(got) {
            answers[i] = Some(Answers::Rolling(r));
        }
    }
    if !gen_docs.is_empty() {
        let gen_requests: Vec<GenerationRequest> = gen_docs
            .iter()
            .map(|&i| match &instances[i].kind {
                DocKind::Generate { request } => request.clone(),
                _ => unreachable!("only generation documents"),
            })
            .collect();
        requests += gen_requests.len();
        let start = Instant::now();
        let got = backend.generate_until_many(&gen_requests, &mut |_, _| progress.doc_done())?;
        // Documents generated together share the wall time evenly.
        let seconds = start.elapsed().as_secs_f64() / gen_docs.len() as f64;
        for (&i, g) in gen_docs.iter().zip(got) {
            gen_times[i] = Some((seconds, g.iter().map(|g| g.tokens).sum()));
            answers[i] = Some(Answers::Generations(g));
        }
    }
    Ok(Batch {
        answers: answers
            .into_iter()
            .map(|a| a.expect("every document answered"))
            .collect(),
        gen_times,
        requests,
    })
}

fn describe_docs(docs: &std::ops::Range<usize>) -> String {
    if docs.len() == 1 {
        format!("doc {}", docs.start)
    } else {
        format!("docs {}..{}", docs.start, docs.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_and_fraction() {
        assert_eq!(Limit::Count(10).apply(5), 5);
        assert_eq!(Limit::Count(3).apply(5), 3);
        assert_eq!(Limit::Fraction(0.1).apply(101), 11);
        assert_eq!(Limit::Fraction(1.0).apply(7), 7);
    }
}
