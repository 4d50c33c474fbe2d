//! The OpenAI-compatible backend: a model served by vLLM, SGLang, TGI, llama.cpp's server or
//! any server speaking `/v1/completions` (and `/v1/chat/completions` for generation).
//!
//! Each request primitive becomes independent HTTP requests, sent concurrently by [`Client`]:
//! one per (context, continuation) pair, per rolling window, per generated sample. With a
//! tokenizer (`--tokenizer MODEL.gguf`, any [`TextTokenizer`]) log-likelihood prompts go as token
//! ids, split exactly as the embedded engine splits them; without one they go as text and the
//! continuation's tokens are found by their text offsets.

mod client;
pub mod protocol;
mod redact;

use std::path::PathBuf;
use std::sync::Arc;

use assay_core::{
    Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, Primitive,
    RollingLoglikelihood, StopReason,
};
use serde_json::json;

pub use client::{Client, ClientSettings, Job};
pub use protocol::Api;
pub use redact::redact_credentials;

use assay_backend::plan::{self, Token};
use assay_backend::{
    Backend, BackendError, BackendInfo, GenerationSink, LoglikelihoodSink, RequestStats,
    RollingSink, SpecialTokens, TextTokenizer,
};
use protocol::{Prompt, SampleSettings, Scored, Span};

/// Why multiple choice cannot run on a chat endpoint, and what to do instead.
pub const CHAT_CANNOT_SCORE: &str = "multiple-choice and perplexity tasks need the log-probabilities of given text, which /v1/chat/completions does not return: \
     point --base-url at a server with /v1/completions (vLLM, SGLang, TGI and llama.cpp's server all have one) and use --api completions, \
     or evaluate only generation tasks (e.g. gsm8k) on the chat endpoint";

/// How to reach and use the served model.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// Replicas, concurrency, timeouts, retries, key.
    pub client: ClientSettings,
    /// The model name the server knows.
    pub model: String,
    /// Completions or chat.
    pub api: Api,
    /// The tokenizer that splits log-likelihood prompts into token ids, if any.
    pub tokenizer: Option<TokenIds>,
    /// Longest token prompt (token mode): longer ones are cut from the left.
    pub ctx_size: u32,
}

/// A tokenizer for token-id prompts, with the fingerprint of the file it came from (the served
/// weights cannot be fingerprinted from the client; the tokenizer can).
#[derive(Clone)]
pub struct TokenIds {
    /// The tokenizer.
    pub tokenizer: Arc<dyn TextTokenizer + Send>,
    /// SHA-256 of the file it was loaded from.
    pub sha256: String,
}

impl std::fmt::Debug for TokenIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIds")
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// A served model.
pub struct OpenAiBackend {
    client: Client,
    settings: OpenAiSettings,
    tokenizer: Option<Arc<dyn TextTokenizer + Send>>,
    info: BackendInfo,
    tokens_processed: u64,
    /// What went wrong at connection without stopping the run (unreachable replicas).
    warnings: Vec<String>,
}

impl OpenAiBackend {
    /// Connects to the server(s) and checks that they serve `settings.model`.
    pub fn connect(settings: OpenAiSettings) -> Result<OpenAiBackend, BackendError> {
        if settings.client.base_urls.is_empty() {
            return Err(BackendError::BadRequest("no --base-url given".into()));
        }
        let (tokenizer, tokenizer_sha) = match &settings.tokenizer {
            Some(ids) => (Some(ids.tokenizer.clone()), ids.sha256.clone()),
            None => (None, String::new()),
        };
        let client = Client::new(settings.client.clone())?;
        let mut warnings = Vec::new();
        let reachable = client.check_model(&settings.model, &mut warnings)?;
        let mut tokenizer = tokenizer;
        if let (Some(t), Api::Completions) = (&tokenizer, settings.api) {
            // Servers that take only text prompts (llama-cpp-python) refuse token ids with a
            // client error: send text to them.
            let prompt = Prompt::Tokens(t.tokenize("Hello", true));
            let job = Job {
                path: "/completions",
                body: serde_json::to_vec(&protocol::logprobs_body(&settings.model, &prompt))
                    .expect("bodies serialise"),
            };
            let status = client.probe(&job, reachable[0])?;
            if matches!(status, 400 | 415 | 422) {
                tokenizer = None;
            }
        }
        let info = BackendInfo {
            backend: match settings.api {
                Api::Completions => "openai-completions".into(),
                Api::Chat => "openai-chat-completions".into(),
            },
            model_path: PathBuf::from(&settings.model),
            model_name: settings.model.clone(),
            // The served weights cannot be fingerprinted from here; the tokenizer file can.
            model_sha256: tokenizer_sha,
            model_bytes: 0,
            n_params: 0,
            quantization: "served".into(),
            architecture: "served".into(),
            n_ctx_train: 0,
            ctx_size: settings.ctx_size,
            threads: 0,
            parallel: settings.client.concurrency * settings.client.base_urls.len(),
            batch_size: 1,
            gpu_layers: 0,
            device: "remote".into(),
            add_bos: tokenizer.as_ref().is_some_and(|t| t.bos().is_some()),
            special_tokens: SpecialTokens::default(),
            // Shown and stored (results, registry): never a password written into the URL.
            endpoint: Some(redact_credentials(&settings.client.base_urls.join(","))),
            adapter: None,
        };
        Ok(OpenAiBackend {
            client,
            settings,
            tokenizer,
            info,
            tokens_processed: 0,
            warnings,
        })
    }

