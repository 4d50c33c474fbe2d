//! `assay generate`: a prompt set through several models and prompt formats, one JSONL per model
//! and format (response, reasoning, timing, refusal flag), a run log per model, and the folder
//! indexed into DATA_MAPPING.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use assay_core::{GenerationRequest, Sampling};
use assay_tasks::{ChatFormat, Message};
use assay_validate::prompts::formats::{choose_formats, read_format_file, PromptFormat};
use assay_validate::prompts::promptset::{
    answered_ids, read_prompt_set, ResponseRecord, Role, SeedPrompt,
};
use assay_validate::prompts::reasoning::split_reasoning;
use assay_validate::prompts::refusal::detect_refusal;

use crate::backend::{chat_template_for, resolve_model, ApiArg, BackendArgs, BackendKind, Runner};
use crate::guard::Guard;

/// Arguments of `assay generate`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    assay generate --prompts prompts.jsonl --out validation/\n  \
    assay generate --model base=gemma-3-1b.gguf --model lem=lem-1b.gguf --fine-tuned lem \\\n                 --prompts prompts.jsonl --formats naked,sandwich --out validation/\n  \
    assay generate --backend openai --base-url http://localhost:8000/v1 --model base --model lem \\\n                 --fine-tuned lem --prompts prompts.jsonl --out validation/\n\n\
    --model is `[LABEL=]GGUF` (the label names the output folder; default: the file name), or \
    with --backend openai a model name on the server. Outputs go to \
    OUT/data/{baseline,fine-tuned}/LABEL/FORMAT.jsonl and OUT/logs/LABEL.log, and the whole \
    folder is indexed into OUT/DATA_MAPPING.md (as `assay index OUT` does). Built-in formats: naked, system_style, kernel_only, \
    sandwich (see docs/VALIDATION.md). Prompts are answered one at a time so that each \
    response's gen_time and tokens/s are its own; the request cache is not used. Run the same \
    command again after an interruption and only the missing responses are generated.")]
pub struct GenerateArgs {
    /// Prompts: JSONL with `seed_id` (or `id`) and `prompt` (or `text`).
    #[arg(long, value_name = "FILE")]
    prompts: PathBuf,
    /// Prompt formats to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "naked,system_style,kernel_only,sandwich"
    )]
    formats: Vec<String>,
    /// YAML file of more formats: `NAME: {system: …, before: …, after: …}`.
    #[arg(long, value_name = "FILE")]
    format_file: Option<PathBuf>,
    /// Labels of the models that are fine-tuned (the others are baselines); repeatable.
    #[arg(long, value_name = "LABEL", value_delimiter = ',')]
    fine_tuned: Vec<String>,
    /// The output folder (created; re-used to resume).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Only the first N prompts.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Most tokens per response.
    #[arg(long, default_value_t = 512, value_name = "K")]
    max_new_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Seed for sampling.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Send the formatted text as is, without the model's chat template.
    #[arg(long)]
    no_chat_template: bool,
    /// Chat template instead of the model's: gemma, chatml, llama3 or a Jinja file [default:
    /// the model's own; plain text for a model without one, such as a base model].
    #[arg(long, value_name = "NAME|FILE", conflicts_with = "no_chat_template")]
    chat_template: Option<String>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// A model to run: its label, role and backend settings.
struct ModelRun {
    label: String,
    role: Role,
    backend: BackendArgs,
}

