//! What a task file sets beyond its templates, checked when the task is prepared: its metrics,
//! the `exact_match` options and the generation request.

use assay_core::{Aggregation, GenerationRequest, Sampling};
use serde_yaml::Value as Yaml;

use super::GENERATION_SEED;
use crate::answers::ExactMatch;
use crate::metrics::{self, Metric, MetricAggregation, MetricKind};
use crate::spec::{OutputType, TaskSpec};
use crate::TaskError;

/// The task's metrics, in `metric_list` order (the output type's defaults without one). A name
/// assay does not compute is allowed where the task's `process_results` hook scores; a
/// `!function` metric scores generated answers in the user's Python.
pub(super) fn metrics_for(
    name: &str,
    spec: &TaskSpec,
    output_type: OutputType,
) -> Result<Vec<Metric>, TaskError> {
    let Some(list) = &spec.metric_list else {
        return Ok(metrics::defaults(output_type)
            .into_iter()
            .map(Metric::from)
            .collect());
    };
    let invalid = |message: String| TaskError::Invalid {
        task: name.into(),
        message,
    };
    let allowed = metrics::allowed(output_type);
    let scored_by_hook = spec.process_results.is_some();
    list.iter()
        .map(|m| {
            let metric_name = m.name();
            let at = |e: String| invalid(format!("metric_list, metric `{metric_name}`: {e}"));
            let aggregation = match &m.aggregation {
                None => None,
                Some(Yaml::String(agg)) => Some(MetricAggregation::Builtin(
                    Aggregation::parse(agg).ok_or_else(|| {
                        at(format!(
                            "aggregation `{agg}` is not one assay has (known: {}; or a `!function` aggregation)",
                            Aggregation::ALL.map(Aggregation::name).join(", ")
                        ))
                    })?,
                )),
                Some(Yaml::Tagged(t)) if t.tag == "function" => Some(MetricAggregation::Hook(
                    t.value.as_str().unwrap_or_default().to_string(),
                )),
                Some(other) => {
                    return Err(at(format!(
                        "aggregation must be a name or a `!function`, not {}",
                        serde_yaml::to_string(other).unwrap_or_default().trim()
                    )))
                }
            };
            let hook = match &m.metric {
                Yaml::Tagged(t) if t.tag == "function" => {
                    Some(t.value.as_str().unwrap_or_default().to_string())
                }
                Yaml::String(_) => None,
                other => {
                    return Err(at(format!(
                        "metric must be a name or a `!function`, not {}",
                        serde_yaml::to_string(other).unwrap_or_default().trim()
                    )))
                }
            };
            let known = MetricKind::parse(&metric_name, output_type);
            // Options lm-eval hands to a metric function: meaningful for a `!function` metric,
            // and changing nothing where lm-eval calls none (multiple choice, process_results).
            let function_options = [
                ("average", m.average.is_some()),
                ("hf_evaluate", m.hf_evaluate.is_some()),
                ("weight_by_size", m.weight_by_size.is_some()),
            ];
            if hook.is_none() && output_type != OutputType::MultipleChoice && !scored_by_hook {
                if let Some((key, _)) = function_options.iter().find(|(_, set)| *set) {
                    return Err(at(format!(
                        "`{key}` is an option of lm-eval's metric functions (Hugging Face `evaluate`), which assay does not have for {} tasks; drop it or score with a `!function` metric",
                        output_type.name()
                    )));
                }
            }
            let mean = MetricAggregation::Builtin(Aggregation::Mean);
            if let (None, Ok(kind)) = (&hook, &known) {
                if allowed.contains(kind) {
                    let own = MetricAggregation::Builtin(kind.aggregation());
                    let other = aggregation
                        .as_ref()
                        .filter(|a| **a != own && !matches!(a, MetricAggregation::Hook(_)));
                    if let Some(agg) = other {
                        if !scored_by_hook {
                            return Err(at(format!(
                                "assay aggregates it with `{}`, not `{}`; drop the aggregation key or score it with a `!function` metric",
                                kind.aggregation().name(),
                                agg.name()
                            )));
                        }
                    }
                    let higher = m.higher_is_better.unwrap_or(kind.higher_is_better());
                    return Ok(Metric::from(*kind).with(aggregation.unwrap_or(own), higher));
                }
            }
            let higher = m.higher_is_better.unwrap_or(true);
            if scored_by_hook {
                // Filled by the task's process_results hook.
                let agg = aggregation.unwrap_or(mean);
                return Ok(Metric::defined_by_task(&metric_name, None, agg, higher));
            }
            match (hook, known) {
                (None, Ok(_)) => Err(at(format!(
                    "it does not apply to {} tasks",
                    output_type.name()
                ))),
                (None, Err(e)) => Err(at(format!(
                    "{e}; a metric of the task's own needs a `!function` metric or a process_results hook"
                ))),
                (Some(path), _) if output_type == OutputType::GenerateUntil => {
                    let kwargs = metrics::hook_kwargs(&[
                        ("ignore_case", m.ignore_case.map(Into::into)),
                        ("ignore_punctuation", m.ignore_punctuation.map(Into::into)),
                        (
                            "regexes_to_ignore",
                            m.regexes_to_ignore.clone().map(Into::into),
                        ),
                        (
                            "average",
                            m.average.as_ref().and_then(|v| serde_json::to_value(v).ok()),
                        ),
                        ("weight_by_size", m.weight_by_size.map(Into::into)),
                        (
                            "k",
                            m.k.as_ref().and_then(|v| serde_json::to_value(v).ok()),
                        ),
                    ]);
                    let agg = aggregation.unwrap_or(mean);
                    Ok(Metric::defined_by_task(&metric_name, Some((path, kwargs)), agg, higher))
                }
                (Some(_), _) => Err(at(format!(
                    "a `!function` metric scores generated answers: it applies to generate_until tasks, not {}",
                    output_type.name()
                ))),
            }
        })
        .collect()
}

