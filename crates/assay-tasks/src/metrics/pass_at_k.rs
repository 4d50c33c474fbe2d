//! Code generation: pass@k, judged by running each generated program against the task's tests
//! in the sandbox.

use assay_core::DocValue;
use assay_sandbox::{Job, Outcome, Sandbox};
use serde_json::{json, Value};

use super::MetricKind;
use crate::TaskError;

/// Judges each answer in the sandbox (HumanEval: the prompt is trusted, the prompt and the
/// completion are the solution, `tests` holds the tests and `check(entry_point)`); returns the
/// values of `metrics` and how each program ended (`[{"outcome", "kind"?, "seconds"}]`, for the
/// sample log). A sandbox that fails to start is an error that stops the run: its items are
/// never scored 0.
pub(crate) fn score(
    metrics: &[MetricKind],
    sandbox: Option<&Sandbox>,
    context: &str,
    tests: &str,
    answers: &[String],
    describe: impl Fn(String) -> TaskError,
) -> Result<(Vec<DocValue>, Value), TaskError> {
    let jobs: Vec<Job> = answers
        .iter()
        .map(|a| Job {
            prompt: context.to_string(),
            solution: format!("{context}{a}\n"),
            test: format!("{tests}\n"),
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = match sandbox {
        Some(sandbox) => sandbox.run_many(&jobs, threads),
        None => Vec::new(),
    };
    let runs = runs
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| describe(e.to_string()))?;
    let mut passed = 0;
    let mut records = Vec::new();
    for e in &runs {
        passed += usize::from(e.outcome == Outcome::Passed);
        let mut r = json!({
            "outcome": e.outcome.label(),
            "seconds": (e.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        });
        match &e.outcome {
            Outcome::Failed { kind, message } => {
                r["kind"] = kind.clone().into();
                r["message"] = message.clone().into();
            }
            Outcome::Killed { limit } => r["limit"] = limit.clone().into(),
            _ => {}
        }
        records.push(r);
    }
    let values = metrics
        .iter()
        .map(|m| {
            let k = m.pass_k().unwrap_or(1);
            DocValue::Scalar(assay_sandbox::pass_at_k(answers.len(), passed, k).unwrap_or(0.0))
        })
        .collect();
    Ok((values, Value::Array(records)))
}
