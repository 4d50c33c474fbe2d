//! What a task file sets beyond its templates, checked when the task is prepared: its metrics,
//! the `exact_match` options and the generation request.

use assay_core::{GenerationRequest, Sampling};

use super::GENERATION_SEED;
use crate::answers::ExactMatch;
use crate::metrics::{self, MetricKind};
use crate::spec::{OutputType, TaskSpec};
use crate::TaskError;

pub(super) fn metrics_for(
    name: &str,
    spec: &TaskSpec,
    output_type: OutputType,
) -> Result<Vec<MetricKind>, TaskError> {
    let Some(list) = &spec.metric_list else {
        return Ok(metrics::defaults(output_type));
    };
    let allowed = metrics::allowed(output_type);
    list.iter()
        .map(|m| {
            let kind = MetricKind::parse(&m.metric).map_err(|e| TaskError::Invalid {
                task: name.into(),
                message: e.to_string(),
            })?;
            if !allowed.contains(&kind) {
                return Err(TaskError::Invalid {
                    task: name.into(),
                    message: format!(
                        "metric `{}` does not apply to {} tasks",
                        m.metric,
                        output_type.name()
                    ),
                });
            }
            Ok(kind)
        })
        .collect()
}

/// The `exact_match` entry's options.
pub(super) fn exact_match_options(spec: &TaskSpec) -> Result<ExactMatch, String> {
    let Some(entry) = spec
        .metric_list
        .iter()
        .flatten()
        .find(|m| m.metric == "exact_match")
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
    if until.is_empty() || until.iter().any(String::is_empty) {
        return Err(
            "generation_kwargs.until is empty: give at least one non-empty stop string".into(),
        );
    }
    let max_gen_toks = kw.max_gen_toks.unwrap_or(256);
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