/// The `exact_match` entry's options.
pub(super) fn exact_match_options(spec: &TaskSpec) -> Result<ExactMatch, String> {
    let Some(entry) = spec
        .metric_list
        .iter()
        .flatten()
        .find(|m| m.name() == "exact_match")
    else {
        return Ok(ExactMatch::default());
    };
    let regexes = entry
        .regexes_to_ignore
        .iter()
        .flatten()
        .map(|r| {
            fancy_regex::Regex::new(r)
                .map_err(|e| format!("exact_match: invalid regexes_to_ignore entry {r:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(ExactMatch {
        ignore_case: entry.ignore_case.unwrap_or(false),
        ignore_punctuation: entry.ignore_punctuation.unwrap_or(false),
        regexes_to_ignore: regexes,
    })
}

/// The generation request of a task, without its context; checked before any inference.
pub(super) fn generation_template(
    spec: &TaskSpec,
    fewshot_delimiter: &str,
) -> Result<GenerationRequest, String> {
    let kw = spec.generation_kwargs.clone().unwrap_or_default();
    let until = match &kw.until {
        None => vec![fewshot_delimiter.to_string()],
        Some(u) => u.to_vec(),
    };
    // `until: []` generates to the end-of-text token or max_gen_toks, as in lm-eval.
    if until.iter().any(String::is_empty) {
        return Err(
            "generation_kwargs.until has an empty stop string: every stop string needs text".into(),
        );
    }
    let max_gen_toks = kw.max_new_tokens.or(kw.max_gen_toks).unwrap_or(256);
    if max_gen_toks == 0 {
        return Err("generation_kwargs.max_gen_toks must be at least 1".into());
    }
    let temperature = kw.temperature.unwrap_or(0.0);
    if temperature.is_nan() || temperature < 0.0 {
        return Err(format!(
            "generation_kwargs.temperature must be >= 0, not {temperature}"
        ));
    }
    let top_p = kw.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(format!(
            "generation_kwargs.top_p must be in (0, 1], not {top_p}"
        ));
    }
    let sampled = kw.do_sample.unwrap_or(temperature > 0.0);
    if sampled && temperature == 0.0 {
        return Err("generation_kwargs.do_sample is true but temperature is 0".into());
    }
    let n = spec.repeats.unwrap_or(1) as usize;
    if n == 0 {
        return Err("repeats must be at least 1".into());
    }
    Ok(GenerationRequest {
        context: String::new(),
        until,
        max_gen_toks,
        sampling: Sampling {
            temperature: if sampled { temperature } else { 0.0 },
            top_p,
            top_k: kw.top_k.unwrap_or(0),
            seed: kw.seed.unwrap_or(GENERATION_SEED),
        },
        n,
    })
}
