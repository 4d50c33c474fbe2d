//! The embedded backend: GGUF models through llama.cpp (`llama-cpp-2`).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use assay_core::{
    Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, Primitive,
    RollingLoglikelihood,
};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::token::LlamaToken;

use assay_backend::plan::{self, BatchToken, Limits, Token, TokenizedRequest};
use assay_backend::{
    AdapterInfo, Backend, BackendError, BackendInfo, GenerationSink, LoglikelihoodSink,
    RollingSink, SpecialTokens, TextTokenizer,
};

use crate::generator::{Generator, Prompt};
use crate::runtime::{apply_adapter, llama_backend};
use crate::tokenizer::Tokenizer;
use crate::LlamaError;

/// Most sequences one decode call may hold; the last id holds a task's shared prefix.
const MAX_SEQS: usize = 32;
/// The sequence id of the shared prefix (never used by a document's requests).
const PREFIX_SEQ: i32 = MAX_SEQS as i32 - 1;
/// Shared prefixes shorter than this many tokens are not worth keeping.
const MIN_SHARED_PREFIX: usize = 8;
/// Most logit rows one decode call may produce (each row is a vocabulary of floats).
const MAX_OUTPUTS: usize = 256;
/// Sequences generated at once across documents unless told otherwise (1: one document at a
/// time, each a function of itself alone).
pub const DEFAULT_PARALLEL: usize = 1;
/// Most samples of one document generated at once.
const MAX_SAMPLE_SLOTS: usize = 8;

/// How to run the model.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// CPU threads for the forward pass.
    pub threads: usize,
    /// Context window in tokens (longest scored sequence); `None`: the model's trained
    /// context, capped so that the KV caches fit in memory ([`default_ctx_size`]).
    pub ctx_size: Option<u32>,
    /// A limit on the process's memory (`--max-memory`), which the default window respects.
    pub max_memory: Option<u64>,
    /// Layers to offload to a GPU (0 = CPU only).
    pub gpu_layers: u32,
    /// Sequences generated at once (continuous batching across documents).
    pub parallel: usize,
    /// A LoRA adapter to apply at run time.
    pub lora: Option<LoraSettings>,
}

/// A LoRA adapter (GGUF) and the scale to apply it with.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    /// The adapter file.
    pub path: PathBuf,
    /// Its scale (0 leaves the model as it is).
    pub scale: f32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ctx_size: None,
            max_memory: None,
            gpu_layers: 0,
            parallel: DEFAULT_PARALLEL,
            lora: None,
        }
    }
}

/// The default window: the model's trained context, capped so that the KV caches the engine
/// may hold at once fit in half the memory available now (or half of what `--max-memory`
/// leaves beside the model): the scoring context's two windows, and a generation context of
/// up to [`MAX_SAMPLE_SLOTS`] (or `--parallel`) streams plus its prompt cache. Counted at 16-bit
/// keys and values in every layer, which over-counts models with sliding-window layers.
pub fn default_ctx_size(model: &LlamaModel, settings: &EngineSettings, model_bytes: u64) -> u32 {
    let meta = |key: &str| {
        let arch = model.meta_val_str("general.architecture").ok()?;
        model
            .meta_val_str(&format!("{arch}.{key}"))
            .ok()?
            .parse::<u64>()
            .ok()
    };
    let head_dim = (model.n_embd().max(1) as u64) / u64::from(model.n_head().max(1));
    let per_token = u64::from(model.n_layer())
        * u64::from(model.n_head_kv().max(1))
        * (meta("attention.key_length").unwrap_or(head_dim)
            + meta("attention.value_length").unwrap_or(head_dim))
        * 2;
    let streams = 2 + settings.parallel.max(MAX_SAMPLE_SLOTS) as u64 + 1;
    let mut budget = available_memory().unwrap_or(4 << 30);
    if let Some(limit) = settings.max_memory {
        budget = budget.min(limit.saturating_sub(model_bytes));
    }
    window_for(model.n_ctx_train(), budget / 2, streams * per_token.max(1))
}

