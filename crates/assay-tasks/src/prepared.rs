//! A task ready to run: its documents loaded, its templates compiled. Turns each document into
//! request primitives (lm-eval's context construction) and scores the backend's answers.

use assay_core::{
    DocValue, Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest,
    RollingLoglikelihood, Sampling,
};
use assay_data::Record;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::answers::ExactMatch;
use crate::chat::{ChatFormat, Message};
use crate::dataset::{self, DataDir};
use crate::filters::{self, Pipeline};
use crate::metrics::{self, MetricKind, Scored};
use crate::spec::{OutputType, TaskSpec};
use crate::template::{Field, Templates};
use crate::TaskError;

/// Seed of the few-shot sampler unless the task's `fewshot_config` names one (lm-eval's default).
pub const FEWSHOT_SEED: u64 = 1234;
/// Sampler seed of generation tasks unless the task or `--gen-kwargs seed=` names one; each
/// document mixes its id into it.
pub const GENERATION_SEED: u64 = 1234;

/// How few-shot examples are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sampler {
    /// The first n examples of the few-shot split.
    FirstN,
    /// n examples drawn with a generator seeded by (seed, doc id): the same examples for a
    /// document whatever else is evaluated.
    Random(u64),
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
    pub metrics: Vec<MetricKind>,
    /// What each per-document value is: (metric, filter name), in [`PreparedTask::score`]'s
    /// order. Log-likelihood tasks have the single filter `none`.
    pub keys: Vec<(MetricKind, String)>,
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
    sampler: Sampler,
    pipelines: Vec<Pipeline>,
    exact_match: ExactMatch,
    generation: Option<GenerationRequest>,
    chat: Option<ChatFormat>,
    sandbox: Option<std::sync::Arc<assay_sandbox::Sandbox>>,
}

