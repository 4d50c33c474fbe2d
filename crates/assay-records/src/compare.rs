//! Comparing runs task by task against a baseline: values with standard errors, deltas, and a
//! significance test per task: McNemar's exact test where both runs scored the same documents
//! 0/1, the paired t-test for other per-document metrics, and a z-test on the two standard
//! errors where no per-sample lines pair up.

use std::collections::HashMap;

use assay_core::stats::{mcnemar_exact, paired_difference, unpaired_p_value};
use serde::Serialize;
use serde_json::Value;

use crate::registry::{Registry, Run, SampleLine};
use crate::RecordsError;

/// A compared run.
#[derive(Debug, Clone, Serialize)]
pub struct RunHeader {
    /// Registry id.
    pub id: i64,
    /// Label, else `run N`.
    pub name: String,
    /// The model.
    pub model: String,
    /// Evaluation date.
    pub date: Option<String>,
    /// The tool that produced it.
    pub tool: String,
}

/// One metric of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The aggregate value.
    pub value: f64,
    /// Its standard error.
    pub stderr: Option<f64>,
    /// Documents evaluated.
    pub n: Option<usize>,
    /// Documents scored 1 (0/1 metrics).
    pub correct: Option<u64>,
    /// Mean wall seconds per document of the task.
    pub seconds_per_doc: Option<f64>,
}

/// Which test gave a delta's p-value.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum Test {
    /// McNemar's exact test on `n` paired documents: `b` right only in the baseline, `c` right
    /// only in this run.
    Mcnemar {
        /// Paired documents.
        n: usize,
        /// Right in the baseline only.
        b: u64,
        /// Right in this run only.
        c: u64,
    },
    /// Paired t-test on `n` documents; `stderr` of the mean difference.
    PairedT {
        /// Paired documents.
        n: usize,
        /// Mean paired difference.
        mean: f64,
        /// Its standard error.
        stderr: f64,
    },
    /// z-test on the two standard errors (no per-sample lines to pair).
    Unpaired,
    /// No test possible (no per-sample lines, no standard errors).
    None,
}

/// What a delta means once tested.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly better than the baseline.
    Improved,
    /// Significantly worse than the baseline.
    Regressed,
    /// Not significant.
    Unchanged,
    /// Could not be tested.
    Untested,
}

/// A run's change against the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Delta {
    /// Value minus the baseline's.
    pub diff: f64,
    /// Standard error of the difference: of the paired differences where documents pair up,
    /// else from the two standard errors.
    pub stderr: Option<f64>,
    /// How it was tested.
    #[serde(flatten)]
    pub test: Test,
    /// Two-sided p-value.
    pub p_value: Option<f64>,
    /// Significant improvement, regression, or neither.
    pub verdict: Verdict,
}

/// One (task, metric, filter) across the runs.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Task or group.
    pub task: String,
    /// Metric name.
    pub metric: String,
    /// Filter name.
    pub filter: String,
    /// Whether the task is a group.
    pub is_group: bool,
    /// Whether higher values are better.
    pub higher_is_better: bool,
    /// Whether values are proportions (shown as percentages, deltas in points).
    pub proportion: bool,
    /// Per run, in run order.
    pub cells: Vec<Option<Cell>>,
    /// Per run against the baseline (`None` for the baseline and runs without the metric).
    pub deltas: Vec<Option<Delta>>,
}

/// A comparison of runs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The runs: the baseline first, then the others in the order given.
    pub runs: Vec<RunHeader>,
    /// Index of the baseline in `runs` (always 0).
    pub baseline: usize,
    /// Significance level.
    pub alpha: f64,
    /// Rows, in the baseline's task order.
    pub rows: Vec<Row>,
    /// Tasks left out, and why.
    pub notes: Vec<String>,
}

impl Comparison {
    /// The baseline's header.
    pub fn baseline_run(&self) -> &RunHeader {
        &self.runs[self.baseline]
    }
}