/// The largest window (a multiple of 256, at least 256) up to `trained` whose KV caches,
/// `bytes_per_window_token` for each token of the window, fit in `budget` bytes.
fn window_for(trained: u32, budget: u64, bytes_per_window_token: u64) -> u32 {
    let fits = (budget / bytes_per_window_token).min(u64::from(u32::MAX)) as u32;
    let trained = if trained == 0 { 2048 } else { trained };
    (trained.min(fits) / 256 * 256).max(256)
}

/// Memory the system can give without swapping (`MemAvailable` of /proc/meminfo), in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A GGUF model loaded in llama.cpp with one inference context.
pub struct LlamaEngine {
    model: &'static LlamaModel,
    ctx: LlamaContext<'static>,
    batch: LlamaBatch<'static>,
    info: BackendInfo,
    limits: Limits,
    tokenizer: Tokenizer,
    tokens_processed: u64,
    /// The generation context, created on the first generation request.
    generator: Option<Generator>,
    /// The current task's shared prefix (empty when none), kept in the KV cache as
    /// sequence [`PREFIX_SEQ`] and in the generation context's prompt cache.
    prefix: Vec<Token>,
    /// The LoRA adapter applied to every context, if any.
    lora: Option<(&'static mut LlamaLoraAdapter, AdapterInfo)>,
}

impl LlamaEngine {
    /// Loads the model at `path` (checked to be a GGUF file first) with `settings`.
    pub fn load(path: &Path, settings: &EngineSettings) -> Result<Self, LlamaError> {
        assay_gguf::check_header(path)?;
        let model_sha256 = assay_gguf::sha256_file(path)?;
        let backend = llama_backend();
        let params = LlamaModelParams::default().with_n_gpu_layers(settings.gpu_layers);
        let mut model = LlamaModel::load_from_file(backend, path, &params).map_err(|_| {
            LlamaError::LoadFailed {
                path: path.to_path_buf(),
            }
        })?;
        let adapter = match &settings.lora {
            Some(lora) => {
                assay_gguf::check_header(&lora.path)?;
                let adapter =
                    model
                        .lora_adapter_init(&lora.path)
                        .map_err(|e| LlamaError::Adapter {
                            path: lora.path.clone(),
                            reason: e.to_string(),
                        })?;
                let info = AdapterInfo {
                    path: lora.path.display().to_string(),
                    sha256: assay_gguf::sha256_file(&lora.path)?,
                    scale: lora.scale,
                };
                // Like the model, the adapter lives as long as the process.
                Some((Box::leak(Box::new(adapter)), info))
            }
            None => None,
        };
        // The model lives as long as the process: contexts borrow it, and an evaluation
        // loads one model (or a few) per run.
        let model: &'static LlamaModel = Box::leak(Box::new(model));
        let threads = settings.threads.max(1);
        let model_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let ctx_size = settings
            .ctx_size
            .unwrap_or_else(|| default_ctx_size(model, settings, model_bytes));
        // llama.cpp rounds the context up to a multiple of 256; do it first so that the batch
        // size (a whole document per decode call) matches the window.
        let ctx_size = ctx_size.max(1).div_ceil(256) * 256;
        let context_error = |reason: String| LlamaError::Context {
            ctx_size,
            threads,
            reason,
        };
        let ctx_params = LlamaContextParams::default()
            // Room for a shared prefix of up to a window beside the document's own window.
            .with_n_ctx(NonZeroU32::new(2 * ctx_size))
            .with_n_batch(ctx_size)
            .with_n_ubatch(512.min(ctx_size))
            .with_n_seq_max(MAX_SEQS as u32)
            .with_kv_unified(true)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32);
        let mut ctx = model
            .new_context(backend, ctx_params)
            .map_err(|e| context_error(e.to_string()))?;
        let (lora, adapter_info) = match adapter {
            Some((adapter, info)) => {
                apply_adapter(&mut ctx, adapter, &info)?;
                (Some((adapter, info.clone())), Some(info))
            }
            None => (None, None),
        };
        let n_ctx = ctx.n_batch() as usize;
        let tokenizer = Tokenizer::of(model);
        let meta = |key: &str| model.meta_val_str(key).ok();
        let info = BackendInfo {
            backend: "llama.cpp".into(),
            model_path: path.to_path_buf(),
            model_name: model_name(path),
            model_sha256,
            model_bytes,
            n_params: model.n_params(),
            quantization: meta("general.file_type")
                .and_then(|v| v.parse::<u32>().ok())
                .map_or_else(|| "unknown".into(), assay_gguf::file_type_name),
            architecture: meta("general.architecture").unwrap_or_else(|| "unknown".into()),
            n_ctx_train: model.n_ctx_train(),
            ctx_size: n_ctx as u32,
            threads,
            parallel: settings.parallel.max(1),
            gpu_layers: settings.gpu_layers,
            device: if settings.gpu_layers > 0 && cfg!(feature = "cuda") {
                "cuda".into()
            } else {
                "cpu".into()
            },
            add_bos: tokenizer.bos().is_some(),
            special_tokens: special_tokens(model),
            endpoint: None,
            adapter: adapter_info,
        };
        Ok(LlamaEngine {
            model,
            ctx,
            batch: LlamaBatch::new(n_ctx, MAX_SEQS as i32),
            info,
            limits: Limits {
                max_len: n_ctx,
                max_batch_tokens: n_ctx,
                max_seqs: MAX_SEQS - 1,
                max_outputs: MAX_OUTPUTS,
            },
            tokenizer,
            tokens_processed: 0,
            generator: None,
            prefix: Vec::new(),
            lora,
        })
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> Tokenizer {
        self.tokenizer
    }