    /// Problems found at connection that do not stop the run (unreachable replicas).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether log-likelihood prompts go as token ids (`--tokenizer` given and the server
    /// accepts them) rather than text.
    pub fn sends_token_ids(&self) -> bool {
        self.tokenizer.is_some()
    }

    fn job(&self, path: &'static str, body: serde_json::Value) -> Job {
        Job {
            path,
            body: serde_json::to_vec(&body).expect("bodies serialise"),
        }
    }

    fn refuse_chat(&self) -> Result<(), BackendError> {
        match self.settings.api {
            Api::Chat => Err(BackendError::BadRequest(CHAT_CANNOT_SCORE.into())),
            Api::Completions => Ok(()),
        }
    }

    /// The prompt and scored span of each log-likelihood request, and whether it was cut.
    fn loglikelihood_prompts(
        &self,
        requests: &[&LoglikelihoodRequest],
    ) -> Vec<(Prompt, Span, bool)> {
        let Some(t) = &self.tokenizer else {
            return requests
                .iter()
                .map(|request| {
                    let trimmed = request.context.trim_end_matches(' ');
                    let text = format!("{}{}", request.context, request.continuation);
                    let span = Span::Chars {
                        from: trimmed.chars().count(),
                        to: text.chars().count(),
                    };
                    (Prompt::Text(text), span, false)
                })
                .collect();
        };
        let max = self.settings.ctx_size as usize;
        t.encode_pairs(requests)
            .into_iter()
            .map(|pair| {
                let mut prompt: Vec<Token> = pair.context;
                let mut from = prompt.len();
                prompt.extend(pair.continuation);
                let truncated = prompt.len() > max;
                if truncated {
                    let cut = prompt.len() - max;
                    prompt.drain(..cut);
                    from = from.saturating_sub(cut).max(1);
                }
                (
                    Prompt::Tokens(prompt.clone()),
                    Span::Tokens { from, prompt },
                    truncated,
                )
            })
            .collect()
    }
}