/// The models `--model` names (one backend setting each).
fn models(args: &GenerateArgs) -> anyhow::Result<Vec<ModelRun>> {
    let mut runs = Vec::new();
    for spec in &args.backend.model {
        let (label, model) = match spec.split_once('=') {
            Some((l, m)) if !l.is_empty() => (Some(l.to_string()), m.to_string()),
            _ => (None, spec.clone()),
        };
        let mut backend = args.backend.clone();
        backend.no_cache = true;
        let label = match args.backend.backend {
            BackendKind::Llama => {
                backend.model = vec![model.clone()];
                label.unwrap_or(
                    resolve_model(&model)?
                        .file_stem()
                        .map_or(model.clone(), |s| s.to_string_lossy().into_owned()),
                )
            }
            BackendKind::Openai if model == "default" => {
                let name = args.backend.model_name.clone().context(
                    "--backend openai: name the served models with --model NAME (or --model-name)",
                )?;
                label.unwrap_or(name)
            }
            BackendKind::Openai => {
                backend.model = vec!["default".into()];
                backend.model_name = Some(model.clone());
                label.unwrap_or(model)
            }
        };
        if label.is_empty() || label.contains(['/', '\\']) || label.starts_with('.') {
            bail!("--model {spec}: the label `{label}` cannot name a folder; give LABEL=MODEL");
        }
        if runs.iter().any(|r: &ModelRun| r.label == label) {
            bail!("--model {spec}: the label `{label}` is used twice; give LABEL=MODEL");
        }
        let role = if args.fine_tuned.contains(&label) {
            Role::FineTuned
        } else {
            Role::Baseline
        };
        runs.push(ModelRun {
            label,
            role,
            backend,
        });
    }
    if let Some(unknown) = args
        .fine_tuned
        .iter()
        .find(|l| !runs.iter().any(|r| &r.label == *l))
    {
        bail!(
            "--fine-tuned {unknown}: no model has that label (labels: {})",
            runs.iter()
                .map(|r| r.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(runs)
}

/// Turns a formatted prompt into the text sent to the model.
enum Renderer {
    /// Through a chat template.
    Chat(Box<ChatFormat>),
    /// As plain text (no template, or a chat endpoint that applies its own).
    Plain,
}

impl Renderer {
    fn for_model(args: &GenerateArgs, runner: &mut Runner) -> anyhow::Result<(Renderer, String)> {
        if args.no_chat_template {
            return Ok((Renderer::Plain, "none (--no-chat-template)".into()));
        }
        if args.backend.backend == BackendKind::Openai && args.backend.api == ApiArg::Chat {
            return Ok((
                Renderer::Plain,
                "the server's (--api chat; a system text opens the user message)".into(),
            ));
        }
        if args.chat_template.is_none() && runner.backend().chat_template().is_none() {
            // Most likely a base model: it continues plain text.
            return Ok((
                Renderer::Plain,
                "none: the model has none (plain text; --chat-template NAME|FILE to use one)"
                    .into(),
            ));
        }
        let (template, source) =
            chat_template_for(args.chat_template.as_deref(), runner.backend())?;
        let tokens = &runner.info().special_tokens;
        let text =
            |t: &Option<(String, String)>| t.as_ref().map(|t| t.0.clone()).unwrap_or_default();
        let chat = ChatFormat::new(
            &template,
            &text(&tokens.bos),
            &text(&tokens.eos),
            None,
            false,
        )
        .map_err(anyhow::Error::msg)?;
        Ok((Renderer::Chat(Box::new(chat)), source))
    }

    fn render(&self, format: &PromptFormat, prompt: &str) -> anyhow::Result<String> {
        let r = format.render(prompt);
        match self {
            Renderer::Plain => Ok(r.plain()),
            Renderer::Chat(chat) => {
                let mut messages = Vec::new();
                if let Some(system) = r.system {
                    messages.push(Message {
                        role: "system",
                        content: system,
                    });
                }
                messages.push(Message {
                    role: "user",
                    content: r.user,
                });
                chat.render(&messages).map_err(anyhow::Error::msg)
            }
        }
    }
}

/// An append-only log file with timestamps.
struct RunLog(std::fs::File);

impl RunLog {
    fn open(path: &Path) -> anyhow::Result<RunLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(RunLog(file))
    }

    fn line(&mut self, text: &str) -> anyhow::Result<()> {
        let stamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        writeln!(self.0, "{stamp} {text}").context("writing the run log")
    }
}

/// One response record, timed.
fn answer(
    runner: &mut Runner,
    request: GenerationRequest,
    prompt: &SeedPrompt,
    model: &ModelRun,
    format: &PromptFormat,
) -> anyhow::Result<ResponseRecord> {
    let start = Instant::now();
    let generations = runner
        .backend()
        .generate_until_many(&[request], &mut |_, _| {})?;
    let gen_time = start.elapsed().as_secs_f64();
    let g = generations
        .into_iter()
        .next()
        .and_then(|g| g.into_iter().next())
        .context("the backend returned no generation")?;
    let split = split_reasoning(&g.text);
    let refusal = detect_refusal(&split.response);
    Ok(ResponseRecord {
        seed_id: prompt.seed_id.clone(),
        model: model.label.clone(),
        role: model.role,
        format: format.name.clone(),
        prompt: prompt.prompt.clone(),
        chars: split.response.chars().count(),
        reasoning_chars: split.reasoning.as_deref().map_or(0, |r| r.chars().count()),
        response: split.response,
        reasoning: split.reasoning,
        tokens: g.tokens,
        gen_time,
        tokens_per_s: g.tokens as f64 / gen_time.max(1e-9),
        is_refusal: refusal.is_some(),
        refusal_phrase: refusal.map(|m| m.phrase.to_string()),
        stop: serde_json::to_value(&g.stop)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    })
}

/// Runs `assay generate`; returns the exit code.
pub fn run(args: GenerateArgs) -> anyhow::Result<i32> {
    if args.max_new_tokens == 0 {
        bail!("--max-new-tokens 0: responses would be empty");
    }
    let mut warnings: Vec<String> = Vec::new();
    let set = read_prompt_set(&args.prompts)?;
    warnings.extend(set.problems.iter().map(|p| format!("skipped {p}")));
    let mut prompts = set.prompts;
    if let Some(n) = args.limit {
        prompts.truncate(n);
    }
    let file_formats = match &args.format_file {
        Some(path) => read_format_file(path)?,
        None => Default::default(),
    };
    // A broken definition is reported and its format left out (never replaced by a built-in
    // format of the same name).
    let broken: Vec<String> = file_formats
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect();
    warnings.extend(broken.iter().map(|b| format!("skipped {b}")));
    let asked: Vec<String> = args
        .formats
        .iter()
        .filter(|name| {
            !broken
                .iter()
                .any(|b| b.contains(&format!("format `{name}`")))
        })
        .cloned()
        .collect();
    let formats = choose_formats(&asked, &file_formats.formats)?;
    if formats.is_empty() {
        bail!("no usable prompt format left to run");
    }
    let models = models(&args)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    std::fs::create_dir_all(args.out.join("logs"))
        .with_context(|| format!("creating {}", args.out.display()))?;
    let total = (models.len() * formats.len() * prompts.len()) as u64;
    let bar = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template(
            "generate {prefix} {bar:30} {pos}/{len} responses [{elapsed_precise}<{eta_precise}]",
        )
        .expect("a valid template"),
    );
    let guard = Guard::install(&args.backend.limits, "response")?;
    let (mut written, mut refusals) = (0usize, 0usize);
    'models: for model in &models {
        let data = args
            .out
            .join("data")
            .join(model.role.folder())
            .join(&model.label);
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let mut log = RunLog::open(&args.out.join("logs").join(format!("{}.log", model.label)))?;
        log.line(&format!(
            "assay generate {}: model {} ({}, {}); {} prompts from {}; formats {}; max_new_tokens {}, temperature {}, seed {}",
            env!("CARGO_PKG_VERSION"),
            model.label,
            model.backend.model_name.clone().unwrap_or_else(|| model.backend.model[0].clone()),
            model.role.folder(),
            prompts.len(),
            args.prompts.display(),
            formats.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(","),
            args.max_new_tokens,
            args.temperature,
            args.seed
        ))?;
        for w in &warnings {
            log.line(&format!("warning: {w}"))?;
        }
        let loading = Instant::now();
        let mut runner = model.backend.open()?;
        let (renderer, template) = Renderer::for_model(&args, &mut runner)?;
        log.line(&format!(
            "model loaded in {:.1}s: {} backend, {}; chat template: {template}",
            loading.elapsed().as_secs_f64(),
            runner.info().backend,
            runner.info().model_path.display()
        ))?;
        bar.set_prefix(model.label.clone());
        for format in &formats {
            let path = data.join(format!("{}.jsonl", format.name));
            let done = answered_ids(&path)?;
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let (mut n, mut chars, mut tokens, mut secs, mut refused) = (0, 0, 0, 0.0, 0);
            for prompt in &prompts {
                if guard.should_stop() {
                    written += n;
                    refusals += refused;
                    break 'models;
                }
                if done.contains(&prompt.seed_id) {
                    bar.inc(1);
                    continue;
                }
                let request = GenerationRequest {
                    context: renderer.render(format, &prompt.prompt)?,
                    until: Vec::new(),
                    max_gen_toks: args.max_new_tokens,
                    sampling: if args.temperature > 0.0 {
                        Sampling {
                            temperature: args.temperature,
                            top_p: 1.0,
                            top_k: 0,
                            seed: args.seed,
                        }
                    } else {
                        Sampling::greedy()
                    },
                    n: 1,
                };
                let record =
                    answer(&mut runner, request, prompt, model, format).with_context(|| {
                        format!("{} on {} ({})", model.label, prompt.seed_id, format.name)
                    })?;
                out.write_all(format!("{}\n", serde_json::to_string(&record)?).as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
                log.line(&format!(
                    "[{}] {}: {:.1}s, {} tokens, {:.1} tokens/s, {} chars, {} reasoning chars, refusal {}",
                    format.name,
                    record.seed_id,
                    record.gen_time,
                    record.tokens,
                    record.tokens_per_s,
                    record.chars,
                    record.reasoning_chars,
                    record.refusal_phrase.as_deref().map_or("no".to_string(), |p| format!("yes ({p:?})"))
                ))?;
                n += 1;
                chars += record.chars;
                tokens += record.tokens;
                secs += record.gen_time;
                refused += usize::from(record.is_refusal);
                bar.inc(1);
            }
            if n > 0 {
                log.line(&format!(
                    "[{}] done: {n} responses ({} already there), mean {:.0} chars, {:.1} tokens/s, {refused} refusals",
                    format.name,
                    done.len(),
                    chars as f64 / n as f64,
                    tokens as f64 / secs.max(1e-9)
                ))?;
            }
            written += n;
            refusals += refused;
        }
    }
    bar.finish_and_clear();
    println!(
        "{written} responses written ({refusals} refusals) for {} models x {} formats x {} prompts -> {}",
        models.len(),
        formats.len(),
        prompts.len(),
        args.out.display()
    );
    if !warnings.is_empty() {
        println!("{} inputs skipped (see the warnings above)", warnings.len());
    }
    let (index, md, _) = super::index::write_index(&args.out, None, None)?;
    let mut rows = vec![[
        "Model",
        "Format",
        "Responses",
        "Mean chars",
        "Tokens/s",
        "Refusal rate",
    ]
    .map(String::from)
    .to_vec()];
    for r in &index.format_comparison {
        rows.push(vec![
            r.model.clone(),
            r.format.clone(),
            r.responses.to_string(),
            format!("{:.0}", r.mean_chars),
            r.tokens_per_s.map_or("-".into(), |t| format!("{t:.1}")),
            r.refusal_rate
                .map_or("-".into(), |x| format!("{:.1}%", 100.0 * x)),
        ]);
    }
    print!("{}", assay_records::aligned_table(&rows));
    println!("folder indexed -> {}", md.display());
    if let Some(stop) = guard.stopped() {
        eprintln!(
            "{}: finished responses are kept; run the same command again to generate the rest",
            stop.describe()
        );
        return Ok(stop.exit_code());
    }
    Ok(0)
}