    /// Clears the KV cache, decodes `tokens` and returns nothing; logits stay readable by
    /// batch index until the next decode.
    fn decode(&mut self, tokens: &[BatchToken], clear: bool) -> Result<(), LlamaError> {
        if clear {
            self.clear_documents()?;
        }
        if tokens.len() > self.limits.max_batch_tokens {
            return Err(LlamaError::Decode(format!(
                "{} tokens exceed the batch of {}",
                tokens.len(),
                self.limits.max_batch_tokens
            )));
        }
        self.batch.clear();
        for t in tokens {
            self.batch
                .add(LlamaToken(t.token), t.pos, &t.seq_ids, t.logits)
                .map_err(|e| LlamaError::Decode(e.to_string()))?;
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| LlamaError::Decode(e.to_string()))?;
        self.tokens_processed += tokens.len() as u64;
        Ok(())
    }

    /// Empties the KV cache of everything but the task prefix.
    fn clear_documents(&mut self) -> Result<(), LlamaError> {
        if self.prefix.is_empty() {
            self.ctx
                .clear_kv_cache_seq(None, None, None)
                .map_err(|e| LlamaError::Decode(e.to_string()))?;
        } else {
            self.ctx.llama_kv_cache_seq_keep(PREFIX_SEQ);
        }
        Ok(())
    }

    /// A fresh generation context for one document, `slots` streams of room for `tokens`
    /// tokens each (rounded up to whole 512-token micro-batches, at most the window), with its
    /// prompt cache pinned to the task prefix. Sized to the document: a stream copy copies the
    /// whole stream, and a window of the model's full trained context would be mostly empty.
    fn document_generator(
        &mut self,
        slots: usize,
        tokens: usize,
    ) -> Result<&mut Generator, LlamaError> {
        if let Some(used) = self.generator.take() {
            self.tokens_processed += used.tokens_processed;
        }
        let len = self.stream_len(tokens.max(self.prefix.len()));
        self.generator(slots, len)?;
        let generator = self.generator.as_mut().expect("created above");
        generator.pin_cache(&self.prefix)?;
        Ok(generator)
    }

