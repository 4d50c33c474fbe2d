//! The results document, in lm-eval's schema (DESIGN.md section 5) so that lm-eval's readers
//! accept it, with assay's provenance under the extra key `assay`.

use assay_backend::BackendInfo;
use serde_json::{json, Map, Value};

use crate::aggregate::MetricResult;
use crate::{Limit, Outcome};

/// What produced the results.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The backend and model.
    pub backend: BackendInfo,
    /// The command line as typed.
    pub command_line: Vec<String>,
    /// assay's version.
    pub tool_version: String,
    /// The git commit assay was built from, when known.
    pub git_hash: Option<String>,
    /// The document limit.
    pub limit: Option<Limit>,
    /// Bootstrap resamples.
    pub bootstrap_iters: usize,
    /// Start time, seconds since the Unix epoch.
    pub date: f64,
    /// The chat template used, if prompts were rendered through one.
    pub chat: Option<ChatInfo>,
    /// How requests were answered: request-cache hits and misses, HTTP counters.
    pub requests: Value,
    /// The `--gen-kwargs` overrides as given (key, value), applied to every generation task.
    pub gen_kwargs: Vec<(String, String)>,
    /// lm-eval's four seeds (`--seed`): the hook worker's generators and the few-shot sampler.
    pub seeds: assay_tasks::Seeds,
}

/// How prompts were wrapped in the model's chat format.
#[derive(Debug, Clone)]
pub struct ChatInfo {
    /// Where the template came from: `gguf`, `builtin:NAME` or a file path.
    pub source: String,
    /// The template source.
    pub template: String,
    /// Its SHA-256.
    pub template_sha: String,
    /// The system instruction, if any.
    pub system_instruction: Option<String>,
    /// Whether few-shot examples were separate turns.
    pub fewshot_as_multiturn: bool,
}

/// `{metric: higher_is_better}` for `higher_is_better`.
fn higher_is_better(metrics: &[MetricResult]) -> Value {
    metrics
        .iter()
        .map(|m| {
            (
                m.metric.name().to_string(),
                json!(m.metric.higher_is_better()),
            )
        })
        .collect::<Map<_, _>>()
        .into()
}

/// A task's or group's entry in `results`: name, alias, size and `"{metric},{filter}"` values.
fn entry(name: &str, alias: &str, size: usize, metrics: &[MetricResult]) -> Value {
    let mut obj = Map::new();
    obj.insert("name".into(), json!(name));
    obj.insert("alias".into(), json!(alias));
    obj.insert("sample_len".into(), json!(size));
    for m in metrics {
        obj.insert(format!("{},{}", m.metric.name(), m.filter), json!(m.value));
        obj.insert(
            format!("{}_stderr,{}", m.metric.name(), m.filter),
            m.stderr.map_or(json!("N/A"), |s| json!(s)),
        );
    }
    Value::Object(obj)
}

