//! A metric as one task reports it: one of assay's ([`MetricKind`]) with the task file's
//! settings, or one the task file defines itself through lm-eval hooks: a `metric: !function`
//! scoring each generated answer, a name its `process_results` hook fills, and an
//! `aggregation: !function` combining the documents' values.

use assay_core::{Aggregation, DocValue};
use serde_json::{json, Value};

use super::MetricKind;

/// How a task's metric combines its documents' values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricAggregation {
    /// One of assay's aggregations.
    Builtin(Aggregation),
    /// `aggregation: !function module.name` (`folder/module.name`): called once with every
    /// document's value; it has no standard error.
    Hook(String),
}

impl MetricAggregation {
    /// Its name as results show it (`mean`, or the hook's `module.name`).
    pub fn name(&self) -> String {
        match self {
            MetricAggregation::Builtin(a) => a.name().to_string(),
            MetricAggregation::Hook(path) => crate::hooks::display_name(path).to_string(),
        }
    }
}

/// A metric of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    name: String,
    kind: Option<MetricKind>,
    hook: Option<MetricHook>,
    aggregation: MetricAggregation,
    higher_is_better: bool,
}

/// A `metric: !function` hook with the options of its `metric_list` entry.
#[derive(Debug, Clone, PartialEq)]
struct MetricHook {
    path: String,
    kwargs: Value,
}

impl From<MetricKind> for Metric {
    fn from(kind: MetricKind) -> Metric {
        Metric {
            name: kind.name().to_string(),
            kind: Some(kind),
            hook: None,
            aggregation: MetricAggregation::Builtin(kind.aggregation()),
            higher_is_better: kind.higher_is_better(),
        }
    }
}

impl PartialEq<MetricKind> for Metric {
    fn eq(&self, kind: &MetricKind) -> bool {
        self.kind == Some(*kind)
    }
}

impl Metric {
    /// A metric assay does not compute: its values come from the task's `process_results`
    /// hook (`hook` is `None`) or from a `metric: !function` hook called with `kwargs`.
    pub fn defined_by_task(
        name: &str,
        hook: Option<(String, Value)>,
        aggregation: MetricAggregation,
        higher_is_better: bool,
    ) -> Metric {
        Metric {
            name: name.to_string(),
            kind: None,
            hook: hook.map(|(path, kwargs)| MetricHook { path, kwargs }),
            aggregation,
            higher_is_better,
        }
    }

    /// Sets the aggregation and direction a task file gives.
    pub fn with(mut self, aggregation: MetricAggregation, higher_is_better: bool) -> Metric {
        self.aggregation = aggregation;
        self.higher_is_better = higher_is_better;
        self
    }

    /// Its name in task files and results.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The metric assay computes, `None` for one the task's hooks define.
    pub fn kind(&self) -> Option<MetricKind> {
        self.kind
    }

    /// Whether a larger value is better.
    pub fn higher_is_better(&self) -> bool {
        self.higher_is_better
    }

    /// For pass@k metrics, k.
    pub fn pass_k(&self) -> Option<usize> {
        self.kind.and_then(MetricKind::pass_k)
    }

    /// How its values combine.
    pub fn aggregation(&self) -> &MetricAggregation {
        &self.aggregation
    }

    /// The aggregation's name as results show it (`mean`, or the hook's `module.name`).
    pub fn aggregation_name(&self) -> String {
        self.aggregation.name()
    }

    /// The task's value over `values`; an aggregation hook's failure or non-number is an
    /// error naming the hook.
    pub fn aggregate(&self, values: &[DocValue]) -> Result<f64, String> {
        match &self.aggregation {
            MetricAggregation::Builtin(a) => {
                a.check(values)
                    .map_err(|m| format!("metric `{}`: {m}", self.name))?;
                Ok(a.apply(values))
            }
            MetricAggregation::Hook(path) => {
                let items: Vec<Value> = values.iter().map(DocValue::as_json).collect();
                let failed = |m: String| {
                    format!(
                        "metric `{}`: aggregation `!function {}`: {m}",
                        self.name,
                        self.aggregation.name()
                    )
                };
                let out = crate::hooks::call(path, &[Value::Array(items)]).map_err(failed)?;
                number(&out).ok_or_else(|| failed(format!("returned {out}, not a number")))
            }
        }
    }