    /// A generation stream's length for `tokens` tokens: whole 512-token micro-batches (so the
    /// prompt splits as it always did), at most the window.
    fn stream_len(&self, tokens: usize) -> usize {
        tokens
            .div_ceil(512)
            .saturating_mul(512)
            .min(self.limits.max_len)
    }

    /// The generation context, with room for at least `slots` sequences of `len` tokens at once.
    fn generator(&mut self, slots: usize, len: usize) -> Result<&mut Generator, LlamaError> {
        if self
            .generator
            .as_ref()
            .is_none_or(|g| g.slots() < slots || g.max_len() < len)
        {
            // Drop the old context first: both would hold a KV cache.
            if let Some(old) = self.generator.take() {
                self.tokens_processed += old.tokens_processed;
            }
            self.generator = Some(Generator::new(
                self.model,
                slots,
                len,
                self.info.threads,
                self.lora.as_mut().map(|(a, info)| (&mut **a, &*info)),
            )?);
        }
        Ok(self.generator.as_mut().expect("created above"))
    }

    /// The prompt of a generation request: tokenised, cut from the left (as lm-eval does) to
    /// leave room for `max_gen_toks` in the window.
    fn prompt(&self, request: &GenerationRequest) -> Result<Prompt, LlamaError> {
        if request.max_gen_toks == 0 {
            return Err(LlamaError::BadRequest(
                "max_gen_toks must be at least 1".into(),
            ));
        }
        if request.max_gen_toks >= self.limits.max_len {
            return Err(LlamaError::BadRequest(format!(
                "max_gen_toks {} leaves no room for the prompt in the context window of {}",
                request.max_gen_toks, self.limits.max_len
            )));
        }
        let mut tokens = self.tokenizer.tokenize(&request.context, true);
        if tokens.is_empty() {
            tokens.push(self.tokenizer.empty_context_token());
        }
        let budget = self.limits.max_len - request.max_gen_toks;
        let truncated = tokens.len() > budget;
        if truncated {
            tokens.drain(..tokens.len() - budget);
        }
        Ok(Prompt { tokens, truncated })
    }

    /// Runs one round of a document's plan on a cleared cache and returns how many of its
    /// leading tokens were taken from the shared prefix instead of computed (batch indices of
    /// the round's targets are that much lower).
    ///
    /// Reused: the leading tokens that every sequence of the round shares, that match the
    /// prefix at the same positions, and that need no logits.
    fn run_round(&mut self, tokens: &[BatchToken]) -> Result<usize, LlamaError> {
        let seqs: std::collections::BTreeSet<i32> = tokens
            .iter()
            .flat_map(|t| t.seq_ids.iter().copied())
            .collect();
        let reuse = tokens
            .iter()
            .zip(&self.prefix)
            .enumerate()
            .take_while(|(i, (t, &p))| {
                t.token == p && t.pos == *i as i32 && !t.logits && t.seq_ids.len() == seqs.len()
            })
            .count();
        if reuse == 0 {
            self.decode(tokens, true)?;
            return Ok(0);
        }
        self.clear_documents()?;
        for &seq in &seqs {
            self.ctx
                .copy_kv_cache_seq(PREFIX_SEQ, seq, Some(0), Some(reuse as u32))
                .map_err(|e| LlamaError::Decode(e.to_string()))?;
        }
        self.decode(&tokens[reuse..], false)?;
        Ok(reuse)
    }

    /// Log-probability of `token` at batch index `index`, and whether it is the argmax.
    fn score(&self, index: usize, token: Token, stats: &[Option<RowStats>]) -> (f64, bool) {
        let stats = stats[index].expect("statistics computed for every scored row");
        let logit = f64::from(self.ctx.get_logits_ith(index as i32)[token as usize]);
        (logit - stats.log_sum_exp, stats.argmax == token as usize)
    }

