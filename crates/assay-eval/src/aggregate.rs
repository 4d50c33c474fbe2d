//! Task and group aggregates with standard errors.

use assay_core::{stats, Aggregation, DocValue};
use assay_tasks::GroupNode;
use assay_tasks::{Metric, MetricAggregation, TaskError};

use crate::TaskOutcome;

/// Seed of the bootstrap resampling behind standard errors that have no closed form.
pub const BOOTSTRAP_SEED: u64 = 1234;

/// One metric of a task or group.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    /// The metric.
    pub metric: Metric,
    /// The filter pipeline the value is for (`none` for log-likelihood tasks).
    pub filter: String,
    /// Its aggregate value.
    pub value: f64,
    /// Standard error (`None` when it cannot be estimated).
    pub stderr: Option<f64>,
}

/// Aggregates per-document values of `task`, one result per (metric, filter) key; a task's
/// own aggregation hook that fails is an error naming it.
pub(crate) fn task_metrics(
    task: &str,
    keys: &[(Metric, String)],
    values: &[Vec<DocValue>],
    bootstrap_iters: usize,
) -> Result<Vec<MetricResult>, TaskError> {
    keys.iter()
        .zip(values)
        .filter(|(_, vals)| !vals.is_empty())
        .map(|((metric, filter), vals)| {
            let value = metric
                .aggregate(vals)
                .map_err(|message| TaskError::Invalid {
                    task: task.to_string(),
                    message: format!("filter {filter}: {message}"),
                })?;
            Ok(MetricResult {
                metric: metric.clone(),
                filter: filter.clone(),
                value,
                stderr: metric.stderr(vals, bootstrap_iters, BOOTSTRAP_SEED),
            })
        })
        .collect()
}

/// A group's aggregate over its members.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupResult {
    /// Group name.
    pub name: String,
    /// Display name.
    pub alias: String,
    /// Version from the group file.
    pub version: f64,
    /// Leaf tasks (all levels below).
    pub tasks: Vec<String>,
    /// Direct members as written.
    pub children: Vec<String>,
    /// Documents under the group.
    pub size: usize,
    /// Aggregated metrics.
    pub metrics: Vec<MetricResult>,
    /// Per-document values of every leaf, per (metric, filter) (for the parents of this group).
    per_doc: Vec<(Metric, String, Vec<f64>)>,
}

/// Aggregates groups, members before parents. Size-weighted means are the mean over all the
/// documents below the group, and their standard error is that of this pooled sample (exact,
/// where lm-eval approximates it from the members' errors); unweighted means average the
/// members' values and combine their errors as independent.
pub(crate) fn groups(nodes: &[GroupNode], tasks: &[TaskOutcome]) -> Vec<GroupResult> {
    let mut done: Vec<GroupResult> = Vec::new();
    for node in nodes {
        let mut leaves = Vec::new();
        let mut size = 0;
        struct Member {
            values: Vec<(Metric, String, Vec<f64>)>,
            results: Vec<MetricResult>,
        }
        let mut members = Vec::new();
        for child in &node.children {
            if let Some(t) = tasks.iter().find(|t| &t.name == child) {
                leaves.push(t.name.clone());
                size += t.n_effective;
                let values = t
                    .keys
                    .iter()
                    .zip(&t.values)
                    .map(|((m, f), v)| (m.clone(), f.clone(), v.iter().map(scalar).collect()))
                    .collect();
                members.push(Member {
                    values,
                    results: t.metrics.clone(),
                });
            } else if let Some(g) = done.iter().find(|g| &g.name == child) {
                leaves.extend(g.tasks.iter().cloned());
                size += g.size;
                members.push(Member {
                    values: g.per_doc.clone(),
                    results: g.metrics.clone(),
                });
            }
        }
        let mut metrics = Vec::new();
        let mut per_doc = Vec::new();
        for agg in &node.spec.aggregate_metric_list {
            // Every filter under which some member reports the metric; members without it are
            // left out, as lm-eval does (the leaderboard group mixes acc, acc_norm, ...).
            let mut filters: Vec<(Metric, String)> = Vec::new();
            for (k, f, _) in members.iter().flat_map(|m| &m.values) {
                let wanted = k.name() == agg.metric && agg.covers_filter(f);
                if wanted && !filters.iter().any(|(m, g)| m.name() == k.name() && g == f) {
                    filters.push((k.clone(), f.clone()));
                }
            }
            for (metric, filter) in filters {
                let per_member: Vec<Vec<f64>> = members
                    .iter()
                    .filter_map(|m| {
                        m.values
                            .iter()
                            .find(|(k, f, _)| k.name() == metric.name() && *f == filter)
                            .map(|(_, _, v)| v.clone())
                    })
                    .collect();
                let sizes: Vec<f64> = per_member.iter().map(|v| v.len() as f64).collect();
                let pooled = per_member.concat();
                if pooled.is_empty() {
                    continue;
                }
                let is_mean =
                    *metric.aggregation() == MetricAggregation::Builtin(Aggregation::Mean);
                let result = if agg.weight_by_size && !is_mean {
                    // A corpus-level metric (F1, perplexity...): lm-eval's size-weighted mean
                    // of the members' values; its pooled error has no meaning here.
                    let values: Vec<f64> = members
                        .iter()
                        .filter_map(|m| {
                            m.results
                                .iter()
                                .find(|r| r.metric.name() == metric.name() && r.filter == filter)
                                .map(|r| r.value)
                        })
                        .collect();
                    let total: f64 = sizes.iter().sum();
                    MetricResult {
                        metric: metric.clone(),
                        filter: filter.clone(),
                        value: values.iter().zip(&sizes).map(|(v, n)| v * n).sum::<f64>() / total,
                        stderr: None,
                    }
                } else if agg.weight_by_size {
                    MetricResult {
                        metric: metric.clone(),
                        filter: filter.clone(),
                        value: stats::mean(&pooled),
                        stderr: (pooled.len() > 1).then(|| stats::mean_stderr(&pooled)),
                    }
                } else {
                    let parts: Vec<&MetricResult> = members
                        .iter()
                        .filter_map(|m| {
                            m.results
                                .iter()
                                .find(|r| r.metric.name() == metric.name() && r.filter == filter)
                        })
                        .collect();
                    let k = parts.len() as f64;
                    MetricResult {
                        metric: metric.clone(),
                        filter: filter.clone(),
                        value: parts.iter().map(|r| r.value).sum::<f64>() / k,
                        stderr: parts
                            .iter()
                            .map(|r| r.stderr.map(|s| s * s))
                            .sum::<Option<f64>>()
                            .map(|v| v.sqrt() / k),
                    }
                };
                metrics.push(result);
                per_doc.push((metric, filter, pooled));
            }
        }
        done.push(GroupResult {
            name: node.spec.group.clone(),
            alias: node
                .spec
                .group_alias
                .clone()
                .unwrap_or_else(|| node.spec.group.clone()),
            version: node
                .spec
                .metadata
                .as_ref()
                .and_then(|m| m.get("version"))
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0),
            tasks: leaves,
            children: node.children.clone(),
            size,
            metrics,
            per_doc,
        });
    }
    done
}

fn scalar(v: &DocValue) -> f64 {
    match *v {
        DocValue::Scalar(x) => x,
        DocValue::Weighted { logprob, .. } => logprob,
        DocValue::Pair { .. } => f64::NAN,
        DocValue::Item(ref item) => item.as_f64().unwrap_or(f64::NAN),
    }
}
