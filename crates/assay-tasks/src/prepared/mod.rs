//! A task ready to run: its documents loaded, its templates compiled. Turns each document into
//! request primitives (lm-eval's context construction) and scores the backend's answers.

use assay_core::{
    DocValue, Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest,
    RollingLoglikelihood,
};
use assay_data::Record;
use serde_json::Value;

use crate::answers::ExactMatch;
use crate::chat::ChatFormat;
use crate::filters::{self, Pipeline};
use crate::metrics::{self, Metric, MetricAggregation, MetricKind, Scored};
use crate::source::DataSource;
use crate::spec::{OutputType, TaskSpec};
use crate::template::{Field, Templates};
use crate::text::{hash, text_of};
use crate::TaskError;

mod context;
mod settings;

use context::Prompt;
use settings::{exact_match_options, generation_template, metrics_for};

/// Seed of the few-shot sampler unless the task's `fewshot_config` names one (lm-eval's default).
pub const FEWSHOT_SEED: u64 = 1234;
/// Sampler seed of generation tasks unless the task or `--gen-kwargs seed=` names one; each
/// document mixes its id into it.
pub const GENERATION_SEED: u64 = 1234;

/// How few-shot examples are drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sampler {
    /// The first n examples of the few-shot split.
    FirstN,
    /// lm-eval's draws: one Python `random.Random(seed)` per task, `sample(pool, n)` (n + 1
    /// when the pool is the evaluated split) for each document in order. Drawn for every
    /// document at preparation, so a document's examples depend on its position alone (not on
    /// `--limit`, resuming, or which documents run at once). Indices into the pool.
    Random(Vec<Vec<usize>>),
}

/// lm-eval's few-shot draws for `docs` documents from a pool of `pool` examples.
fn lm_eval_draws(
    seed: u64,
    docs: usize,
    pool: usize,
    n: usize,
    same_split: bool,
) -> Vec<Vec<usize>> {
    let mut rng = assay_core::pyrandom::PyRandom::new(seed);
    let k = if same_split { n + 1 } else { n }.min(pool);
    (0..docs)
        .map(|_| rng.sample_indices(pool, k).unwrap_or_default())
        .collect()
}

/// What one document asks of the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum DocKind {
    /// One request per choice.
    MultipleChoice {
        /// The choices (continuations, or contexts when the prompt is an index).
        choices: Vec<String>,
        /// Gold choice indices.
        gold: Vec<usize>,
    },
    /// One request: the target given the prompt.
    Loglikelihood,
    /// Every token of a text.
    Rolling {
        /// The text.
        text: String,
    },
    /// Free generation, scored through the task's filters.
    Generate {
        /// The generation request.
        request: GenerationRequest,
    },
}

/// One document turned into requests.
#[derive(Debug, Clone, PartialEq)]
pub struct DocInstance {
    /// Index of the document in the evaluated split.
    pub doc_id: usize,
    /// The log-likelihood requests (none for rolling documents).
    pub requests: Vec<LoglikelihoodRequest>,
    /// What the requests mean.
    pub kind: DocKind,
    /// The target as written in per-sample logs.
    pub target: Value,
}

impl DocInstance {
    /// The prompt the document's requests start with (its first request's context; `None` for
    /// rolling documents, which have no prompt).
    pub fn context(&self) -> Option<&str> {
        match &self.kind {
            DocKind::Generate { request } => Some(&request.context),
            DocKind::Rolling { .. } => None,
            _ => self.requests.first().map(|r| r.context.as_str()),
        }
    }
}

/// The backend's answers for one document.
#[derive(Debug, Clone, PartialEq)]
pub enum Answers {
    /// One per request.
    Loglikelihoods(Vec<Loglikelihood>),
    /// For a rolling document.
    Rolling(RollingLoglikelihood),
    /// The samples of a generation document.
    Generations(Vec<Generation>),
}

