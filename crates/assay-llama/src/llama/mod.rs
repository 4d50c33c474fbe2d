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

use assay_backend::plan::{self, BatchToken, Limits, Plan, Round, Token, TokenizedRequest};
use assay_backend::{
    AdapterInfo, Backend, BackendError, BackendInfo, GenerationSink, LoglikelihoodSink,
    RollingSink, SpecialTokens, TextTokenizer,
};

use crate::generator::{Generator, Prompt};
use crate::runtime::{apply_adapter, llama_backend};
use crate::tokenizer::Tokenizer;
use crate::LlamaError;

mod generate;
mod score;
mod window;

pub use score::TokenScore;
use window::{check_ctx_size, default_ctx_size};

/// Most sequences one decode call may hold (llama.cpp's own limit); the last id holds a task's
/// shared prefix.
const MAX_SEQS: usize = 256;
/// Most sequences one document's decode call may hold: documents are planned as before
/// cross-document batching, whatever the number of sequences a packed call may hold.
const DOCUMENT_SEQS: usize = 31;
/// The sequence id of the shared prefix (never used by a document's requests).
const PREFIX_SEQ: i32 = MAX_SEQS as i32 - 1;
/// Shared prefixes shorter than this many tokens are not worth keeping.
const MIN_SHARED_PREFIX: usize = 8;
/// Most logit rows one document's decode call may produce (each row is a vocabulary of floats).
const MAX_OUTPUTS: usize = 256;
/// Most logit rows a decode call of several documents (`--batch-size`) may produce.
const MAX_PACKED_OUTPUTS: usize = 1024;
/// Sequences generated at once across documents unless told otherwise (1: one document at a
/// time, each a function of itself alone).
pub const DEFAULT_PARALLEL: usize = 1;
/// `batch_size` meaning as many documents per decode call as fit.
pub const BATCH_AUTO: usize = usize::MAX;
/// Documents handed to the engine at once when `batch_size` is [`BATCH_AUTO`].
const AUTO_BATCH_DOCUMENTS: usize = 256;
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
    /// Most documents whose log-likelihood requests share one decode call (1: each document
    /// alone, its scores a function of itself; [`BATCH_AUTO`]: as many as the limits allow).
    pub batch_size: usize,
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
            batch_size: 1,
            lora: None,
        }
    }
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

/// ggml's `GGML_MAX_N_THREADS`: more threads abort inside ggml.
const MAX_THREADS: usize = 512;

impl LlamaEngine {
    /// Loads the model at `path` (checked to be a GGUF file first) with `settings`.
    pub fn load(path: &Path, settings: &EngineSettings) -> Result<Self, LlamaError> {
        assay_gguf::check_header(path)?;
        assay_gguf::check_engine_types(path)?;
        if settings.threads > MAX_THREADS {
            return Err(LlamaError::Settings(format!(
                "--threads {}: llama.cpp runs at most {MAX_THREADS} threads (and aborts above); one per core is fastest",
                settings.threads
            )));
        }
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
        let ctx_size = match settings.ctx_size {
            Some(n) => {
                check_ctx_size(model, settings, n).map_err(LlamaError::Settings)?;
                n
            }
            None => default_ctx_size(model, settings, model_bytes),
        };
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
            batch_size: settings.batch_size.max(1),
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
                max_seqs: DOCUMENT_SEQS,
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

    /// Runs rounds (one round of each of several documents' plans) in one decode call on a
    /// cleared cache: each round's sequences are renumbered after the previous round's, and
    /// each round's leading tokens that match the shared prefix are copied from it instead of
    /// computed. Returns where each round's batch indices went.
    ///
    /// Reused: the leading tokens that every sequence of the round shares, that match the
    /// prefix at the same positions, and that need no logits.
    fn run_rounds(&mut self, rounds: &[&[BatchToken]]) -> Result<Vec<Placement>, LlamaError> {
        self.clear_documents()?;
        let mut tokens = Vec::with_capacity(rounds.iter().map(|r| r.len()).sum());
        let mut placements = Vec::with_capacity(rounds.len());
        let mut first_seq = 0;
        for round in rounds {
            let seqs = round
                .iter()
                .flat_map(|t| t.seq_ids.iter().copied())
                .max()
                .map_or(0, |s| s + 1);
            let reused = round
                .iter()
                .zip(&self.prefix)
                .enumerate()
                .take_while(|(i, (t, &p))| {
                    t.token == p
                        && t.pos == *i as i32
                        && !t.logits
                        && t.seq_ids.len() == seqs as usize
                })
                .count();
            if reused > 0 {
                for seq in first_seq..first_seq + seqs {
                    self.ctx
                        .copy_kv_cache_seq(PREFIX_SEQ, seq, Some(0), Some(reused as u32))
                        .map_err(|e| LlamaError::Decode(e.to_string()))?;
                }
            }
            placements.push(Placement {
                start: tokens.len(),
                reused,
            });
            tokens.extend(round[reused..].iter().map(|t| BatchToken {
                seq_ids: t.seq_ids.iter().map(|s| s + first_seq).collect(),
                ..t.clone()
            }));
            first_seq += seqs;
        }
        self.decode(&tokens, false)?;
        Ok(placements)
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

/// Where a round's tokens went in a decode call: its batch index `i` is read at
/// `start + i - reused`.
#[derive(Debug, Clone, Copy)]
struct Placement {
    start: usize,
    reused: usize,
}

impl Placement {
    fn index(&self, batch_index: usize) -> usize {
        self.start + batch_index - self.reused
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
        if primitive == Primitive::Loglikelihood && info.batch_size > 1 {
            // Documents scored together move each other's scores slightly (`--batch-size`).
            scope["batch_size"] = info.batch_size.into();
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
        let plans = docs
            .iter()
            .map(|requests| self.plan(requests))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(docs.len());
        let mut report = |i: usize, answers: Vec<Loglikelihood>| {
            for (r, (request, answer)) in docs[i].iter().zip(&answers).enumerate() {
                assay_backend::check_answer(i, r, &request.continuation, answer)?;
            }
            let indexed: Vec<(usize, Loglikelihood)> =
                answers.iter().copied().enumerate().collect();
            done(i, &indexed);
            out.push(answers);
            Ok::<(), BackendError>(())
        };
        let mut next = 0;
        while next < plans.len() {
            // Documents of one round each join the call while they fit (`--batch-size`); a
            // longer document runs alone, round by round.
            let mut pack: Vec<&Plan> = Vec::new();
            while let Some(plan) = plans.get(next + pack.len()) {
                if pack.len() == self.info.batch_size || plan.rounds.len() != 1 {
                    break;
                }
                pack.push(plan);
                if !self.packs(&pack) {
                    pack.pop();
                    break;
                }
            }
            if pack.len() > 1 {
                for (k, answers) in self.score_packed(&pack)?.into_iter().enumerate() {
                    report(next + k, answers)?;
                }
                next += pack.len();
            } else {
                report(next, self.score_document(&plans[next])?)?;
                next += 1;
            }
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
            assay_backend::check_rolling(i, &answer)?;
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
        } else if generation {
            1
        } else {
            self.info.batch_size.min(AUTO_BATCH_DOCUMENTS)
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