impl PreparedTask {
    /// Loads a task's data and compiles its templates. `num_fewshot` overrides the spec's.
    pub fn prepare(
        name: &str,
        spec: &TaskSpec,
        data_dir: &DataDir,
        num_fewshot: Option<usize>,
    ) -> Result<PreparedTask, TaskError> {
        let invalid = |message: String| TaskError::Invalid {
            task: name.into(),
            message,
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
        let docs = dataset::load_split(name, spec, &eval_split, data_dir)?;
        if docs.is_empty() {
            let file = dataset::split_file(name, spec, &eval_split)?
                .map(|f| format!(" ({} is empty)", data_dir.resolve(&f).display()))
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
        let fewshot_split = [
            &spec.fewshot_split,
            &spec.training_split,
            &spec.validation_split,
        ]
        .into_iter()
        .flatten()
        .find(|s| dataset::has_split(name, spec, s))
        .cloned();
        let fewshot_docs = match &fewshot_split {
            _ if num_fewshot == 0 => None,
            Some(split) if *split != eval_split => {
                Some(dataset::load_split(name, spec, split, data_dir)?)
            }
            // Few-shot examples from the evaluated split itself, never the document itself.
            _ => None,
        };
        let available = fewshot_docs.as_ref().map_or(docs.len() - 1, Vec::len);
        if num_fewshot > available {
            return Err(invalid(format!(
                "{num_fewshot} few-shot examples requested but the few-shot split has {available}"
            )));
        }
        let fewshot = spec.fewshot_config.clone().unwrap_or_default();
        let sampler = match fewshot.sampler.as_deref() {
            Some("first_n") => Sampler::FirstN,
            None | Some("default") | Some("random") => {
                Sampler::Random(fewshot.seed.unwrap_or(FEWSHOT_SEED))
            }
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
        let description = spec.description.clone().unwrap_or_default();
        templates
            .add("description", &description)
            .map_err(|m| invalid(format!("description: {m}")))?;
        let fewshot_delimiter = spec
            .fewshot_delimiter
            .clone()
            .unwrap_or_else(|| "\n\n".into());
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
                .flat_map(|p| metrics.iter().map(|&m| (m, p.name.clone())))
                .collect(),
            _ => metrics.iter().map(|&m| (m, "none".to_string())).collect(),
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
            target_delimiter: spec.target_delimiter.clone().unwrap_or_else(|| " ".into()),
            fewshot_delimiter,
            sampler,
            pipelines,
            exact_match,
            generation,
            chat: None,
            sandbox: None,
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

    /// Whether the task generates text (`output_type: generate_until`).
    pub fn is_generation(&self) -> bool {
        self.generation.is_some()
    }

    /// The chat format in use, if any.
    pub fn chat(&self) -> Option<&ChatFormat> {
        self.chat.as_ref()
    }

    fn field_error(&self, doc_id: usize, field: &str, message: String) -> TaskError {
        TaskError::Template {
            task: self.name.clone(),
            doc_id,
            field: field.into(),
            message,
        }
    }

    /// The prompt of a document: text, or a choice index when the choices are contexts.
    fn prompt(&self, doc: &Record, doc_id: usize) -> Result<Prompt, TaskError> {
        match self
            .templates
            .eval(&self.text, doc)
            .map_err(|m| self.field_error(doc_id, "doc_to_text", m))?
        {
            Value::String(s) => Ok(Prompt::Text(s)),
            Value::Number(n) if n.as_u64().is_some() => {
                Ok(Prompt::ChoiceIndex(n.as_u64().unwrap_or(0) as usize))
            }
            other => Err(self.field_error(
                doc_id,
                "doc_to_text",
                format!("expected text or a choice index, got {other}"),
            )),
        }
    }

    fn choices(&self, doc: &Record, doc_id: usize) -> Result<Vec<String>, TaskError> {
        let Some(field) = &self.choice else {
            return Ok(Vec::new());
        };
        let value = self
            .templates
            .eval(field, doc)
            .map_err(|m| self.field_error(doc_id, "doc_to_choice", m))?;
        let Value::Array(items) = value else {
            return Err(self.field_error(
                doc_id,
                "doc_to_choice",
                format!("expected a list, got {value}"),
            ));
        };
        if items.is_empty() {
            return Err(self.field_error(
                doc_id,
                "doc_to_choice",
                "the list of choices is empty".into(),
            ));
        }
        Ok(items.into_iter().map(|v| text_of(&v)).collect())
    }

    /// Gold indices for a multiple-choice document.
    fn gold(
        &self,
        target: &Value,
        choices: &[String],
        doc_id: usize,
    ) -> Result<Vec<usize>, TaskError> {
        let err = |m: String| self.field_error(doc_id, "doc_to_target", m);
        let index = |v: &Value| -> Result<usize, TaskError> {
            let i = match v {
                Value::Number(n) => n.as_u64().map(|i| i as usize),
                Value::String(s) => choices
                    .iter()
                    .position(|c| c == s)
                    .or_else(|| s.trim().parse::<usize>().ok()),
                _ => None,
            }
            .ok_or_else(|| {
                err(format!(
                    "{v} is neither a choice index nor one of the choices"
                ))
            })?;
            if i >= choices.len() {
                return Err(err(format!(
                    "gold index {i} but only {} choices",
                    choices.len()
                )));
            }
            Ok(i)
        };
        match target {
            Value::Array(items) => items.iter().map(index).collect(),
            other => Ok(vec![index(other)?]),
        }
    }

    fn target_text(&self, doc: &Record, doc_id: usize) -> Result<String, TaskError> {
        let target = self
            .templates
            .eval(&self.target, doc)
            .map_err(|m| self.field_error(doc_id, "doc_to_target", m))?;
        if self.choice.is_none() {
            return Ok(text_of(&target));
        }
        if let Prompt::ChoiceIndex(_) = self.prompt(doc, doc_id)? {
            return Ok(text_of(&target));
        }
        let choices = self.choices(doc, doc_id)?;
        let gold = self.gold(&target, &choices, doc_id)?;
        Ok(choices[gold[0]].clone())
    }

    /// The reference of a generation document: a string, a list of acceptable answers, or
    /// `{"true": [...], "false": [...]}` reference sets (TruthfulQA).
    fn generation_target(&self, doc: &Record, doc_id: usize) -> Result<Value, TaskError> {
        let target = self
            .templates
            .eval(&self.target, doc)
            .map_err(|m| self.field_error(doc_id, "doc_to_target", m))?;
        Ok(match target {
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| Value::String(text_of(v))).collect())
            }
            Value::Object(map) => Value::Object(map),
            other => Value::String(text_of(&other)),
        })
    }

    /// The few-shot examples of a document, as (prompt, answer) texts.
    fn examples(&self, doc_id: usize) -> Result<Vec<(String, String)>, TaskError> {
        if self.num_fewshot == 0 {
            return Ok(Vec::new());
        }
        let (pool, exclude) = match &self.fewshot_docs {
            Some(docs) => (docs, None),
            None => (&self.docs, Some(doc_id)),
        };
        let indices: Vec<usize> = match self.sampler {
            Sampler::FirstN => (0..pool.len())
                .filter(|&i| Some(i) != exclude)
                .take(self.num_fewshot)
                .collect(),
            Sampler::Random(seed) => {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ doc_id as u64,
                );
                let want = (self.num_fewshot + 1).min(pool.len());
                rand::seq::index::sample(&mut rng, pool.len(), want)
                    .into_iter()
                    .filter(|&i| Some(i) != exclude)
                    .take(self.num_fewshot)
                    .collect()
            }
        };
        indices
            .into_iter()
            .map(|i| {
                let ex = &pool[i];
                let text = match self.prompt(ex, doc_id)? {
                    Prompt::Text(t) => t,
                    Prompt::ChoiceIndex(k) => {
                        self.choices(ex, doc_id)?.get(k).cloned().ok_or_else(|| {
                            self.field_error(
                                doc_id,
                                "doc_to_text",
                                format!("few-shot example {i}: index {k} out of range"),
                            )
                        })?
                    }
                };
                Ok((text, self.target_text(ex, doc_id)?))
            })
            .collect()
    }