/// A task with its documents and compiled templates.
pub struct PreparedTask {
    /// Task name.
    pub name: String,
    /// Display name.
    pub alias: String,
    /// The merged spec (written to the results' `configs`).
    pub spec: TaskSpec,
    /// Request kind.
    pub output_type: OutputType,
    /// Few-shot examples per document.
    pub num_fewshot: usize,
    /// Metrics reported.
    pub metrics: Vec<Metric>,
    /// What each per-document value is: (metric, filter name), in [`PreparedTask::score`]'s
    /// order. Log-likelihood tasks have the single filter `none`.
    pub keys: Vec<(Metric, String)>,
    /// The evaluated split's name.
    pub eval_split: String,
    /// The evaluated documents.
    pub docs: Vec<Record>,
    fewshot_docs: Option<Vec<Record>>,
    templates: Templates,
    text: Field,
    target: Field,
    choice: Option<Field>,
    has_description: bool,
    target_delimiter: String,
    fewshot_delimiter: String,
    /// `gen_prefix`: what starts the answer after the document's prompt.
    gen_prefix: Option<Field>,
    /// How few-shot examples are written (the task's fields unless `fewshot_config` says).
    example: ExampleFormat,
    sampler: Sampler,
    pipelines: Vec<Pipeline>,
    exact_match: ExactMatch,
    generation: Option<GenerationRequest>,
    chat: Option<ChatFormat>,
    sandbox: Option<std::sync::Arc<assay_sandbox::Sandbox>>,
    /// lm-eval's `process_results` hook (`folder/module.function`), which scores instead of the
    /// built-in metrics.
    results_hook: Option<String>,
}

/// How a few-shot example becomes text: lm-eval's `fewshot_config` fields, each defaulting to
/// the task's own.
struct ExampleFormat {
    text: Field,
    target: Field,
    choice: Option<Field>,
    target_delimiter: String,
    fewshot_delimiter: String,
    gen_prefix: Option<Field>,
}

/// The `folder/module.function` of a hook field, `None` when unset.
fn hook_of(
    task: &str,
    field: &str,
    value: &Option<serde_yaml::Value>,
) -> Result<Option<String>, TaskError> {
    match value {
        None => Ok(None),
        Some(serde_yaml::Value::Tagged(t)) if t.tag == "function" => match t.value.as_str() {
            Some(path) => Ok(Some(path.to_string())),
            None => Err(TaskError::Invalid {
                task: task.into(),
                message: format!("{field}: `!function` needs a `module.function` name"),
            }),
        },
        Some(other) => Err(TaskError::Invalid {
            task: task.into(),
            message: format!(
                "{field} must be a `!function module.function` hook, not {}",
                serde_yaml::to_string(other).unwrap_or_default().trim()
            ),
        }),
    }
}

/// `fewshot_config.samples`: the listed documents, or what its `!function` returns.
fn fewshot_samples(samples: &serde_yaml::Value) -> Result<Vec<Record>, String> {
    let value = match samples {
        serde_yaml::Value::Tagged(t) if t.tag == "function" => {
            let path = t.value.as_str().unwrap_or_default();
            crate::hooks::call(path, &[])
                .map_err(|m| format!("fewshot_config.samples (`!function {path}`): {m}"))?
        }
        other => serde_json::to_value(other).map_err(|e| format!("fewshot_config.samples: {e}"))?,
    };
    let Value::Array(items) = value else {
        return Err("fewshot_config.samples must be a list of documents".into());
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(doc) => Ok(doc),
            other => Err(format!(
                "fewshot_config.samples, entry {}: {other} is not a document (a mapping)",
                i + 1
            )),
        })
        .collect()
}