    /// Log-softmax statistics of the logit rows at batch `indices`, indexed by batch index.
    /// Each row is a pass over the whole vocabulary; the rows are split over the engine's
    /// threads (llama.cpp's own are idle between decodes). A row's result does not depend on
    /// the split.
    fn row_stats(&self, indices: impl Iterator<Item = usize>) -> Vec<Option<RowStats>> {
        let mut unique: Vec<usize> = indices.collect();
        unique.sort_unstable();
        unique.dedup();
        let mut out = vec![None; unique.last().map_or(0, |&i| i + 1)];
        let rows: Vec<(usize, &[f32])> = unique
            .iter()
            .map(|&i| (i, self.ctx.get_logits_ith(i as i32)))
            .collect();
        let per_thread = rows.len().div_ceil(self.info.threads).max(1);
        if per_thread == rows.len() {
            // One part (one row, or one thread): no thread to start.
            for &(i, logits) in &rows {
                out[i] = Some(RowStats::of(logits));
            }
            return out;
        }
        let computed: Vec<(usize, RowStats)> = std::thread::scope(|scope| {
            let parts: Vec<_> = rows
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|&(i, logits)| (i, RowStats::of(logits)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().expect("row statistics never panic"))
                .collect()
        });
        for (i, stats) in computed {
            out[i] = Some(stats);
        }
        out
    }
}

impl LlamaEngine {
    /// Runs a document's decode calls exactly as [`Backend::loglikelihood`] lays them out, but
    /// reads no logits; with `all_logits` false, llama.cpp computes logits only for the last
    /// token of each call. For benchmarks: the engine's own cost of a document (the floor).
    /// Returns the number of tokens decoded.
    pub fn forward_only(
        &mut self,
        requests: &[LoglikelihoodRequest],
        all_logits: bool,
    ) -> Result<usize, LlamaError> {
        let tokenized = self
            .tokenizer
            .encode_pairs(&requests.iter().collect::<Vec<_>>());
        let plan = plan::plan_document(&tokenized, self.limits)
            .map_err(|e| LlamaError::BadRequest(e.to_string()))?;
        let mut decoded = 0;
        for round in &plan.rounds {
            let mut tokens = round.tokens.clone();
            if !all_logits {
                let last = tokens.len() - 1;
                for (i, t) in tokens.iter_mut().enumerate() {
                    t.logits = i == last;
                }
            }
            decoded += tokens.len() - self.run_round(&tokens)?;
        }
        Ok(decoded)
    }
}

/// One echoed prompt token's score, as an OpenAI-compatible server reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenScore {
    /// Log-probability of the token given the tokens before it.
    pub logprob: f64,
    /// The most likely token at its position.
    pub top_token: Token,
    /// That token's log-probability.
    pub top_logprob: f64,
}

impl LlamaEngine {
    /// Scores every token of `tokens` after the first given those before it, and the most
    /// likely token after the last one (the `next` entry): what a server echoes for
    /// `echo: true, logprobs: 1, max_tokens: 1`. For the stand-in server of the tests.
    pub fn prompt_logprobs(
        &mut self,
        tokens: &[Token],
    ) -> Result<(Vec<TokenScore>, TokenScore), LlamaError> {
        if tokens.is_empty() || tokens.len() >= self.limits.max_len {
            return Err(LlamaError::BadRequest(format!(
                "a prompt of {} tokens does not fit the context window of {}",
                tokens.len(),
                self.limits.max_len
            )));
        }
        // A placeholder token after the prompt makes the plan compute the last position's
        // logits, from which the next token is read.
        let mut continuation = tokens[1..].to_vec();
        continuation.push(0);
        let request = TokenizedRequest {
            context: tokens[..1].to_vec(),
            continuation,
        };
        let plan = plan::plan_document(&[request], self.limits)
            .map_err(|e| LlamaError::BadRequest(e.to_string()))?;
        let mut scores = Vec::with_capacity(tokens.len());
        for round in &plan.rounds {
            let reused = self.run_round(&round.tokens)?;
            let targets: Vec<_> = round.targets.iter().flat_map(|(_, t)| t).collect();
            let rows = self.row_stats(targets.iter().map(|t| t.batch_index - reused));
            for target in targets {
                let index = target.batch_index - reused;
                let (logprob, _) = self.score(index, target.token, &rows);
                let stats = rows[index].expect("statistics computed for every scored row");
                let logits = self.ctx.get_logits_ith(index as i32);
                scores.push(TokenScore {
                    logprob,
                    top_token: stats.argmax as Token,
                    top_logprob: f64::from(logits[stats.argmax]) - stats.log_sum_exp,
                });
            }
        }
        let next = scores.pop().expect("the placeholder is scored");
        Ok((
            scores,
            TokenScore {
                logprob: next.top_logprob,
                top_token: next.top_token,
                top_logprob: next.top_logprob,
            },
        ))
    }