    /// The full context of a document: description, few-shot examples and `prompt`, as plain
    /// text or through the chat template.
    fn context(&self, doc: &Record, doc_id: usize, prompt: &str) -> Result<String, TaskError> {
        let description = if self.has_description {
            self.templates
                .render_str("description", doc)
                .map_err(|m| self.field_error(doc_id, "description", m))?
        } else {
            String::new()
        };
        let examples = self.examples(doc_id)?;
        let joined = |examples: &[(String, String)]| -> String {
            let mut out = String::new();
            for (q, a) in examples {
                out.push_str(&format!(
                    "{q}{}{a}{}",
                    self.target_delimiter, self.fewshot_delimiter
                ));
            }
            out
        };
        let Some(chat) = &self.chat else {
            return Ok(format!("{description}{}{prompt}", joined(&examples)));
        };
        let mut messages = Vec::new();
        let system: Vec<&str> = [
            chat.system_instruction.as_deref(),
            Some(description.trim_end()),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
        if !system.is_empty() {
            messages.push(Message {
                role: "system",
                content: system.join(&self.fewshot_delimiter),
            });
        }
        if chat.fewshot_as_multiturn {
            for (q, a) in &examples {
                messages.push(Message {
                    role: "user",
                    content: q.clone(),
                });
                messages.push(Message {
                    role: "assistant",
                    content: a.clone(),
                });
            }
            messages.push(Message {
                role: "user",
                content: prompt.to_string(),
            });
        } else {
            messages.push(Message {
                role: "user",
                content: format!("{}{prompt}", joined(&examples)),
            });
        }
        chat.render(&messages)
            .map_err(|m| self.field_error(doc_id, "chat template", m))
    }

    /// The text that starts the prompts of this task's documents: the common beginning of the
    /// first two documents' contexts (description, fixed few-shot examples, chat template
    /// header). A function of the task, whatever `--limit`; `None` with fewer than two documents.
    pub fn shared_prefix(&self) -> Result<Option<String>, TaskError> {
        if self.docs.len() < 2 {
            return Ok(None);
        }
        let first = self.instance(0)?;
        let second = self.instance(1)?;
        let (Some(a), Some(b)) = (first.context(), second.context()) else {
            return Ok(None);
        };
        let len = a
            .char_indices()
            .zip(b.chars())
            .find(|((_, x), y)| x != y)
            .map_or(a.len().min(b.len()), |((i, _), _)| i);
        Ok((len > 0).then(|| a[..len].to_string()))
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
                        context: self.context(doc, doc_id, &prompt)?,
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
                request.context = self.context(doc, doc_id, &prompt)?;
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
                        let context = self.context(doc, doc_id, &prompt)?;
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
                                        context: self.context(doc, doc_id, c)?,
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

    /// The filtered answers of a generation document, one per pipeline (in `keys` order).
    pub fn filtered(&self, answers: &Answers) -> Vec<(String, Vec<String>)> {
        let Answers::Generations(gens) = answers else {
            return Vec::new();
        };
        let texts: Vec<String> = gens.iter().map(|g| g.text.clone()).collect();
        self.pipelines
            .iter()
            .map(|p| (p.name.clone(), p.apply(&texts)))
            .collect()
    }

    /// A document's scores: one value per entry of `keys`, and the details its per-sample log
    /// shows (how each program ended, for pass@k tasks).
    pub fn score(&self, instance: &DocInstance, answers: &Answers) -> Result<Scored, TaskError> {
        let values = match (&instance.kind, answers) {
            (DocKind::MultipleChoice { choices, gold }, Answers::Loglikelihoods(lls)) => {
                let logprobs: Vec<f64> = lls.iter().map(|l| l.logprob).collect();
                metrics::multiple_choice::score(&self.metrics, &logprobs, choices, gold)
            }
            (DocKind::Loglikelihood, Answers::Loglikelihoods(lls)) => {
                metrics::loglikelihood::score(&self.metrics, &lls[0])
            }
            (DocKind::Rolling { text }, Answers::Rolling(r)) => {
                metrics::rolling::score(&self.metrics, text, r)
            }
            (DocKind::Generate { request }, Answers::Generations(_)) if self.runs_code() => {
                let tests = text_of(&instance.target);
                let mut values = Vec::with_capacity(self.keys.len());
                let mut details = serde_json::Map::new();
                for (filter, answers) in self.filtered(answers) {
                    let (v, runs) = metrics::pass_at_k::score(
                        &self.metrics,
                        self.sandbox.as_deref(),
                        &request.context,
                        &tests,
                        &answers,
                        |e| TaskError::Invalid {
                            task: self.name.clone(),
                            message: format!("document {}: {e}", instance.doc_id),
                        },
                    )?;
                    values.extend(v);
                    details.insert(filter, runs);
                }
                return Ok(Scored {
                    values,
                    details: Some(Value::Object(details)),
                });
            }
            (DocKind::Generate { .. }, Answers::Generations(_)) => {
                let references: Vec<String> = match &instance.target {
                    Value::Array(items) => items.iter().map(text_of).collect(),
                    other => vec![text_of(other)],
                };
                let mut values = Vec::with_capacity(self.keys.len());
                for (_, answers) in self.filtered(answers) {
                    let answer = answers.first().cloned().unwrap_or_default();
                    let truthfulqa = match &instance.target {
                        Value::Object(refs) => Some(metrics::truthfulqa::scores(&answer, refs)),
                        _ => None,
                    };
                    for &m in &self.metrics {
                        values.push(match truthfulqa.as_ref().and_then(|t| t.get(&m)) {
                            Some(found) => DocValue::Scalar(*found),
                            None => metrics::reference::score(
                                m,
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
        })
    }

    /// SHA-256 of a document (for per-sample logs).
    pub fn doc_hash(&self, doc_id: usize) -> String {
        // lm-eval hashes `json.dumps(doc, indent=2, ensure_ascii=False)`: the same text as
        // serde_json's pretty printer (two-space indent, fields in file order, UTF-8 kept).
        hash(&serde_json::to_string_pretty(&self.docs[doc_id]).unwrap_or_default())
    }
}

/// A JSON value as text: strings as they are, anything else as JSON.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A document's prompt.
enum Prompt {
    Text(String),
    ChoiceIndex(usize),
}

/// Hex SHA-256 of a string.
pub fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn metrics_for(
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
fn exact_match_options(spec: &TaskSpec) -> Result<ExactMatch, String> {
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
fn generation_template(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn task(yaml: &str, rows: &str) -> (tempfile::TempDir, PreparedTask) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::File::create(dir.path().join("d.jsonl"))
            .unwrap()
            .write_all(rows.as_bytes())
            .unwrap();
        let spec: TaskSpec = serde_yaml::from_str(yaml).unwrap();
        let prepared =
            PreparedTask::prepare("t", &spec, &DataDir(dir.path().to_path_buf()), None).unwrap();
        (dir, prepared)
    }

    const ROWS: &str = "{\"q\": \"Q1\", \"c\": [\"a\", \"b\"], \"g\": 1}\n{\"q\": \"Q2\", \"c\": [\"c\", \"d\"], \"g\": 0}\n{\"q\": \"Q3\", \"c\": [\"e\", \"f\"], \"g\": 1}\n";

    #[test]
    fn multiple_choice_context_with_description_and_fewshot() {
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: g\ndoc_to_choice: c\ndescription: \"About {{q}}.\\n\\n\"\nnum_fewshot: 1\nfewshot_config: {sampler: first_n}\n",
            ROWS,
        );
        let inst = t.instance(0).unwrap();
        // The document itself is never its own example: doc 1 is used.
        assert_eq!(
            inst.requests[0].context,
            "About Q1.\n\nQ: Q2\nA: c\n\nQ: Q1\nA:"
        );
        assert_eq!(inst.requests[1].continuation, " b");
        assert_eq!(
            inst.kind,
            DocKind::MultipleChoice {
                choices: vec!["a".into(), "b".into()],
                gold: vec![1]
            }
        );
    }

    #[test]
    fn shared_prefix_is_the_common_start_of_the_first_two_contexts() {
        // Fixed description and examples (the first two rows, from a separate split).
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\nfewshot_split: test\noutput_type: multiple_choice\ndoc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: g\ndoc_to_choice: c\ndescription: \"Quiz.\\n\\n\"\nnum_fewshot: 0\n",
            ROWS,
        );
        assert_eq!(t.shared_prefix().unwrap().as_deref(), Some("Quiz.\n\nQ: Q"));
        assert!(t.instance(2).unwrap().requests[0]
            .context
            .starts_with("Quiz.\n\nQ: Q"));
        let (_d, one) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\n",
            "{\"q\": \"Q1\", \"c\": [\"a\"], \"g\": 0}\n",
        );
        assert_eq!(one.shared_prefix().unwrap(), None);
    }

    #[test]
    fn random_fewshot_depends_only_on_the_document() {
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\nnum_fewshot: 1\n",
            ROWS,
        );
        let a = t.instance(2).unwrap();
        let b = t.instance(2).unwrap();
        assert_eq!(a, b);
        assert!(!a.requests[0].context.starts_with("Q3"));
    }

    #[test]
    fn choices_as_contexts_share_the_continuation() {
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{ g }}\"\ndoc_to_target: \"rest of it\"\ndoc_to_choice: \"{{ [q + ' a', q + ' b'] }}\"\n",
            ROWS,
        );
        let inst = t.instance(0).unwrap();
        assert_eq!(inst.requests[0].context, "Q1 a");
        assert_eq!(inst.requests[1].context, "Q1 b");
        assert_eq!(inst.requests[1].continuation, " rest of it");
    }

    fn prepare_err(yaml: &str) -> String {
        let (dir, _) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\n",
            ROWS,
        );
        let spec: TaskSpec = serde_yaml::from_str(yaml).unwrap();
        PreparedTask::prepare("t", &spec, &DataDir(dir.path().to_path_buf()), None)
            .err()
            .unwrap()
            .to_string()
    }

    const GEN: &str = "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: generate_until\ndoc_to_text: q\ndoc_to_target: g\n";

    #[test]
    fn bad_generation_settings_fail_before_inference() {
        let err = prepare_err(&format!("{GEN}generation_kwargs: {{until: []}}\n"));
        assert!(err.contains("until is empty"), "{err}");
        let err = prepare_err(&format!("{GEN}generation_kwargs: {{temperature: -0.5}}\n"));
        assert!(err.contains("temperature must be >= 0"), "{err}");
        let err = prepare_err(&format!("{GEN}generation_kwargs: {{max_gen_toks: 0}}\n"));
        assert!(err.contains("max_gen_toks must be at least 1"), "{err}");
        let err = prepare_err(&format!("{GEN}filter_list: [{{name: x, filter: [{{function: regex, regex_pattern: \"([\"}}]}}]\n"));
        assert!(
            err.contains("filter `x`, step 1 (regex): invalid regex"),
            "{err}"
        );
        let err = prepare_err(&format!(
            "{GEN}filter_list: [{{name: x, filter: [{{function: extract_magic}}]}}]\n"
        ));
        assert!(
            err.contains("unknown filter function `extract_magic`"),
            "{err}"
        );
    }

    #[test]
    fn generation_requests_carry_settings_and_overrides() {
        let (_d, mut t) = task(
            &format!("{GEN}generation_kwargs: {{until: [\"\\n\"], max_gen_toks: 9}}\n"),
            ROWS,
        );
        let DocKind::Generate { request } = t.instance(1).unwrap().kind else {
            panic!()
        };
        assert_eq!((request.context.as_str(), request.max_gen_toks), ("Q2", 9));
        assert_eq!(request.until, vec!["\n"]);
        assert_eq!(request.sampling.temperature, 0.0);
        t.override_generation(&[
            ("max_gen_toks".into(), "4".into()),
            ("temperature".into(), "0.7".into()),
        ])
        .unwrap();
        let DocKind::Generate { request } = t.instance(1).unwrap().kind else {
            panic!()
        };
        assert_eq!(
            (request.max_gen_toks, request.sampling.temperature),
            (4, 0.7)
        );
        assert!(t
            .override_generation(&[("beams".into(), "2".into())])
            .is_err());
    }

    #[test]
    fn bad_gold_and_metrics_are_clear_errors() {
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: 7\ndoc_to_choice: c\n",
            ROWS,
        );
        let err = t.instance(0).unwrap_err().to_string();
        assert!(
            err.contains("task t, doc 0, doc_to_target: gold index 7 but only 2 choices"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let spec: TaskSpec = serde_yaml::from_str("task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\nmetric_list: [{metric: bleu}]\n").unwrap();
        let err = PreparedTask::prepare("t", &spec, &DataDir(dir.path().into()), None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown metric `bleu`"), "{err}");
        let err = PreparedTask::prepare(
            "t",
            &TaskSpec {
                metric_list: None,
                ..spec
            },
            &DataDir(dir.path().into()),
            None,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("data file not found"), "{err}");
    }
}

#[cfg(test)]
mod builtin_tests {
    use super::*;
    use crate::Registry;
    use assay_core::StopReason;

    fn data_dir() -> DataDir {
        DataDir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
    }

    /// Scores `text` as the generation of document `doc_id`.
    fn score_as_generation(task: &PreparedTask, doc_id: usize, text: &str) -> Vec<DocValue> {
        scored_generation(task, doc_id, text).values
    }

    /// The scores of `text` as the generation of document `doc_id`, with their details.
    fn scored_generation(task: &PreparedTask, doc_id: usize, text: &str) -> Scored {
        let instance = task.instance(doc_id).unwrap();
        let answers = Answers::Generations(vec![Generation {
            text: text.to_string(),
            tokens: 1,
            stop: StopReason::Until,
            truncated: false,
        }]);
        task.score(&instance, &answers).unwrap()
    }

    #[test]
    fn gsm8k_gold_solutions_score_one_under_both_filters() {
        let registry = Registry::load(&[]).unwrap();
        let (spec, _) = registry.task("gsm8k").unwrap();
        let task = PreparedTask::prepare("gsm8k", spec, &data_dir(), Some(0)).unwrap();
        for doc_id in 0..task.docs.len() {
            let gold = task.docs[doc_id]["answer"].as_str().unwrap().to_string();
            let values = score_as_generation(&task, doc_id, &format!(" {gold}"));
            assert_eq!(values, vec![DocValue::Scalar(1.0); 2], "doc {doc_id}");
        }
        let wrong = score_as_generation(&task, 0, " So she makes 17 dollars.\n#### 17");
        assert_eq!(wrong, vec![DocValue::Scalar(0.0); 2]);
    }

    #[test]
    fn humaneval_runs_programs_in_the_sandbox_and_records_each_outcome() {
        let registry = Registry::load(&[]).unwrap();
        let (spec, _) = registry.task("humaneval").unwrap();
        let mut task = PreparedTask::prepare("humaneval", spec, &data_dir(), None).unwrap();
        assert!(task.runs_code());
        let sandbox = assay_sandbox::Sandbox::detect(assay_sandbox::Limits::default()).unwrap();
        task.set_sandbox(std::sync::Arc::new(sandbox));
        // The canonical solutions of the first problems pass; a wrong body fails with its
        // exception; the outcomes come with the scores, for the sample log.
        for doc_id in 0..5 {
            let solution = task.docs[doc_id]["canonical_solution"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(
                score_as_generation(&task, doc_id, &solution),
                vec![DocValue::Scalar(1.0)],
                "doc {doc_id}"
            );
        }
        let wrong = scored_generation(&task, 0, "    return None\n");
        assert_eq!(wrong.values, vec![DocValue::Scalar(0.0)]);
        let runs = wrong.details.unwrap();
        assert_eq!(runs["create_test"][0]["outcome"], "failed");
        assert_eq!(runs["create_test"][0]["kind"], "AssertionError");
        // pass@k needs k samples, and does not mix with other metrics.
        let yaml = |extra: &str| format!("include: humaneval.yaml\ntask: he_bad\n{extra}");
        for (extra, message) in [
            (
                "metric_list:\n  - metric: pass@10\n",
                "needs at least 10 samples",
            ),
            (
                "metric_list:\n  - metric: pass@1\n  - metric: exact_match\n",
                "cannot be mixed",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("humaneval.yaml"),
                registry
                    .task("humaneval")
                    .map(|(s, _)| serde_yaml::to_string(s).unwrap())
                    .unwrap(),
            )
            .unwrap();
            std::fs::write(dir.path().join("he_bad.yaml"), yaml(extra)).unwrap();
            let local = Registry::load(&[dir.path().to_path_buf()]).unwrap();
            let (spec, _) = local.task("he_bad").unwrap();
            let err = PreparedTask::prepare("he_bad", spec, &data_dir(), None)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn truthfulqa_gen_separates_true_false_and_refusals() {
        let registry = Registry::load(&[]).unwrap();
        let (spec, _) = registry.task("truthfulqa_gen").unwrap();
        let task = PreparedTask::prepare("truthfulqa_gen", spec, &data_dir(), None).unwrap();
        let index = |m: MetricKind| task.keys.iter().position(|(k, _)| *k == m).unwrap();
        let doc = &task.docs[0];
        // The longest answers: BLEU needs at least four tokens to be non-zero (as in sacreBLEU).
        let longest = |field: &str| {
            doc[field]
                .as_str()
                .unwrap()
                .split("; ")
                .max_by_key(|a| a.len())
                .unwrap()
                .to_string()
        };
        let (truth, lie) = (longest("Correct Answers"), longest("Incorrect Answers"));
        let v = score_as_generation(&task, 0, &format!(" {truth}"));
        assert_eq!(v[index(MetricKind::Truthful)], DocValue::Scalar(1.0));
        assert_eq!(v[index(MetricKind::BleuAcc)], DocValue::Scalar(1.0));
        assert_eq!(v[index(MetricKind::RougeLMax)], DocValue::Scalar(100.0));
        let v = score_as_generation(&task, 0, &format!(" {lie}"));
        assert_eq!(v[index(MetricKind::Untruthful)], DocValue::Scalar(1.0));
        assert_eq!(v[index(MetricKind::Rouge1Acc)], DocValue::Scalar(0.0));
        let v = score_as_generation(&task, 0, " I have no comment.");
        assert_eq!(v[index(MetricKind::Refusal)], DocValue::Scalar(1.0));
        assert_eq!(v[index(MetricKind::Truthful)], DocValue::Scalar(0.0));
    }

    #[test]
    fn math500_reference_answers_are_equivalent_to_themselves_boxed() {
        let registry = Registry::load(&[]).unwrap();
        let (spec, _) = registry.task("math500").unwrap();
        let task = PreparedTask::prepare("math500", spec, &data_dir(), Some(0)).unwrap();
        let mut ok = 0;
        for doc_id in 0..task.docs.len() {
            let answer = task.docs[doc_id]["answer"].as_str().unwrap();
            let text = format!(
                " We compute.\nFinal Answer: The final answer is ${answer}$. I hope it is correct."
            );
            ok += usize::from(
                score_as_generation(&task, doc_id, &text) == vec![DocValue::Scalar(1.0)],
            );
        }
        assert_eq!(ok, task.docs.len());
    }
}