    /// The standard error of [`Metric::aggregate`]; `None` for an aggregation hook, as lm-eval
    /// reports `N/A` for it.
    pub fn stderr(&self, values: &[DocValue], bootstrap_iters: usize, seed: u64) -> Option<f64> {
        match &self.aggregation {
            MetricAggregation::Builtin(a) => a.stderr(values, bootstrap_iters, seed),
            MetricAggregation::Hook(_) => None,
        }
    }

    /// The `metric: !function` hook's path, for metrics that have one.
    pub(crate) fn hook(&self) -> Option<&str> {
        self.hook.as_ref().map(|h| h.path.as_str())
    }

    /// Scores one generated answer through the `metric: !function` hook, called as lm-eval
    /// calls it: `f(references=[gold], predictions=[answer], **options)`, else `f([gold,
    /// answer])` when the function takes one argument. A number is the value; a mapping gives
    /// the value under the metric's name; anything else is kept for an aggregation hook.
    pub(crate) fn score_with_hook(&self, gold: &Value, answer: &str) -> Result<DocValue, String> {
        let Some(hook) = &self.hook else {
            return Err(format!("metric `{}` has no `!function` hook", self.name));
        };
        let out = crate::hooks::metric(&hook.path, gold, answer, &hook.kwargs)?;
        let value = match &out {
            Value::Object(map) => map
                .get(&self.name)
                .cloned()
                .ok_or_else(|| format!("it returned a mapping without `{}`: {out}", self.name))?,
            other => other.clone(),
        };
        match (number(&value), &self.aggregation) {
            (Some(x), _) => Ok(DocValue::Scalar(x)),
            (None, MetricAggregation::Hook(_)) => Ok(DocValue::Item(value)),
            (None, MetricAggregation::Builtin(a)) => Err(format!(
                "it returned {value}, which the `{}` aggregation cannot combine: give the metric an `aggregation: !function` that takes these values",
                a.name()
            )),
        }
    }
}

/// A number, or a boolean as 0/1.
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// The function name of a hook path: lm-eval names a `!function` metric by its `__name__`.
pub(crate) fn function_name(path: &str) -> &str {
    crate::hooks::display_name(path)
        .rsplit('.')
        .next()
        .unwrap_or(path)
}

/// The options of a `metric_list` entry passed to its hook as keyword arguments.
pub(crate) fn hook_kwargs(pairs: &[(&str, Option<Value>)]) -> Value {
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        if let Some(v) = value {
            map.insert((*key).to_string(), v.clone());
        }
    }
    json!(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_metrics_keep_their_registry_settings() {
        let acc = Metric::from(MetricKind::Acc);
        assert_eq!(acc.name(), "acc");
        assert!(acc == MetricKind::Acc);
        assert_eq!(acc.aggregation_name(), "mean");
        assert!(acc.higher_is_better());
        let ppl = Metric::from(MetricKind::Perplexity);
        assert_eq!(ppl.aggregation_name(), "perplexity");
        assert!(!ppl.higher_is_better());
    }

    #[test]
    fn hook_names_are_the_function_names() {
        assert_eq!(function_name("/tasks/noticia/utils.rouge1"), "rouge1");
    }

    #[test]
    fn items_need_an_aggregation_hook() {
        let named = Metric::defined_by_task(
            "bleu",
            None,
            MetricAggregation::Builtin(Aggregation::Mean),
            true,
        );
        let values = [DocValue::Scalar(1.0), DocValue::Scalar(0.0)];
        assert_eq!(named.aggregate(&values).unwrap(), 0.5);
        assert!(named.stderr(&values, 0, 1).is_some());
    }
}