impl Backend for OpenAiBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn answer_scope(&self, primitive: Primitive) -> serde_json::Value {
        let tokens = match &self.tokenizer {
            Some(_) => {
                json!({"tokenizer_sha256": self.info.model_sha256, "ctx_size": self.settings.ctx_size})
            }
            None => json!("server"),
        };
        let mut scope = json!({
            "backend": "openai",
            "model": self.settings.model,
            "prompts": tokens,
        });
        if primitive == Primitive::GenerateUntil {
            scope["api"] = json!(self.settings.api.path());
        }
        scope
    }

    fn loglikelihood_many(
        &mut self,
        docs: &[Vec<LoglikelihoodRequest>],
        done: &mut LoglikelihoodSink<'_>,
    ) -> Result<Vec<Vec<Loglikelihood>>, BackendError> {
        self.refuse_chat()?;
        let place: Vec<(usize, usize)> = docs
            .iter()
            .enumerate()
            .flat_map(|(d, doc)| (0..doc.len()).map(move |r| (d, r)))
            .collect();
        let requests: Vec<&LoglikelihoodRequest> = docs.iter().flatten().collect();
        let mut spans = Vec::with_capacity(requests.len());
        let mut truncated = Vec::with_capacity(requests.len());
        let mut jobs = Vec::with_capacity(requests.len());
        for (prompt, span, cut) in self.loglikelihood_prompts(&requests) {
            jobs.push(self.job(
                "/completions",
                protocol::logprobs_body(&self.settings.model, &prompt),
            ));
            spans.push(span);
            truncated.push(cut);
        }
        let mut answers: Vec<Vec<Option<Loglikelihood>>> =
            docs.iter().map(|d| vec![None; d.len()]).collect();
        let mut tokens = 0u64;
        self.client.run(
            &jobs,
            &|i, body| protocol::parse_logprobs(body, &spans[i]),
            &mut |i, scored: Scored| {
                let (d, r) = place[i];
                let answer = Loglikelihood {
                    logprob: scored.logprob,
                    is_greedy: scored.is_greedy,
                    continuation_tokens: scored.tokens,
                    truncated: truncated[i],
                };
                if let Span::Tokens { prompt, .. } = &spans[i] {
                    tokens += prompt.len() as u64;
                }
                answers[d][r] = Some(answer);
                done(d, &[(r, answer)]);
            },
        )?;
        self.tokens_processed += tokens;
        Ok(answers
            .into_iter()
            .map(|d| d.into_iter().map(|a| a.expect("all answered")).collect())
            .collect())
    }

    fn loglikelihood_rolling_many(
        &mut self,
        texts: &[String],
        done: &mut RollingSink<'_>,
    ) -> Result<Vec<RollingLoglikelihood>, BackendError> {
        self.refuse_chat()?;
        // Per text: its windows' jobs (token mode) or the whole text as one job.
        let mut owner = Vec::new();
        let mut spans = Vec::new();
        let mut jobs = Vec::new();
        let mut totals: Vec<RollingLoglikelihood> = Vec::with_capacity(texts.len());
        for (t, text) in texts.iter().enumerate() {
            let prompts: Vec<(Prompt, Span)> = match &self.tokenizer {
                Some(tok) => {
                    let tokens = tok.tokenize(text, false);
                    let windows = plan::rolling_windows(
                        tok.empty_context_token(),
                        &tokens,
                        self.settings.ctx_size as usize,
                    );
                    totals.push(RollingLoglikelihood {
                        logprob: 0.0,
                        tokens: tokens.len(),
                        windows: windows.len(),
                    });
                    windows
                        .into_iter()
                        .map(|(mut input, first, predicted)| {
                            // Echo scores each prompt token given those before it: append the
                            // last predicted token so that every predicted token is echoed.
                            input.extend(predicted.last());
                            let span = Span::Tokens {
                                from: first + 1,
                                prompt: input.clone(),
                            };
                            (Prompt::Tokens(input), span)
                        })
                        .collect()
                }
                None => {
                    totals.push(RollingLoglikelihood {
                        logprob: 0.0,
                        tokens: 0,
                        windows: 1,
                    });
                    let span = Span::Chars {
                        from: 0,
                        to: text.chars().count(),
                    };
                    vec![(Prompt::Text(text.clone()), span)]
                }
            };
            for (prompt, span) in prompts {
                jobs.push(self.job(
                    "/completions",
                    protocol::logprobs_body(&self.settings.model, &prompt),
                ));
                owner.push(t);
                spans.push(span);
            }
        }
        let mut left: Vec<usize> = totals.iter().map(|t| t.windows).collect();
        let text_mode = self.tokenizer.is_none();
        self.client.run(
            &jobs,
            &|i, body| protocol::parse_logprobs(body, &spans[i]),
            &mut |i, scored: Scored| {
                let t = owner[i];
                totals[t].logprob += scored.logprob;
                if text_mode {
                    totals[t].tokens += scored.tokens;
                }
                left[t] -= 1;
                if left[t] == 0 {
                    done(t, &totals[t]);
                }
            },
        )?;
        self.tokens_processed += totals.iter().map(|t| t.tokens as u64).sum::<u64>();
        Ok(totals)
    }

    fn generate_until_many(
        &mut self,
        requests: &[GenerationRequest],
        done: &mut GenerationSink<'_>,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        let api = self.settings.api;
        let mut owner = Vec::new();
        let mut jobs = Vec::new();
        for (d, request) in requests.iter().enumerate() {
            for i in 0..request.n.max(1) {
                let sample = SampleSettings {
                    until: &request.until,
                    max_tokens: request.max_gen_toks,
                    temperature: request.sampling.temperature,
                    top_p: request.sampling.top_p,
                    top_k: request.sampling.top_k,
                    seed: request.sampling.seed.wrapping_add(i as u64),
                };
                let body =
                    protocol::generation_body(api, &self.settings.model, &request.context, &sample);
                jobs.push(self.job(api.path(), body));
                owner.push((d, i));
            }
        }
        let mut samples: Vec<Vec<Option<Generation>>> =
            requests.iter().map(|r| vec![None; r.n.max(1)]).collect();
        let mut left: Vec<usize> = requests.iter().map(|r| r.n.max(1)).collect();
        let mut tokens = 0u64;
        self.client.run(
            &jobs,
            &|i, body| protocol::parse_completion(body, api, &requests[owner[i].0].until),
            &mut |i, c| {
                let (d, s) = owner[i];
                tokens += c.tokens as u64;
                samples[d][s] = Some(Generation {
                    text: c.text,
                    tokens: c.tokens,
                    stop: if c.stopped_by_until {
                        StopReason::Until
                    } else if c.hit_length {
                        StopReason::MaxTokens
                    } else {
                        StopReason::EndOfGeneration
                    },
                    truncated: false,
                });
                left[d] -= 1;
                if left[d] == 0 {
                    let all: Vec<Generation> = samples[d].iter().flatten().cloned().collect();
                    done(d, &all);
                }
            },
        )?;
        self.tokens_processed += tokens;
        Ok(samples
            .into_iter()
            .map(|d| d.into_iter().map(|g| g.expect("all answered")).collect())
            .collect())
    }

    fn batch_documents(&self, _generation: bool) -> usize {
        // Enough documents to keep every replica's slots busy between batches.
        (16 * self.info.parallel).max(64)
    }

    fn request_stats(&self) -> Option<Arc<RequestStats>> {
        Some(self.client.stats())
    }

    fn chat_template(&self) -> Option<String> {
        None
    }

    fn tokens_processed(&self) -> u64 {
        self.tokens_processed
    }
}