/// The results document of a finished evaluation.
pub fn results_json(outcome: &Outcome, info: &RunInfo) -> Value {
    let mut results = Map::new();
    let mut groups = Map::new();
    let mut group_subtasks = Map::new();
    let mut configs = Map::new();
    let mut versions = Map::new();
    let mut n_shot = Map::new();
    let mut higher = Map::new();
    let mut n_samples = Map::new();
    let mut truncated = Map::new();
    let mut alarms = Map::new();
    let mut samples = Map::new();
    let mut timing = Map::new();
    let mut task_timing = Map::new();
    for t in &outcome.tasks {
        results.insert(
            t.name.clone(),
            entry(&t.name, &t.alias, t.n_effective, &t.metrics),
        );
        configs.insert(t.name.clone(), t.config.clone());
        versions.insert(t.name.clone(), json!(t.version));
        n_shot.insert(t.name.clone(), json!(t.num_fewshot));
        higher.insert(t.name.clone(), higher_is_better(&t.metrics));
        n_samples.insert(
            t.name.clone(),
            json!({"original": t.n_original, "effective": t.n_effective}),
        );
        truncated.insert(t.name.clone(), json!(t.truncated_requests));
        if let Some(alarm) = &t.alarm {
            alarms.insert(t.name.clone(), json!(alarm));
        }
        task_timing.insert(
            t.name.clone(),
            json!({"docs": t.n_effective, "seconds": t.seconds}),
        );
        if let Some(tm) = &t.timing {
            timing.insert(
                t.name.clone(),
                json!({
                    "docs": tm.docs,
                    "seconds": tm.seconds,
                    "avg_time_per_doc": tm.seconds_per_doc(),
                    "generated_tokens": tm.tokens,
                    "tokens_per_second": tm.tokens_per_second(),
                }),
            );
        }
        if let Some(p) = &t.samples_path {
            samples.insert(t.name.clone(), json!(p.display().to_string()));
        }
    }
    for g in &outcome.groups {
        let e = entry(&g.name, &g.alias, g.size, &g.metrics);
        results.insert(g.name.clone(), e.clone());
        groups.insert(g.name.clone(), e);
        group_subtasks.insert(g.name.clone(), json!(g.children));
        versions.insert(g.name.clone(), json!(g.version));
        higher.insert(g.name.clone(), higher_is_better(&g.metrics));
    }
    let b = &info.backend;
    let limit = match info.limit {
        None => Value::Null,
        Some(Limit::Count(n)) => json!(n as f64),
        Some(Limit::Fraction(f)) => json!(f),
    };
    let model_args = json!({
        "pretrained": b.model_path.display().to_string(),
        "dtype": b.quantization,
        "ctx_size": b.ctx_size,
        "threads": b.threads,
        "parallel": b.parallel,
        "gpu_layers": b.gpu_layers,
    });
    let mut model_args = model_args;
    if let Some(urls) = &b.endpoint {
        model_args["base_url"] = json!(urls);
        model_args["model"] = json!(b.model_name);
    }
    let mut doc = json!({
        "results": results,
        "groups": groups,
        "group_subtasks": group_subtasks,
        "configs": configs,
        "versions": versions,
        "n-shot": n_shot,
        "higher_is_better": higher,
        "n-samples": n_samples,
        "config": {
            "model": b.backend,
            "model_args": model_args,
            "model_num_parameters": b.n_params,
            "model_dtype": b.quantization,
            "model_revision": "",
            "model_sha": b.model_sha256,
            "batch_size": match b.batch_size {
                1 => json!("per-document"),
                usize::MAX => json!("auto"),
                n => json!(n),
            },
            "batch_sizes": [],
            "device": b.device,
            "use_cache": null,
            "limit": limit,
            "bootstrap_iters": info.bootstrap_iters,
            "gen_kwargs": typed_kwargs(&info.gen_kwargs),
            // The generators of the Python that runs `!function` hooks, seeded before any hook
            // runs, and the few-shot sampler's; assay's own seeds are under `assay.seeds`.
            "random_seed": info.seeds.python,
            "numpy_seed": info.seeds.numpy,
            "torch_seed": info.seeds.torch,
            "fewshot_seed": info.seeds.fewshot,
        },
        "git_hash": info.git_hash,
        "date": info.date,
        "pretty_env_info": format!("{} {} ({} threads)", std::env::consts::OS, std::env::consts::ARCH, b.threads),
        "transformers_version": null,
        "lm_eval_version": null,
        "upper_git_hash": null,
        "tokenizer_pad_token": b.special_tokens.pad,
        "tokenizer_eos_token": b.special_tokens.eos,
        "tokenizer_bos_token": b.special_tokens.bos,
        "eot_token_id": b.special_tokens.eot_id,
        "max_length": b.ctx_size,
        "task_hashes": {},
        "model_source": b.backend,
        "model_name": b.model_path.display().to_string(),
        "model_name_sanitized": sanitize_model_name(&b.model_name),
        "system_instruction": info.chat.as_ref().and_then(|c| c.system_instruction.clone()),
        "system_instruction_sha": info.chat.as_ref().and_then(|c| c.system_instruction.as_deref().map(assay_tasks::hash_text)),
        "fewshot_as_multiturn": info.chat.as_ref().is_some_and(|c| c.fewshot_as_multiturn),
        "chat_template": info.chat.as_ref().map(|c| c.template.clone()),
        "chat_template_sha": info.chat.as_ref().map(|c| c.template_sha.clone()),
        "total_evaluation_time_seconds": format!("{}", outcome.seconds),
        "assay": {
            "version": info.tool_version,
            "git_hash": info.git_hash,
            "command_line": info.command_line,
            "backend": b,
            "truncated_requests": truncated,
            "generation_timing": timing,
            "chat_template_source": info.chat.as_ref().map(|c| c.source.clone()),
            "samples": samples,
            "wall_seconds": outcome.seconds,
            "tokens_processed": outcome.tokens_processed,
        },
    });
    doc["assay"]["requests"] = info.requests.clone();
    doc["assay"]["seeds"] = json!({
        "fewshot": info.seeds.fewshot,
        "fewshot_sampler": "lm-eval's: one Python random.Random(seed) per task, sample(pool, n) per document in order (n + 1, the document dropped, when the pool is the evaluated split)",
        "generation": assay_tasks::GENERATION_SEED,
        "bootstrap": crate::aggregate::BOOTSTRAP_SEED,
    });
    doc["assay"]["task_timing"] = Value::Object(task_timing);
    // Degenerate multiple-choice scores (`sanity.rs`): a number not to trust.
    doc["assay"]["alarms"] = Value::Object(alarms);
    if outcome.groups.is_empty() {
        doc.as_object_mut().map(|o| o.remove("groups"));
    }
    doc
}

/// `key=value` overrides as lm-eval records them: numbers and booleans typed, `until` a list.
fn typed_kwargs(pairs: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (key, value) in pairs {
        let typed = if key == "until" {
            json!(value.split('|').collect::<Vec<_>>())
        } else if let Ok(n) = value.parse::<i64>() {
            json!(n)
        } else if let Some(x) = value.parse::<f64>().ok().filter(|x| x.is_finite()) {
            json!(x)
        } else if let Ok(b) = value.to_lowercase().parse::<bool>() {
            json!(b)
        } else {
            json!(value)
        };
        map.insert(key.clone(), typed);
    }
    Value::Object(map)
}

/// A model name safe as a folder name (as lm-eval sanitises it).
pub fn sanitize_model_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