    /// The engine's own cost of generating `tokens` tokens after `context` (the floor of a
    /// generation task): the prompt decoded with logits at its last token, then one decode per
    /// token with its logit row, in the generation context, with nothing sampled or detokenised.
    /// Returns the number of tokens decoded.
    pub fn generation_floor(
        &mut self,
        request: &GenerationRequest,
        tokens: usize,
    ) -> Result<usize, LlamaError> {
        let prompt = self.prompt(request)?;
        self.document_generator(1, prompt.tokens.len() + tokens + 1)?
            .replay(&prompt.tokens, tokens)
    }
}

/// Per logit row: log-sum-exp (for log-softmax) and the argmax.
#[derive(Debug, Clone, Copy)]
struct RowStats {
    log_sum_exp: f64,
    argmax: usize,
}

impl RowStats {
    fn of(logits: &[f32]) -> RowStats {
        let mut argmax = 0;
        let mut max = f32::NEG_INFINITY;
        for (i, &l) in logits.iter().enumerate() {
            if l > max {
                max = l;
                argmax = i;
            }
        }
        let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
        RowStats {
            log_sum_exp: f64::from(max) + sum.ln(),
            argmax,
        }
    }
}

fn special_tokens(model: &LlamaModel) -> SpecialTokens {
    let vocab = model.vocab();
    let describe = |t: LlamaToken| {
        (t.0 >= 0 && t.0 < vocab.n_tokens()).then(|| {
            let text = vocab
                .text(t)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            (text, t.0.to_string())
        })
    };
    SpecialTokens {
        pad: describe(vocab.pad()),
        eos: describe(vocab.eos()),
        bos: describe(vocab.bos()),
        eot_id: Some(vocab.eot().0)
            .filter(|&t| t >= 0)
            .or(Some(vocab.eos().0)),
    }
}