/// Per-document values of one metric: (doc_id, doc_hash) -> value.
type DocValues = HashMap<(u64, Option<String>), f64>;

fn doc_values(lines: &[SampleLine], metric: &str, filter: &str) -> DocValues {
    lines
        .iter()
        .filter(|l| l.filter == filter)
        .filter_map(|l| {
            let v = match l.line.get(metric)? {
                Value::Bool(b) => f64::from(u8::from(*b)),
                other => other.as_f64()?,
            };
            Some(((l.doc_id, l.doc_hash.clone()), v))
        })
        .collect()
}

fn is_binary(values: &DocValues) -> bool {
    values.values().all(|v| *v == 0.0 || *v == 1.0)
}

/// The test of `run` against `base` on their shared documents, if any pair.
fn paired_test(base: &DocValues, run: &DocValues) -> Option<(Test, f64, f64)> {
    let pairs: Vec<(f64, f64)> = base
        .iter()
        .filter_map(|(k, b)| run.get(k).map(|r| (*b, *r)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    if pairs
        .iter()
        .all(|(a, b)| (*a == 0.0 || *a == 1.0) && (*b == 0.0 || *b == 1.0))
    {
        let b = pairs.iter().filter(|(x, y)| *x == 1.0 && *y == 0.0).count() as u64;
        let c = pairs.iter().filter(|(x, y)| *x == 0.0 && *y == 1.0).count() as u64;
        let direction = c as f64 - b as f64;
        return Some((
            Test::Mcnemar {
                n: pairs.len(),
                b,
                c,
            },
            mcnemar_exact(b, c),
            direction,
        ));
    }
    let diffs: Vec<f64> = pairs.iter().map(|(a, b)| b - a).collect();
    let d = paired_difference(&diffs);
    Some((
        Test::PairedT {
            n: d.n,
            mean: d.mean,
            stderr: d.stderr,
        },
        d.p_value,
        d.mean,
    ))
}

/// Compares `ids` against `baseline`: the baseline first, then the others in the order given.
pub fn compare(
    registry: &Registry,
    ids: &[i64],
    baseline: i64,
    alpha: f64,
) -> Result<Comparison, RecordsError> {
    let mut order: Vec<i64> = vec![baseline];
    for id in ids {
        if !order.contains(id) {
            order.push(*id);
        }
    }
    if order.len() < 2 {
        return Err(RecordsError::NothingToCompare(format!(
            "one run ({}) is nothing to compare: give two or more runs (see `assay runs list`)",
            order[0]
        )));
    }
    let runs: Vec<Run> = order
        .iter()
        .map(|id| registry.run(*id))
        .collect::<Result<_, _>>()?;
    let base_index = 0;
    let base = &runs[base_index];
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for run in &runs {
        for task in run.tasks.iter().filter(|t| t.alarm.is_some()) {
            let alarm = task.alarm.as_deref().unwrap_or_default();
            notes.push(format!("(!) {}, {}: {alarm}", run.name(), task.name));
        }
    }
    for task in &base.tasks {
        let others = runs
            .iter()
            .enumerate()
            .filter(|(i, r)| *i != base_index && r.task(&task.name).is_some())
            .count();
        if others == 0 {
            notes.push(format!("{}: only in the baseline", task.name));
            continue;
        }
        // Each run's per-sample lines of the task, read once for all its metrics.
        let task_lines: Vec<Vec<SampleLine>> = runs
            .iter()
            .map(|r| {
                if r.sample_tasks.contains(&task.name) {
                    registry.samples(r.id, &task.name)
                } else {
                    Ok(Vec::new())
                }
            })
            .collect::<Result<_, _>>()?;
        for m in &task.metrics {
            let higher_is_better = task.higher_is_better(&m.metric);
            let mut cells = Vec::new();
            let mut per_doc = Vec::new();
            for (i, run) in runs.iter().enumerate() {
                let found = run.task(&task.name).and_then(|t| {
                    t.metrics
                        .iter()
                        .find(|x| x.metric == m.metric && x.filter == m.filter)
                        .map(|x| (t, x))
                });
                let Some((t, x)) = found else {
                    cells.push(None);
                    per_doc.push(DocValues::new());
                    continue;
                };
                let values = doc_values(&task_lines[i], &m.metric, &m.filter);
                let correct = if !values.is_empty() && is_binary(&values) {
                    Some(values.values().filter(|v| **v == 1.0).count() as u64)
                } else {
                    None
                };
                cells.push(Some(Cell {
                    value: x.value,
                    stderr: x.stderr,
                    n: t.n,
                    correct,
                    seconds_per_doc: t.seconds_per_doc(),
                }));
                per_doc.push(values);
            }
            let proportion = higher_is_better
                && cells
                    .iter()
                    .flatten()
                    .all(|c| (0.0..=1.0).contains(&c.value));
            let base_cell = cells[base_index]
                .clone()
                .expect("the baseline has the metric");
            let deltas = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let cell = cell.as_ref()?;
                    if i == base_index {
                        return None;
                    }
                    let diff = cell.value - base_cell.value;
                    let (test, p, direction) = match paired_test(&per_doc[base_index], &per_doc[i])
                    {
                        Some(t) => t,
                        None => match (base_cell.stderr, cell.stderr) {
                            (Some(sa), Some(sb)) => (
                                Test::Unpaired,
                                unpaired_p_value(base_cell.value, sa, cell.value, sb),
                                diff,
                            ),
                            _ => (Test::None, f64::NAN, diff),
                        },
                    };
                    let verdict = if p.is_nan() {
                        Verdict::Untested
                    } else if p < alpha && direction != 0.0 {
                        if (direction > 0.0) == higher_is_better {
                            Verdict::Improved
                        } else {
                            Verdict::Regressed
                        }
                    } else {
                        Verdict::Unchanged
                    };
                    let stderr = match &test {
                        Test::Mcnemar { n, b, c } if *n > 1 => {
                            let n = *n as f64;
                            let mean = (*c as f64 - *b as f64) / n;
                            let variance = ((*b + *c) as f64 / n - mean * mean) * n / (n - 1.0);
                            Some((variance / n).sqrt())
                        }
                        Test::PairedT { stderr, .. } if stderr.is_finite() => Some(*stderr),
                        Test::Unpaired => base_cell
                            .stderr
                            .zip(cell.stderr)
                            .map(|(a, b)| (a * a + b * b).sqrt()),
                        _ => None,
                    };
                    Some(Delta {
                        diff,
                        stderr,
                        test,
                        p_value: (!p.is_nan()).then_some(p),
                        verdict,
                    })
                })
                .collect();
            rows.push(Row {
                task: task.name.clone(),
                metric: m.metric.clone(),
                filter: m.filter.clone(),
                is_group: task.is_group,
                higher_is_better,
                proportion,
                cells,
                deltas,
            });
        }
    }
    for (i, run) in runs.iter().enumerate() {
        if i == base_index {
            continue;
        }
        for t in &run.tasks {
            if base.task(&t.name).is_none() {
                notes.push(format!(
                    "{}: in {} but not in the baseline {}",
                    t.name,
                    run.name(),
                    base.name()
                ));
            }
        }
    }
    if rows.is_empty() {
        let list = |r: &Run| {
            r.tasks
                .iter()
                .filter(|t| !t.is_group)
                .map(|t| t.name.as_str())
                .take(6)
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(RecordsError::NothingToCompare(format!(
            "the runs have no task in common with the baseline {} (it has {}); {}",
            base.name(),
            list(base),
            runs.iter()
                .enumerate()
                .filter(|(i, _)| *i != base_index)
                .map(|(_, r)| format!("{} has {}", r.name(), list(r)))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    Ok(Comparison {
        runs: runs
            .iter()
            .map(|r| RunHeader {
                id: r.id,
                name: r.name(),
                model: r.provenance.model.clone(),
                date: r.provenance.date.clone(),
                tool: r.provenance.tool.clone(),
            })
            .collect(),
        baseline: base_index,
        alpha,
        rows,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewRun;
    use serde_json::json;

    /// Records a run of `task` whose document i scored `scores[i]`.
    fn record(
        reg: &mut Registry,
        dir: &std::path::Path,
        name: &str,
        task: &str,
        scores: &[f64],
    ) -> i64 {
        let n = scores.len() as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let se = (mean * (1.0 - mean) / (n - 1.0)).sqrt();
        let samples = dir.join(format!("{name}.jsonl"));
        let lines: String = scores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{}\n",
                    json!({"doc_id": i, "doc_hash": format!("h{i}"), "filter": "none", "acc": s})
                )
            })
            .collect();
        std::fs::write(&samples, lines).unwrap();
        reg.record(&NewRun {
            results_text: json!({"results": {task: {"acc,none": mean, "acc_stderr,none": se}},
                                 "n-samples": {task: {"original": 100, "effective": scores.len()}},
                                 "model_name": name})
            .to_string(),
            origin: name.into(),
            samples: vec![(task.to_string(), samples)],
            label: Some(name.into()),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn paired_regressions_are_found_by_mcnemar() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::open(&dir.path().join("r.sqlite")).unwrap();
        // 60 documents; the fine-tune loses 12 that the base got right and gains 1.
        let base: Vec<f64> = (0..60).map(|i| f64::from(i % 2 == 0)).collect();
        let mut ft = base.clone();
        let mut lost = 0;
        for (i, v) in ft.iter_mut().enumerate() {
            if *v == 1.0 && lost < 12 {
                *v = 0.0;
                lost += 1;
            } else if i == 1 {
                *v = 1.0;
            }
        }
        let a = record(&mut reg, dir.path(), "BASE", "arc_easy", &base);
        let b = record(&mut reg, dir.path(), "FT", "arc_easy", &ft);
        let c = compare(&reg, &[a, b], a, 0.05).unwrap();
        assert_eq!(c.rows.len(), 1);
        let row = &c.rows[0];
        assert!(row.proportion);
        assert_eq!(row.cells[0].as_ref().unwrap().correct, Some(30));
        let d = row.deltas[1].as_ref().unwrap();
        assert_eq!(d.test, Test::Mcnemar { n: 60, b: 12, c: 1 });
        assert!((d.p_value.unwrap() - mcnemar_exact(12, 1)).abs() < 1e-12);
        assert_eq!(d.verdict, Verdict::Regressed);
        // Differences: 12 of -1, 1 of +1, 47 of 0.
        let diffs: Vec<f64> = (0..60)
            .map(|i| {
                if i < 12 {
                    -1.0
                } else if i == 12 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let expected = assay_core::stats::mean_stderr(&diffs);
        assert!((d.stderr.unwrap() - expected).abs() < 1e-12);
        assert!((d.diff - (19.0 / 60.0 - 0.5)).abs() < 1e-12);
        // Against itself nothing changes.
        let same = record(&mut reg, dir.path(), "BASE2", "arc_easy", &{
            let mut x = base.clone();
            x.swap(0, 1);
            x
        });
        let c = compare(&reg, &[a, same], a, 0.05).unwrap();
        assert_eq!(
            c.rows[0].deltas[1].as_ref().unwrap().verdict,
            Verdict::Unchanged
        );
    }

    #[test]
    fn runs_without_a_common_task_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut reg = Registry::open(&dir.path().join("r.sqlite")).unwrap();
        let a = record(&mut reg, dir.path(), "A", "arc_easy", &[1.0, 0.0]);
        let b = record(&mut reg, dir.path(), "B", "gsm8k", &[1.0, 0.0]);
        let err = compare(&reg, &[a, b], a, 0.05).unwrap_err().to_string();
        assert!(
            err.contains("no task in common") && err.contains("B has gsm8k"),
            "{err}"
        );
        let err = compare(&reg, &[a], a, 0.05).unwrap_err().to_string();
        assert!(err.contains("nothing to compare"), "{err}");
    }
}
