//! Answers to completion requests, computed on one thread that owns the model (llama.cpp's
//! contexts stay on the thread that made them).

use std::sync::mpsc;

use assay_backend::{Backend, TextTokenizer};
use assay_core::{GenerationRequest, Sampling, StopReason};
use assay_llama::{EngineSettings, LlamaEngine, TokenScore, Tokenizer, DEFAULT_PARALLEL};
use assay_tasks::{ChatFormat, Message};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::{Backing, Lie, Options};

/// Which endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Completions,
    Chat,
}

/// Why a request gets an error reply: the HTTP status and the message.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal {
            status: 400,
            message,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        Refusal::from(message.to_string())
    }
}

/// A reply, or why not.
type Reply = Result<Value, Refusal>;

struct Work {
    endpoint: Endpoint,
    body: Value,
    reply: oneshot::Sender<Reply>,
}

/// The way to the model's thread.
pub(crate) struct EngineHandle {
    work: mpsc::Sender<Work>,
}

impl EngineHandle {
    /// Starts the model's thread and waits until the model is loaded.
    pub(crate) fn start(options: &Options) -> anyhow::Result<EngineHandle> {
        let (work, inbox) = mpsc::channel::<Work>();
        let (ready, loaded) = mpsc::channel::<Result<(), String>>();
        let options = options.clone();
        std::thread::Builder::new()
            .name("standin-model".into())
            .spawn(move || {
                let mut model = match Model::load(&options) {
                    Ok(m) => {
                        let _ = ready.send(Ok(()));
                        m
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                for w in inbox {
                    let reply = match w.endpoint {
                        Endpoint::Completions => model.completions(&w.body),
                        Endpoint::Chat => model.chat(&w.body),
                    };
                    let _ = w.reply.send(reply);
                }
            })?;
        loaded
            .recv()
            .map_err(|_| anyhow::anyhow!("the stand-in's model thread stopped"))?
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(EngineHandle { work })
    }

    /// The reply to a completions or chat request.
    pub(crate) async fn answer(&self, endpoint: Endpoint, body: Value) -> Reply {
        let (reply, answer) = oneshot::channel();
        self.work
            .send(Work {
                endpoint,
                body,
                reply,
            })
            .map_err(|_| Refusal::from("the model thread stopped"))?;
        answer
            .await
            .map_err(|_| Refusal::from("the model thread stopped"))?
    }
}

/// The model and how it answers.
struct Model {
    tokenizer: Tokenizer,
    /// `None`: instant answers.
    engine: Option<LlamaEngine>,
    chat: Option<ChatFormat>,
    options: Options,
}

/// One prompt of a completions request.
enum PromptIn {
    Text(String),
    Tokens(Vec<i32>),
}

impl Model {
    fn load(options: &Options) -> Result<Model, String> {
        let (tokenizer, engine) = match &options.backing {
            Backing::Engine { model, threads } => {
                let settings = EngineSettings {
                    threads: *threads,
                    ctx_size: Some(2048),
                    max_memory: None,
                    gpu_layers: 0,
                    parallel: DEFAULT_PARALLEL,
                    batch_size: 1,
                    lora: None,
                };
                let engine = LlamaEngine::load(model, &settings).map_err(|e| e.to_string())?;
                (engine.tokenizer(), Some(engine))
            }
            Backing::Instant { model } => {
                (Tokenizer::load(model).map_err(|e| e.to_string())?, None)
            }
        };
        let chat = engine
            .as_ref()
            .and_then(|e| e.chat_template())
            .and_then(|t| ChatFormat::new(&t, "<bos>", "<eos>", None, false).ok());
        Ok(Model {
            tokenizer,
            engine,
            chat,
            options: options.clone(),
        })
    }

    fn completions(&mut self, body: &Value) -> Reply {
        let prompts = prompts_of(&body["prompt"])?;
        if self.options.text_prompts_only
            && prompts.iter().any(|p| matches!(p, PromptIn::Tokens(_)))
        {
            return Err(Refusal {
                status: 422,
                message: "Input should be a valid string: `prompt` takes text only".into(),
            });
        }
        let echo = body["echo"].as_bool().unwrap_or(false);
        let logprobs = !body["logprobs"].is_null();
        let mut choices = Vec::new();
        let (mut prompt_tokens, mut completion_tokens) = (0, 0);
        for (index, prompt) in prompts.into_iter().enumerate() {
            let mut choice = if echo && logprobs {
                let (choice, n) = self.echo(prompt, body)?;
                prompt_tokens += n;
                completion_tokens += 1;
                choice
            } else {
                let PromptIn::Text(text) = prompt else {
                    return Err(Refusal::from(
                        "the stand-in generates from text prompts only",
                    ));
                };
                let (text, finish, tokens) = self.generate(&text, body)?;
                completion_tokens += tokens;
                json!({"text": text, "finish_reason": finish, "logprobs": null})
            };
            choice["index"] = json!(index);
            choices.push(choice);
        }
        Ok(json!({
            "id": "cmpl-standin",
            "object": "text_completion",
            "created": 0,
            "model": self.options.model_name,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }))
    }

    fn chat(&mut self, body: &Value) -> Reply {
        let messages: Vec<Message> = body["messages"]
            .as_array()
            .ok_or(Refusal::from("`messages` must be a list"))?
            .iter()
            .map(|m| {
                let role = match m["role"].as_str() {
                    Some("system") => "system",
                    Some("assistant") => "assistant",
                    _ => "user",
                };
                Message {
                    role,
                    content: m["content"].as_str().unwrap_or("").to_string(),
                }
            })
            .collect();
        let prompt = match &self.chat {
            Some(chat) => chat.render(&messages)?,
            None => messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        };
        let (text, finish, tokens) = self.generate(&prompt, body)?;
        Ok(json!({
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": 0,
            "model": self.options.model_name,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"completion_tokens": tokens},
        }))
    }

    /// The echoed prompt with per-token log-probabilities and one generated token.
    fn echo(&mut self, prompt: PromptIn, body: &Value) -> Result<(Value, usize), String> {
        let tokens = match prompt {
            PromptIn::Tokens(t) => t,
            PromptIn::Text(text) => self.tokenizer.tokenize(&text, true),
        };
        let vocab = self.tokenizer.vocab_size() as i32;
        if let Some(bad) = tokens.iter().find(|&&t| t < 0 || t >= vocab) {
            return Err(format!("token id {bad} is not in the vocabulary"));
        }
        let (scores, next) = match &mut self.engine {
            Some(engine) => engine.prompt_logprobs(&tokens).map_err(|e| e.to_string())?,
            None => instant_scores(&tokens),
        };
        let with_next = body["max_tokens"].as_u64().unwrap_or(16) > 0;
        let mut all = tokens.clone();
        if with_next {
            all.push(next.top_token);
        }
        let pieces: Vec<String> = all.iter().map(|&t| self.tokenizer.piece(t)).collect();
        let (offsets, text) = char_offsets(all.iter().map(|&t| self.tokenizer.piece_bytes(t)));
        let mut token_logprobs = vec![Value::Null];
        let mut top = vec![Value::Null];
        let mut listed: Vec<&TokenScore> = scores.iter().collect();
        if with_next {
            listed.push(&next);
        }
        for s in listed {
            let logprob = match self.options.lie {
                Some(Lie::PositiveLogprobs) => 0.7,
                Some(Lie::ZeroLogprobs) => 0.0,
                _ => s.logprob,
            };
            token_logprobs.push(json!(logprob));
            let mut alts = serde_json::Map::new();
            alts.insert(self.tokenizer.piece(s.top_token), json!(s.top_logprob));
            top.push(Value::Object(alts));
        }
        let (mut pieces, mut offsets) = (pieces, offsets);
        if self.options.lie == Some(Lie::IgnoreEcho) {
            // Only the generated token, its offset counted from the completion's start.
            let keep = pieces.len().saturating_sub(1);
            pieces.drain(..keep);
            token_logprobs.drain(..keep);
            top.drain(..keep);
            offsets = vec![0];
        }
        let logprobs = if self.options.no_logprobs {
            Value::Null
        } else {
            json!({"tokens": pieces, "token_logprobs": token_logprobs,
                   "top_logprobs": top, "text_offset": offsets})
        };
        let text = match self.options.lie {
            Some(Lie::IgnoreEcho) => pieces.concat(),
            _ => text,
        };
        let choice = json!({"text": text, "finish_reason": "length", "logprobs": logprobs});
        Ok((choice, tokens.len()))
    }

    /// Generates after `prompt` with the request's settings: (text, finish reason, tokens).
    fn generate(
        &mut self,
        prompt: &str,
        body: &Value,
    ) -> Result<(String, &'static str, usize), String> {
        let until: Vec<String> = match &body["stop"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let request = GenerationRequest {
            context: prompt.to_string(),
            until,
            max_gen_toks: body["max_tokens"].as_u64().unwrap_or(16).max(1) as usize,
            sampling: Sampling {
                temperature: body["temperature"].as_f64().unwrap_or(1.0),
                top_p: body["top_p"].as_f64().unwrap_or(1.0),
                top_k: body["top_k"].as_u64().unwrap_or(0) as usize,
                seed: body["seed"].as_u64().unwrap_or(0),
            },
            n: 1,
        };
        let Some(engine) = &mut self.engine else {
            return Ok((" 42".into(), "stop", 2));
        };
        let mut samples = engine.generate_until(&request).map_err(|e| e.to_string())?;
        let g = samples.pop().ok_or("no sample generated")?;
        let finish = match g.stop {
            StopReason::MaxTokens => "length",
            StopReason::Until | StopReason::EndOfGeneration => "stop",
        };
        Ok((g.text, finish, g.tokens))
    }
}

/// Each token's offset in characters into the decoded text, and the text, as a server counts
/// them: a token that starts inside a character (byte fallback) starts at that character, so
/// offsets do not drift past multi-byte characters.
fn char_offsets(pieces: impl Iterator<Item = Vec<u8>>) -> (Vec<usize>, String) {
    let mut bytes = Vec::new();
    let mut offsets = Vec::new();
    for piece in pieces {
        let valid = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        };
        offsets.push(valid.chars().count());
        bytes.extend(piece);
    }
    (offsets, String::from_utf8_lossy(&bytes).into_owned())
}

/// The prompts of a completions request: a string, a list of strings, a list of token ids or a
/// list of such lists.
fn prompts_of(prompt: &Value) -> Result<Vec<PromptIn>, String> {
    let tokens = |v: &Vec<Value>| -> Option<Vec<i32>> {
        v.iter().map(|t| t.as_i64().map(|t| t as i32)).collect()
    };
    match prompt {
        Value::String(s) => Ok(vec![PromptIn::Text(s.clone())]),
        Value::Array(items) if items.iter().all(Value::is_number) => tokens(items)
            .map(|t| vec![PromptIn::Tokens(t)])
            .ok_or_else(|| "token ids must be integers".into()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(PromptIn::Text(s.clone())),
                Value::Array(t) => tokens(t)
                    .map(PromptIn::Tokens)
                    .ok_or_else(|| "token ids must be integers".to_string()),
                _ => Err("`prompt` must be text, token ids, or a list of them".to_string()),
            })
            .collect(),
        _ => Err("`prompt` must be text, token ids, or a list of them".into()),
    }
}

/// Made-up but deterministic scores: a function of each token and its position.
fn instant_scores(tokens: &[i32]) -> (Vec<TokenScore>, TokenScore) {
    let score = |i: usize, t: i32| {
        let h = (t as u64)
            .wrapping_mul(2_654_435_761)
            .wrapping_add(i as u64 * 97)
            % 1000;
        let logprob = -(h as f64) / 250.0 - 0.01;
        let greedy = h < 300;
        TokenScore {
            logprob,
            top_token: if greedy { t } else { 0 },
            top_logprob: if greedy { logprob } else { -0.005 },
        }
    };
    let scores = tokens
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, &t)| score(i, t))
        .collect();
    (scores, score(tokens.len(), 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters_across_byte_fallback_tokens() {
        // "é" (2 bytes) split over two byte tokens, then " A".
        let pieces = [b"caf".to_vec(), vec![0xC3], vec![0xA9], b" A".to_vec()];
        let (offsets, text) = char_offsets(pieces.into_iter());
        assert_eq!(text, "café A");
        assert_eq!(offsets, [0, 3, 3, 4]);
    }
}