/// SHA-256 of a token sequence (little-endian ids), as hex.
fn tokens_sha256(tokens: &[Token]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for t in tokens {
        hasher.update(t.to_le_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn model_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| PathBuf::from(path).display().to_string())
}

impl LlamaEngine {
    /// Scores the requests of one document together: their shared context computed once.
    fn score_document(
        &mut self,
        requests: &[LoglikelihoodRequest],
    ) -> Result<Vec<Loglikelihood>, LlamaError> {
        let tokenized = self
            .tokenizer
            .encode_pairs(&requests.iter().collect::<Vec<_>>());
        let plan = plan::plan_document(&tokenized, self.limits)
            .map_err(|e| LlamaError::BadRequest(e.to_string()))?;
        let mut answers: Vec<Option<Loglikelihood>> = vec![None; requests.len()];
        for round in &plan.rounds {
            let reused = self.run_round(&round.tokens)?;
            let rows = self.row_stats(
                round
                    .targets
                    .iter()
                    .flat_map(|(_, targets)| targets.iter().map(|t| t.batch_index - reused)),
            );
            for (request, targets) in &round.targets {
                let mut logprob = 0.0;
                let mut is_greedy = true;
                for target in targets {
                    let (lp, greedy) = self.score(target.batch_index - reused, target.token, &rows);
                    logprob += lp;
                    is_greedy &= greedy;
                }
                answers[*request] = Some(Loglikelihood {
                    logprob,
                    is_greedy,
                    continuation_tokens: targets.len(),
                    truncated: plan.truncated[*request],
                });
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every request is served by one round"))
            .collect())
    }

    /// Scores every token of `text`, window by window.
    fn score_rolling(&mut self, text: &str) -> Result<RollingLoglikelihood, LlamaError> {
        let tokens = self.tokenizer.tokenize(text, false);
        let prefix = self.tokenizer.empty_context_token();
        let windows = plan::rolling_windows(prefix, &tokens, self.limits.max_len);
        let mut logprob = 0.0;
        for (input, first, predicted) in &windows {
            // Decode the window in chunks so that at most MAX_OUTPUTS logit rows exist at once.
            let mut start = 0;
            while start < input.len() {
                let end = (start + MAX_OUTPUTS).min(input.len());
                let chunk: Vec<BatchToken> = (start..end)
                    .map(|pos| BatchToken {
                        token: input[pos],
                        pos: pos as i32,
                        seq_ids: vec![0],
                        logits: pos >= *first,
                    })
                    .collect();
                self.decode(&chunk, start == 0)?;
                let from = start.max(*first);
                let rows = self.row_stats((from..end).map(|pos| pos - start));
                for pos in from..end {
                    let (lp, _) = self.score(pos - start, predicted[pos - first], &rows);
                    logprob += lp;
                }
                start = end;
            }
        }
        Ok(RollingLoglikelihood {
            logprob,
            tokens: tokens.len(),
            windows: windows.len(),
        })
    }

    /// Generates for `requests`; with `parallel` 1 one document at a time, each reported to
    /// `done` as it finishes.
    fn generate_documents(
        &mut self,
        requests: &[GenerationRequest],
        done: &mut GenerationSink<'_>,
    ) -> Result<Vec<Vec<Generation>>, LlamaError> {
        let prompts = requests
            .iter()
            .map(|r| self.prompt(r))
            .collect::<Result<Vec<_>, _>>()?;
        if self.info.parallel > 1 {
            // Streams as long as this batch's longest prompt and generation need (whole
            // micro-batches, at most the window): `--parallel 16` with 32k-token streams held
            // 11.6 GB for a 270M model.
            let need = requests
                .iter()
                .zip(&prompts)
                .map(|(r, p)| p.tokens.len() + r.max_gen_toks + 1)
                .max()
                .unwrap_or(1);
            let generator = self.generator(self.info.parallel, self.stream_len(need))?;
            generator.pin_cache(&[])?;
            let out = generator.generate(requests, &prompts, usize::MAX)?;
            for (i, samples) in out.iter().enumerate() {
                done(i, samples);
            }
            return Ok(out);
        }
        // One document at a time, each in a fresh generation context whose cache holds only the
        // task's shared prefix: its samples run together, and depend on that document (and the
        // prefix) alone. A context reused from the document before carries state that changes
        // near-tie tokens (found by the kill-and-resume test: a document computed after a cached
        // one differed from the same document computed after a generated one); a fresh context
        // costs the prefix's prefill, within noise beside generation (GSM8K: 50 s vs 53 s).
        let mut out = Vec::with_capacity(requests.len());
        for (request, prompt) in requests.iter().zip(prompts) {
            let slots = request.n.min(MAX_SAMPLE_SLOTS);
            let generator =
                self.document_generator(slots, prompt.tokens.len() + request.max_gen_toks + 1)?;
            let mut one = generator.generate(std::slice::from_ref(request), &[prompt], slots)?;
            let samples = one.pop().unwrap_or_default();
            done(out.len(), &samples);
            out.push(samples);
        }
        Ok(out)
    }
}

impl Backend for LlamaEngine {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn answer_scope(&self, primitive: Primitive) -> serde_json::Value {
        let info = &self.info;
        let mut scope = serde_json::json!({
            "backend": info.backend,
            "model_sha256": info.model_sha256,
            "ctx_size": info.ctx_size,
            "device": info.device,
            "gpu_layers": info.gpu_layers,
            // Answers are scored beside the task prefix (DESIGN: task prefix).
            "prefix_sha256": (!self.prefix.is_empty()).then(|| tokens_sha256(&self.prefix)),
        });
        if let Some(a) = &info.adapter {
            scope["adapter_sha256"] = a.sha256.clone().into();
            scope["adapter_scale"] = f64::from(a.scale).into();
        }
        if primitive == Primitive::GenerateUntil {
            // Batched generation depends on the batch-mates (see `--parallel`).
            scope["parallel"] = info.parallel.into();
        }
        scope
    }

    fn loglikelihood_many(
        &mut self,
        docs: &[Vec<LoglikelihoodRequest>],
        done: &mut LoglikelihoodSink<'_>,
    ) -> Result<Vec<Vec<Loglikelihood>>, BackendError> {
        let mut out = Vec::with_capacity(docs.len());
        for (i, requests) in docs.iter().enumerate() {
            let answers = self.score_document(requests)?;
            let indexed: Vec<(usize, Loglikelihood)> =
                answers.iter().copied().enumerate().collect();
            done(i, &indexed);
            out.push(answers);
        }
        Ok(out)
    }

    fn loglikelihood_rolling_many(
        &mut self,
        texts: &[String],
        done: &mut RollingSink<'_>,
    ) -> Result<Vec<RollingLoglikelihood>, BackendError> {
        let mut out = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let answer = self.score_rolling(text)?;
            done(i, &answer);
            out.push(answer);
        }
        Ok(out)
    }

    fn generate_until_many(
        &mut self,
        requests: &[GenerationRequest],
        done: &mut GenerationSink<'_>,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        Ok(self.generate_documents(requests, done)?)
    }

    fn set_shared_prefix(&mut self, prefix: Option<&str>) -> Result<(), BackendError> {
        let tokens = prefix.map_or_else(Vec::new, |text| self.tokenizer.tokenize(text, true));
        // Too short to matter, or too long to sit beside a document's window: not kept.
        let keep = tokens.len() >= MIN_SHARED_PREFIX && tokens.len() < self.limits.max_len;
        self.prefix = Vec::new();
        self.ctx
            .clear_kv_cache_seq(None, None, None)
            .map_err(|e| LlamaError::Decode(e.to_string()))?;
        if keep {
            let last = tokens.len() - 1;
            let batch: Vec<BatchToken> = tokens
                .iter()
                .enumerate()
                .map(|(pos, &token)| BatchToken {
                    token,
                    pos: pos as i32,
                    seq_ids: vec![PREFIX_SEQ],
                    logits: pos == last,
                })
                .collect();
            self.decode(&batch, false)?;
            self.prefix = tokens;
        }
        Ok(())
    }

    fn batch_documents(&self, generation: bool) -> usize {
        // Enough documents that finished sequences are replaced while others still run.
        if generation && self.info.parallel > 1 {
            2 * self.info.parallel
        } else {
            1
        }
    }

    fn chat_template(&self) -> Option<String> {
        self.model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok())
    }

    fn tokens_processed(&self) -> u64 {
        self.tokens_processed + self.generator.as_ref().map_or(0, |g| g.tokens_processed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_window_is_the_trained_context_unless_memory_is_short() {
        // Gemma 3 270M counted at 18 layers x 512 key+value values x 2 bytes, 11 windows.
        let per_token = 11 * 18 * 512 * 2;
        assert_eq!(window_for(32_768, 11 << 30, per_token), 32_768);
        assert_eq!(window_for(32_768, 1 << 30, per_token), 5_120);
        assert_eq!(
            window_for(32_768, 1, per_token),
            256,
            "never below one block"
        );
        assert_eq!(
            window_for(0, 11 << 30, per_token),
            2048,
            "unknown: lm-eval's 2048"
        );
        assert_eq!(window_for(1000, 11 << 30, per_token), 768, "whole blocks");
    }

    #[test]
    fn available_memory_reads_proc_meminfo() {
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(available_memory().unwrap() > 0);
        }
    }
}