impl PreparedTask {
    /// Loads a task's data and compiles its templates. `num_fewshot` overrides the spec's.
    pub fn prepare(
        name: &str,
        spec: &TaskSpec,
        data: &dyn DataSource,
        num_fewshot: Option<usize>,
    ) -> Result<PreparedTask, TaskError> {
        let invalid = |message: String| TaskError::Invalid {
            task: name.into(),
            message,
        };
        let process_docs = hook_of(name, "process_docs", &spec.process_docs)?;
        let results_hook = hook_of(name, "process_results", &spec.process_results)?;
        let load = |split: &str| -> Result<Vec<Record>, TaskError> {
            let docs = data.load_split(name, spec, split)?;
            let Some(hook) = &process_docs else {
                return Ok(docs);
            };
            let read = docs.len();
            let kept = crate::hooks::process_docs(hook, docs).map_err(|m| {
                invalid(format!(
                    "process_docs (`!function {hook}`), split {split}: {m}"
                ))
            })?;
            if kept.is_empty() && read > 0 {
                // The data is there: the hook dropped it (a filter that matches nothing).
                return Err(invalid(format!(
                    "process_docs (`!function {hook}`) returned no documents from the {read} of split {split}"
                )));
            }
            Ok(kept)
        };
        let output_type = spec
            .output_type
            .ok_or_else(|| invalid("output_type is missing".into()))?;
        let metrics = metrics_for(name, spec, output_type)?;
        let eval_split = spec
            .test_split
            .clone()
            .or_else(|| spec.validation_split.clone())
            .ok_or_else(|| invalid("neither test_split nor validation_split is set".into()))?;
        let fewshot = spec.fewshot_config.clone().unwrap_or_default();
        let named_split = fewshot.split.as_ref().or(spec.fewshot_split.as_ref());
        let fewshot_hook = hook_of(name, "fewshot_config.process_docs", &fewshot.process_docs)?;
        let run_fewshot_hook = |hook: &str, split: &str| {
            crate::hooks::process_docs(hook, data.load_split(name, spec, split)?).map_err(|m| {
                invalid(format!(
                    "fewshot_config.process_docs (`!function {hook}`), split {split}: {m}"
                ))
            })
        };
        // lm-eval processes a named few-shot split before the evaluated one, whatever the
        // shot count: hooks drawing from the global generators then draw in lm-eval's order.
        let mut early_fewshot = match (named_split, &fewshot_hook, &process_docs) {
            (Some(split), Some(hook), _) if data.has_split(name, spec, split) => {
                Some((split.clone(), run_fewshot_hook(hook, split)?))
            }
            (Some(split), None, Some(_)) if data.has_split(name, spec, split) => {
                Some((split.clone(), load(split)?))
            }
            _ => None,
        };
        let docs = load(&eval_split)?;
        if docs.is_empty() {
            let file = data
                .describe_split(name, spec, &eval_split)
                .map(|f| format!(" ({f} is empty)"))
                .unwrap_or_default();
            return Err(invalid(format!(
                "split `{eval_split}` has no documents{file}"
            )));
        }
        let num_fewshot = num_fewshot.or(spec.num_fewshot).unwrap_or(0);
        if num_fewshot > 0 && output_type == OutputType::LoglikelihoodRolling {
            return Err(invalid(
                "few-shot examples make no sense for loglikelihood_rolling; use --num-fewshot 0"
                    .into(),
            ));
        }
        // lm-eval's order: a named split, else the listed samples, else training, validation.
        let fewshot_split = match (named_split, &fewshot.samples) {
            (None, Some(_)) => None,
            _ => [
                named_split,
                spec.training_split.as_ref(),
                spec.validation_split.as_ref(),
            ]
            .into_iter()
            .flatten()
            .find(|s| data.has_split(name, spec, s))
            .cloned(),
        };
        let fewshot_docs = match (&fewshot_split, &fewshot.samples) {
            _ if num_fewshot == 0 => None,
            (Some(split), _) if *split != eval_split || fewshot_hook.is_some() => {
                let docs = match (early_fewshot.take(), &fewshot_hook) {
                    (Some((early, docs)), _) if early == *split => docs,
                    (_, Some(hook)) => run_fewshot_hook(hook, split)?,
                    (_, None) => load(split)?,
                };
                Some(docs)
            }
            // Few-shot examples from the evaluated split itself, never the document itself.
            (Some(_), _) => None,
            (None, Some(samples)) => Some(fewshot_samples(samples).map_err(invalid)?),
            (None, None) => None,
        };
        let fewshot_docs = match (&fewshot.fewshot_indices, fewshot_docs) {
            (Some(indices), pool) => {
                let pool = pool.as_ref().unwrap_or(&docs);
                let picked = indices
                    .iter()
                    .map(|&i| {
                        pool.get(i).cloned().ok_or_else(|| {
                            invalid(format!(
                                "fewshot_config.fewshot_indices: {i} is past the {} few-shot documents",
                                pool.len()
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(picked)
            }
            (None, pool) => pool,
        };
        let available = fewshot_docs.as_ref().map_or(docs.len() - 1, Vec::len);
        if num_fewshot > available {
            return Err(invalid(format!(
                "{num_fewshot} few-shot examples requested but the few-shot split has {available}"
            )));
        }
        let sampler = match fewshot.sampler.as_deref() {
            Some("first_n") => Sampler::FirstN,
            None | Some("default") | Some("random") if num_fewshot > 0 => {
                let pool = fewshot_docs.as_ref().map_or(docs.len(), Vec::len);
                Sampler::Random(lm_eval_draws(
                    fewshot.seed.unwrap_or(FEWSHOT_SEED),
                    docs.len(),
                    pool,
                    num_fewshot,
                    fewshot_docs.is_none(),
                ))
            }
            None | Some("default") | Some("random") => Sampler::Random(Vec::new()),
            Some(other) => {
                return Err(invalid(format!(
                    "unknown fewshot_config.sampler `{other}` (use first_n or default)"
                )))
            }
        };

        let mut templates = Templates::new();
        let compile = |t: &mut Templates, field: &str, raw: &Option<serde_yaml::Value>| {
            let raw = raw
                .as_ref()
                .ok_or_else(|| invalid(format!("{field} is missing")))?;
            t.compile(field, raw)
                .map_err(|m| invalid(format!("{field}: {m}")))
        };
        let text = match output_type {
            OutputType::LoglikelihoodRolling => templates
                .compile("doc_to_text", &serde_yaml::Value::from(""))
                .map_err(invalid)?,
            _ => compile(&mut templates, "doc_to_text", &spec.doc_to_text)?,
        };
        let target = compile(&mut templates, "doc_to_target", &spec.doc_to_target)?;
        let choice = match output_type {
            OutputType::MultipleChoice => Some(compile(
                &mut templates,
                "doc_to_choice",
                &spec.doc_to_choice,
            )?),
            _ => None,
        };
        let compile_or = |t: &mut Templates,
                          field: &str,
                          raw: &Option<serde_yaml::Value>,
                          default: &Field|
         -> Result<Field, TaskError> {
            match raw {
                Some(raw) => t
                    .compile(field, raw)
                    .map_err(|m| invalid(format!("{field}: {m}"))),
                None => Ok(default.clone()),
            }
        };
        let gen_prefix = match spec.gen_prefix.as_deref() {
            Some(prefix) if !prefix.is_empty() => Some(
                templates
                    .compile("gen_prefix", &serde_yaml::Value::from(prefix))
                    .map_err(|m| invalid(format!("gen_prefix: {m}")))?,
            ),
            _ => None,
        };
        let example_prefix = match fewshot.gen_prefix.as_deref() {
            Some("") => None,
            Some(prefix) => Some(
                templates
                    .compile(
                        "fewshot_config.gen_prefix",
                        &serde_yaml::Value::from(prefix),
                    )
                    .map_err(|m| invalid(format!("fewshot_config.gen_prefix: {m}")))?,
            ),
            None => gen_prefix.clone(),
        };
        let target_delimiter = spec.target_delimiter.clone().unwrap_or_else(|| " ".into());
        let example = ExampleFormat {
            text: compile_or(
                &mut templates,
                "fewshot_config.doc_to_text",
                &fewshot.doc_to_text,
                &text,
            )?,
            target: compile_or(
                &mut templates,
                "fewshot_config.doc_to_target",
                &fewshot.doc_to_target,
                &target,
            )?,
            choice: match (&fewshot.doc_to_choice, &choice) {
                (Some(raw), _) => Some(compile_or(
                    &mut templates,
                    "fewshot_config.doc_to_choice",
                    &Some(raw.clone()),
                    &text,
                )?),
                (None, c) => c.clone(),
            },
            target_delimiter: fewshot
                .target_delimiter
                .clone()
                .unwrap_or_else(|| target_delimiter.clone()),
            fewshot_delimiter: String::new(),
            gen_prefix: example_prefix,
        };
        let description = spec.description.clone().unwrap_or_default();
        templates
            .add("description", &description)
            .map_err(|m| invalid(format!("description: {m}")))?;
        let fewshot_delimiter = spec
            .fewshot_delimiter
            .clone()
            .unwrap_or_else(|| "\n\n".into());
        let example = ExampleFormat {
            fewshot_delimiter: fewshot
                .fewshot_delimiter
                .clone()
                .unwrap_or_else(|| fewshot_delimiter.clone()),
            ..example
        };
        let pipelines = match (&spec.filter_list, output_type) {
            (Some(list), OutputType::GenerateUntil) => list
                .iter()
                .map(Pipeline::compile)
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?,
            (Some(_), _) => {
                return Err(invalid(
                    "filter_list applies to generate_until tasks only".into(),
                ))
            }
            (None, _) => vec![filters::default_pipeline()],
        };
        let exact_match = exact_match_options(spec).map_err(invalid)?;
        let generation = match output_type {
            OutputType::GenerateUntil => {
                Some(generation_template(spec, &fewshot_delimiter).map_err(invalid)?)
            }
            _ => None,
        };
        if metrics.iter().any(|m| m.pass_k().is_some()) {
            if let Some(other) = metrics.iter().find(|m| m.pass_k().is_none()) {
                return Err(invalid(format!(
                    "metric `{}` cannot be mixed with pass@k metrics in one task",
                    other.name()
                )));
            }
            let n = generation.as_ref().map_or(1, |g| g.n);
            if let Some(m) = metrics.iter().find(|m| m.pass_k().unwrap_or(0) > n) {
                return Err(invalid(format!(
                    "metric `{}` needs at least {} samples per document: set repeats",
                    m.name(),
                    m.pass_k().unwrap_or(0)
                )));
            }
        }
        let keys = match output_type {
            OutputType::GenerateUntil => pipelines
                .iter()
                .flat_map(|p| metrics.iter().map(|m| (m.clone(), p.name.clone())))
                .collect(),
            _ => metrics
                .iter()
                .map(|m| (m.clone(), "none".to_string()))
                .collect(),
        };
        Ok(PreparedTask {
            name: name.to_string(),
            alias: spec.task_alias.clone().unwrap_or_else(|| name.to_string()),
            spec: spec.clone(),
            output_type,
            num_fewshot,
            metrics,
            keys,
            eval_split,
            docs,
            fewshot_docs,
            templates,
            text,
            target,
            choice,
            has_description: !description.is_empty(),
            target_delimiter,
            fewshot_delimiter,
            gen_prefix,
            example,
            sampler,
            pipelines,
            exact_match,
            generation,
            chat: None,
            sandbox: None,
            results_hook,
        })
    }

    /// Whether scoring runs model-written code (a pass@k metric): such a task needs
    /// [`PreparedTask::set_sandbox`] before it is scored.
    pub fn runs_code(&self) -> bool {
        self.metrics.iter().any(|m| m.pass_k().is_some())
    }

    /// The sandbox that runs the programs of pass@k metrics.
    pub fn set_sandbox(&mut self, sandbox: std::sync::Arc<assay_sandbox::Sandbox>) {
        self.sandbox = Some(sandbox);
    }

    /// Overrides generation settings (`key=value` pairs as lm-eval's `--gen_kwargs`: until,
    /// max_gen_toks, do_sample, temperature, top_p, top_k, seed); checked like the task file's.
    /// No effect on tasks that do not generate.
    pub fn override_generation(&mut self, pairs: &[(String, String)]) -> Result<(), TaskError> {
        if self.generation.is_none() || pairs.is_empty() {
            return Ok(());
        }
        let invalid = |message: String| TaskError::Invalid {
            task: self.name.clone(),
            message,
        };
        let mut kw = self.spec.generation_kwargs.clone().unwrap_or_default();
        for (key, value) in pairs {
            let bad =
                |e: &dyn std::fmt::Display| invalid(format!("--gen-kwargs {key}={value}: {e}"));
            match key.as_str() {
                "until" => kw.until = Some(crate::spec::OneOrMany::Many(value.split('|').map(str::to_string).collect())),
                "max_gen_toks" => kw.max_gen_toks = Some(value.parse().map_err(|e| bad(&e))?),
                "do_sample" => kw.do_sample = Some(value.to_lowercase().parse().map_err(|e| bad(&e))?),
                "temperature" => kw.temperature = Some(value.parse().map_err(|e| bad(&e))?),
                "top_p" => kw.top_p = Some(value.parse().map_err(|e| bad(&e))?),
                "top_k" => kw.top_k = Some(value.parse().map_err(|e| bad(&e))?),
                "seed" => kw.seed = Some(value.parse().map_err(|e| bad(&e))?),
                other => return Err(invalid(format!("--gen-kwargs: unknown key `{other}` (known: until, max_gen_toks, do_sample, temperature, top_p, top_k, seed)"))),
            }
        }
        self.spec.generation_kwargs = Some(kw);
        self.generation =
            Some(generation_template(&self.spec, &self.fewshot_delimiter).map_err(invalid)?);
        Ok(())
    }

    /// Renders every prompt through `chat` (the model's chat template) from now on.
    pub fn set_chat(&mut self, chat: ChatFormat) {
        self.chat = Some(chat);
    }

    /// The generation settings as lm-eval writes them into a request's arguments: the task's
    /// `generation_kwargs` as given, with the `--gen-kwargs` overrides, `until` defaulting to
    /// the few-shot delimiter; lm-eval's defaults when the task gives none.
    pub fn generation_arguments(&self) -> serde_json::Value {
        let Some(kwargs) = &self.spec.generation_kwargs else {
            return serde_json::json!({
                "temperature": 0.0,
                "do_sample": false,
                "max_gen_toks": 256,
                "until": [self.fewshot_delimiter],
            });
        };
        let mut given = serde_json::to_value(kwargs).unwrap_or_default();
        if let Some(map) = given.as_object_mut() {
            map.entry("until")
                .or_insert_with(|| serde_json::json!([self.fewshot_delimiter]));
        }
        given
    }

    /// Whether the task generates text (`output_type: generate_until`).
    pub fn is_generation(&self) -> bool {
        self.generation.is_some()
    }

    /// The chat format in use, if any.
    pub fn chat(&self) -> Option<&ChatFormat> {
        self.chat.as_ref()
    }

    /// Builds the requests of document `doc_id`.
    pub fn instance(&self, doc_id: usize) -> Result<DocInstance, TaskError> {
        let doc = &self.docs[doc_id];
        match self.output_type {
            OutputType::LoglikelihoodRolling => {
                let text = self.target_text(doc, doc_id)?;
                Ok(DocInstance {
                    doc_id,
                    requests: Vec::new(),
                    target: Value::String(text.clone()),
                    kind: DocKind::Rolling { text },
                })
            }
            OutputType::Loglikelihood => {
                let Prompt::Text(prompt) = self.prompt(doc, doc_id)? else {
                    return Err(self.field_error(doc_id, "doc_to_text", "expected text".into()));
                };
                let target = self.target_text(doc, doc_id)?;
                Ok(DocInstance {
                    doc_id,
                    requests: vec![LoglikelihoodRequest {
                        context: self.context(doc, doc_id, &prompt, &self.target_delimiter)?,
                        continuation: format!("{}{target}", self.target_delimiter),
                    }],
                    target: Value::String(target),
                    kind: DocKind::Loglikelihood,
                })
            }
            OutputType::GenerateUntil => {
                let Prompt::Text(prompt) = self.prompt(doc, doc_id)? else {
                    return Err(self.field_error(doc_id, "doc_to_text", "expected text".into()));
                };
                let mut request = self
                    .generation
                    .clone()
                    .expect("generation tasks have settings");
                request.context = self.context(doc, doc_id, &prompt, &self.target_delimiter)?;
                request.sampling.seed =
                    request.sampling.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ doc_id as u64;
                Ok(DocInstance {
                    doc_id,
                    requests: Vec::new(),
                    target: self.generation_target(doc, doc_id)?,
                    kind: DocKind::Generate { request },
                })
            }
            OutputType::MultipleChoice => {
                let choices = self.choices(doc, doc_id)?;
                let target = self
                    .templates
                    .eval(&self.target, doc)
                    .map_err(|m| self.field_error(doc_id, "doc_to_target", m))?;
                match self.prompt(doc, doc_id)? {
                    Prompt::Text(prompt) => {
                        let gold = self.gold(&target, &choices, doc_id)?;
                        let context = self.context(doc, doc_id, &prompt, &self.target_delimiter)?;
                        Ok(DocInstance {
                            doc_id,
                            requests: choices
                                .iter()
                                .map(|c| LoglikelihoodRequest {
                                    context: context.clone(),
                                    continuation: format!("{}{c}", self.target_delimiter),
                                })
                                .collect(),
                            // As lm-eval logs it: the doc_to_target value, not the index.
                            target,
                            kind: DocKind::MultipleChoice { choices, gold },
                        })
                    }
                    Prompt::ChoiceIndex(gold) => {
                        // The choices are contexts; the target is the shared continuation.
                        if gold >= choices.len() {
                            return Err(self.field_error(
                                doc_id,
                                "doc_to_text",
                                format!("gold index {gold} but only {} choices", choices.len()),
                            ));
                        }
                        let continuation = text_of(&target);
                        Ok(DocInstance {
                            doc_id,
                            requests: choices
                                .iter()
                                .map(|c| {
                                    Ok(LoglikelihoodRequest {
                                        context: self.context(doc, doc_id, c, "")?,
                                        continuation: format!(
                                            "{}{continuation}",
                                            self.target_delimiter
                                        ),
                                    })
                                })
                                .collect::<Result<_, TaskError>>()?,
                            target,
                            kind: DocKind::MultipleChoice {
                                choices,
                                gold: vec![gold],
                            },
                        })
                    }
                }
            }
        }
    }

    /// Scores through lm-eval's `process_results(doc, results)`: `results` is one
    /// `[loglikelihood, is_greedy]` per request, `[loglikelihood]` for a rolling document, or
    /// `[answer]` per filter of a generation; the hook's mapping gives each metric's value.
    fn score_with_hook(
        &self,
        hook: &str,
        instance: &DocInstance,
        answers: &Answers,
    ) -> Result<Scored, TaskError> {
        let failed = |message: String| TaskError::Invalid {
            task: self.name.clone(),
            message: format!(
                "document {}: process_results (`!function {hook}`): {message}",
                instance.doc_id
            ),
        };
        let doc = Value::Object(self.docs.get(instance.doc_id).cloned().unwrap_or_default());
        let filtered = self.filtered(instance.doc_id, answers)?;
        let per_filter: Vec<(String, Value)> = match answers {
            Answers::Loglikelihoods(lls) => vec![(
                "none".into(),
                Value::Array(
                    lls.iter()
                        .map(|l| serde_json::json!([l.logprob, l.is_greedy]))
                        .collect(),
                ),
            )],
            Answers::Rolling(r) => vec![("none".into(), serde_json::json!([r.logprob]))],
            Answers::Generations(_) => filtered
                .iter()
                .map(|(filter, texts)| {
                    let first = texts.first().cloned().unwrap_or_default();
                    (filter.clone(), serde_json::json!([first]))
                })
                .collect(),
        };
        let mut outputs = std::collections::HashMap::new();
        for (filter, results) in per_filter {
            let out = crate::hooks::call(hook, &[doc.clone(), results]).map_err(failed)?;
            outputs.insert(filter, out);
        }
        let values = self
            .keys
            .iter()
            .map(|(metric, filter)| {
                let value = outputs.get(filter).and_then(|o| o.get(metric.name()));
                match (value, metric.aggregation()) {
                    (Some(v), _) if metrics::number(v).is_some() => {
                        metrics::number(v).map(DocValue::Scalar)
                    }
                    // Kept for the metric's aggregation hook (lm-eval's `(gold, answer)` items).
                    (Some(v), MetricAggregation::Hook(_)) => Some(DocValue::Item(v.clone())),
                    _ => None,
                }
                .ok_or_else(|| {
                    failed(format!(
                        "its result has no number for `{}` (filter {filter}): {}",
                        metric.name(),
                        outputs
                            .get(filter)
                            .map_or("nothing".into(), |o| o.to_string())
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scored {
            values,
            details: None,
            filtered,
        })
    }

    /// The filtered answers of a generation document, one per pipeline (in `keys` order).
    fn filtered(
        &self,
        doc_id: usize,
        answers: &Answers,
    ) -> Result<Vec<(String, Vec<String>)>, TaskError> {
        let Answers::Generations(gens) = answers else {
            return Ok(Vec::new());
        };
        let texts: Vec<String> = gens.iter().map(|g| g.text.clone()).collect();
        let doc = &self.docs[doc_id];
        self.pipelines
            .iter()
            .map(|p| {
                let out = p.apply(&texts, doc).map_err(|m| TaskError::Invalid {
                    task: self.name.clone(),
                    message: format!("document {doc_id}: {m}"),
                })?;
                Ok((p.name.clone(), out))
            })
            .collect()
    }

    /// A document's scores: one value per entry of `keys`, and the details its per-sample log
    /// shows (how each program ended, for pass@k tasks).
    pub fn score(&self, instance: &DocInstance, answers: &Answers) -> Result<Scored, TaskError> {
        if let Some(hook) = &self.results_hook {
            return self.score_with_hook(hook, instance, answers);
        }
        // Only generation tasks have metrics of their own (`!function`), scored below.
        let kinds: Vec<MetricKind> = self.metrics.iter().filter_map(Metric::kind).collect();
        let filtered = self.filtered(instance.doc_id, answers)?;
        let values = match (&instance.kind, answers) {
            (DocKind::MultipleChoice { choices, gold }, Answers::Loglikelihoods(lls)) => {
                let logprobs: Vec<f64> = lls.iter().map(|l| l.logprob).collect();
                metrics::multiple_choice::score(&kinds, &logprobs, choices, gold)
            }
            (DocKind::Loglikelihood, Answers::Loglikelihoods(lls)) => {
                metrics::loglikelihood::score(&kinds, &lls[0])
            }
            (DocKind::Rolling { text }, Answers::Rolling(r)) => {
                metrics::rolling::score(&kinds, text, r)
            }
            (DocKind::Generate { request }, Answers::Generations(_)) if self.runs_code() => {
                let tests = text_of(&instance.target);
                let mut values = Vec::with_capacity(self.keys.len());
                let mut details = serde_json::Map::new();
                for (filter, answers) in &filtered {
                    let (v, runs) = metrics::pass_at_k::score(
                        &kinds,
                        self.sandbox.as_deref(),
                        &request.context,
                        &tests,
                        answers,
                        |e| TaskError::Invalid {
                            task: self.name.clone(),
                            message: format!("document {}: {e}", instance.doc_id),
                        },
                    )?;
                    values.extend(v);
                    details.insert(filter.clone(), runs);
                }
                return Ok(Scored {
                    values,
                    details: Some(Value::Object(details)),
                    filtered,
                });
            }
            (DocKind::Generate { .. }, Answers::Generations(_)) => {
                let references: Vec<String> = match &instance.target {
                    Value::Array(items) => items.iter().map(text_of).collect(),
                    other => vec![text_of(other)],
                };
                let mut values = Vec::with_capacity(self.keys.len());
                for (filter, answers) in &filtered {
                    let answer = answers.first().cloned().unwrap_or_default();
                    let truthfulqa = match &instance.target {
                        Value::Object(refs) => Some(metrics::truthfulqa::scores(&answer, refs)),
                        _ => None,
                    };
                    for m in &self.metrics {
                        let Some(kind) = m.kind() else {
                            let value = m.score_with_hook(&instance.target, &answer).map_err(|e| {
                                TaskError::Invalid {
                                    task: self.name.clone(),
                                    message: format!(
                                        "document {}, filter {filter}: metric `{}` (`!function {}`): {e}",
                                        instance.doc_id,
                                        m.name(),
                                        m.hook().map(crate::hooks::display_name).unwrap_or_default()
                                    ),
                                }
                            })?;
                            values.push(value);
                            continue;
                        };
                        values.push(match truthfulqa.as_ref().and_then(|t| t.get(&kind)) {
                            Some(found) => DocValue::Scalar(*found),
                            None => metrics::reference::score(
                                kind,
                                &answer,
                                &references,
                                &self.exact_match,
                            ),
                        });
                    }
                }
                values
            }
            _ => Vec::new(),
        };
        Ok(Scored {
            values,
            details: None,
            filtered,
        })
    }

    /// SHA-256 of a document (for per-sample logs).
    pub fn doc_hash(&self, doc_id: usize) -> String {
        // lm-eval hashes `json.dumps(doc, indent=2, ensure_ascii=False)`: the same text as
        // serde_json's pretty printer (two-space indent, fields in file order, UTF-8 kept).
        hash(&serde_json::to_string_pretty(&self.docs[doc_id]).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests;
