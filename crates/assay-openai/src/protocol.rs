//! The OpenAI-compatible wire format: request bodies and the reading of responses.
//!
//! Log-likelihoods come from `/v1/completions` with `echo: true, logprobs: 1, max_tokens: 1`:
//! the server returns the prompt's tokens with each token's log-probability and the most
//! likely alternatives, and the answer is read off the continuation's positions (vLLM's
//! `prompt_logprobs` is read the same way when a server answers with it).

use serde_json::{json, Value};

use assay_backend::Token;

/// Which endpoint requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1/completions`: prompts as text (or tokens); log-likelihoods through echo + logprobs.
    Completions,
    /// `/v1/chat/completions`: the prompt as one user message; generation only.
    Chat,
}

impl Api {
    /// The endpoint path below the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Api::Completions => "/completions",
            Api::Chat => "/chat/completions",
        }
    }
}

/// What the prompt of a log-likelihood request is sent as.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Token ids, tokenised by assay (`--tokenizer`): exactly the embedded engine's tokens.
    Tokens(Vec<Token>),
    /// Text, tokenised by the server.
    Text(String),
}

/// Which echoed prompt tokens a log-likelihood answer sums.
#[derive(Debug, Clone, PartialEq)]
pub enum Span {
    /// Positions `from..prompt.len()` of a token prompt.
    Tokens {
        /// First scored position.
        from: usize,
        /// The whole prompt.
        prompt: Vec<Token>,
    },
    /// The tokens of a text prompt whose text offset lies in `from..to` (characters).
    Chars {
        /// First character of the scored text.
        from: usize,
        /// End of the prompt, in characters.
        to: usize,
    },
}

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The body is not what the API describes (may be a truncated or garbled transfer): retried.
    Malformed(String),
    /// The server cannot do what is asked (no prompt log-probabilities): not retried.
    Unsupported(String),
}

/// Sum of the log-probabilities of a span of prompt tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Sum of the tokens' log-probabilities.
    pub logprob: f64,
    /// Whether every token was the most likely one.
    pub is_greedy: bool,
    /// Tokens summed.
    pub tokens: usize,
}

/// A generated text read from a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The text, cut before the first stop string.
    pub text: String,
    /// `finish_reason` was `length`.
    pub hit_length: bool,
    /// Whether a stop string ended it.
    pub stopped_by_until: bool,
    /// `usage.completion_tokens`, when given.
    pub tokens: usize,
}

/// The body asking for the log-probabilities of every token of `prompt`.
pub fn logprobs_body(model: &str, prompt: &Prompt) -> Value {
    let prompt = match prompt {
        Prompt::Tokens(t) => json!(t),
        Prompt::Text(t) => json!(t),
    };
    json!({
        "model": model,
        "prompt": prompt,
        "max_tokens": 1,
        "temperature": 0.0,
        "echo": true,
        "logprobs": 1,
    })
}

/// Settings of one generated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSettings<'a> {
    /// Stop strings.
    pub until: &'a [String],
    /// Most tokens.
    pub max_tokens: usize,
    /// Temperature (0: greedy).
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Top-k (0: off; sent only when set).
    pub top_k: usize,
    /// The sample's seed.
    pub seed: u64,
}

/// The body generating one sample after `context`.
pub fn generation_body(api: Api, model: &str, context: &str, s: &SampleSettings<'_>) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": s.max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "seed": s.seed,
        "n": 1,
    });
    match api {
        Api::Completions => body["prompt"] = json!(context),
        Api::Chat => body["messages"] = json!([{"role": "user", "content": context}]),
    }
    if !s.until.is_empty() {
        body["stop"] = json!(s.until);
    }
    if s.top_k > 0 {
        body["top_k"] = json!(s.top_k);
    }
    body
}

fn parse_json(body: &[u8]) -> Result<Value, Failure> {
    if body.is_empty() {
        return Err(Failure::Malformed("empty body".into()));
    }
    serde_json::from_slice(body).map_err(|e| {
        Failure::Malformed(format!(
            "not valid JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        ))
    })
}

/// The one choice of a response.
fn only_choice(v: &Value) -> Result<&Value, Failure> {
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::Malformed("the response has no `choices` list".into()))?;
    if choices.len() != 1 {
        return Err(Failure::Malformed(format!(
            "expected 1 choice, the response has {}",
            choices.len()
        )));
    }
    Ok(&choices[0])
}

const NO_LOGPROBS: &str = "the server returned no log-probabilities for the prompt (asked with echo=true, logprobs=1): \
     it cannot score multiple-choice or perplexity tasks. vLLM and llama.cpp's server support this; \
     llama-cpp-python needs `--logits_all true`; hosted chat models do not";

const NO_ECHO: &str =
    "the server did not echo the prompt's log-probabilities (asked with echo=true): \
     it cannot score multiple-choice or perplexity tasks, and would score every choice 0. \
     llama.cpp's server ignores echo: serve the model with vLLM or SGLang, or run the GGUF \
     in assay itself (--model FILE.gguf)";

/// Reads the sum of the log-probabilities of `span` from a completions response with echo.
pub fn parse_logprobs(body: &[u8], span: &Span) -> Result<Scored, Failure> {
    let v = parse_json(body)?;
    let choice = only_choice(&v)?;
    let logprobs = &choice["logprobs"];
    if let Some(token_logprobs) = logprobs.get("token_logprobs").and_then(Value::as_array) {
        let top = logprobs.get("top_logprobs").and_then(Value::as_array);
        let positions: Vec<usize> = match span {
            Span::Tokens { from, prompt } => {
                if token_logprobs.len() < prompt.len() {
                    return Err(Failure::Unsupported(format!(
                        "{NO_LOGPROBS} (log-probabilities for {} tokens of a {}-token prompt)",
                        token_logprobs.len(),
                        prompt.len()
                    )));
                }
                (*from..prompt.len()).collect()
            }
            Span::Chars { from, to } => {
                let offsets = logprobs
                    .get("text_offset")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        Failure::Unsupported(
                            "the server gives no `text_offset` for echoed tokens: pass --tokenizer MODEL.gguf to send token ids instead".into(),
                        )
                    })?;
                let text_chars = choice
                    .get("text")
                    .and_then(Value::as_str)
                    .map(|t| t.chars().count());
                if offsets
                    .first()
                    .and_then(Value::as_u64)
                    .is_some_and(|o| o != 0)
                    || text_chars.is_some_and(|n| n < *to)
                {
                    // An echoed prompt starts at offset 0 and the text holds it whole; a
                    // completion alone is shorter, or its offsets start after the prompt.
                    return Err(Failure::Unsupported(NO_ECHO.into()));
                }
                offsets
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| {
                        o.as_u64()
                            .is_some_and(|o| o as usize >= *from && (o as usize) < *to)
                    })
                    .map(|(i, _)| i)
                    .collect()
            }
        };
        let mut scored = Scored {
            logprob: 0.0,
            is_greedy: true,
            tokens: 0,
        };
        for i in positions {
            let Some(lp) = token_logprobs.get(i).and_then(Value::as_f64) else {
                if i == 0 {
                    // The first token of a prompt has no log-probability (it conditions nothing).
                    continue;
                }
                return Err(Failure::Malformed(format!(
                    "token {i} of the echoed prompt has no log-probability"
                )));
            };
            scored.logprob += checked(i, lp)?;
            scored.tokens += 1;
            let best = top
                .and_then(|t| t.get(i))
                .and_then(Value::as_object)
                .and_then(|alts| alts.values().filter_map(Value::as_f64).reduce(f64::max));
            scored.is_greedy &= best.is_some_and(|best| lp >= best);
        }
        return echoed(scored, span);
    }
    if let Some(prompt_logprobs) = choice.get("prompt_logprobs").and_then(Value::as_array) {
        return parse_prompt_logprobs(prompt_logprobs, span);
    }
    Err(Failure::Unsupported(NO_LOGPROBS.into()))
}

/// vLLM's `prompt_logprobs`: per prompt position, null or {token id: {logprob, rank}}.
fn parse_prompt_logprobs(entries: &[Value], span: &Span) -> Result<Scored, Failure> {
    let Span::Tokens { from, prompt } = span else {
        return Err(Failure::Unsupported(
            "vLLM's prompt_logprobs carry no text offsets: pass --tokenizer MODEL.gguf to send token ids".into(),
        ));
    };
    if entries.len() < prompt.len() {
        return Err(Failure::Unsupported(NO_LOGPROBS.into()));
    }
    let mut scored = Scored {
        logprob: 0.0,
        is_greedy: true,
        tokens: 0,
    };
    for i in (*from..prompt.len()).filter(|&i| i > 0) {
        let entry = entries[i].get(prompt[i].to_string()).ok_or_else(|| {
            Failure::Malformed(format!("prompt_logprobs[{i}] lacks token {}", prompt[i]))
        })?;
        let lp = entry["logprob"]
            .as_f64()
            .ok_or_else(|| Failure::Malformed(format!("prompt_logprobs[{i}] has no logprob")))?;
        scored.logprob += checked(i, lp)?;
        scored.tokens += 1;
        scored.is_greedy &= entry["rank"].as_u64() == Some(1);
    }
    echoed(scored, span)
}

/// Refuses a token's log-probability that no model gives (NaN, infinite, above 0 beyond
/// rounding): the server is broken, and its answer is never scored.
fn checked(i: usize, logprob: f64) -> Result<f64, Failure> {
    if logprob.is_finite() && logprob <= 1e-4 {
        return Ok(logprob);
    }
    Err(Failure::Unsupported(format!(
        "token {i} of the echoed prompt has log-probability {logprob}: not a probability, so the server's answers cannot be scored"
    )))
}

/// Refuses an answer that scores no token of a non-empty continuation: the server did not echo
/// the prompt (llama.cpp's server ignores `echo`), and every choice would score 0.
fn echoed(scored: Scored, span: &Span) -> Result<Scored, Failure> {
    let wanted = match span {
        Span::Tokens { from, prompt } => prompt.len().saturating_sub((*from).max(1)),
        Span::Chars { from, to } => to.saturating_sub(*from),
    };
    if scored.tokens == 0 && wanted > 0 {
        return Err(Failure::Unsupported(format!(
            "{NO_ECHO} (no log-probability for any continuation token)"
        )));
    }
    Ok(scored)
}

/// Reads a generated text, cut before the first of `until`.
pub fn parse_completion(body: &[u8], api: Api, until: &[String]) -> Result<Completion, Failure> {
    let v = parse_json(body)?;
    let choice = only_choice(&v)?;
    let text = match api {
        Api::Completions => choice.get("text").and_then(Value::as_str),
        Api::Chat => choice
            .get("message")
            .map(|m| m.get("content").and_then(Value::as_str).unwrap_or("")),
    }
    .ok_or_else(|| Failure::Malformed("the choice has no generated text".into()))?;
    let cut = until
        .iter()
        .filter(|u| !u.is_empty())
        .filter_map(|u| text.find(u.as_str()))
        .min();
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    Ok(Completion {
        text: text[..cut.unwrap_or(text.len())].to_string(),
        hit_length: finish == Some("length") && cut.is_none(),
        stopped_by_until: cut.is_some() || (finish == Some("stop") && !until.is_empty()),
        tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0) as usize,
    })
}

/// The message of an OpenAI error body (`{"error": {"message": ...}}`), else the body's start.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("detail"))
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.chars().take(200).collect())
}

/// The model ids of a `/v1/models` response.
pub fn model_ids(body: &[u8]) -> Result<Vec<String>, Failure> {
    let v = parse_json(body)?;
    Ok(v.get("data")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(tokens: &[&str], lps: &[Option<f64>], tops: &[f64], offsets: &[usize]) -> Vec<u8> {
        let top: Vec<Value> = tokens
            .iter()
            .zip(tops)
            .map(|(t, b)| json!({ *t: b }))
            .collect();
        json!({"choices": [{"text": tokens.concat(), "index": 0, "logprobs": {
            "tokens": tokens, "token_logprobs": lps, "top_logprobs": top, "text_offset": offsets}}]})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn token_spans_sum_the_continuation_and_leave_the_generated_token() {
        // Prompt of 4 tokens (BOS, "The", " cat", " sat"), then one generated token.
        let body = echo(
            &["<bos>", "The", " cat", " sat", "."],
            &[None, Some(-5.0), Some(-1.5), Some(-0.25), Some(-0.1)],
            &[0.0, -2.0, -1.5, -0.25, -0.1],
            &[0, 0, 3, 7, 11],
        );
        let span = Span::Tokens {
            from: 2,
            prompt: vec![2, 10, 11, 12],
        };
        let s = parse_logprobs(&body, &span).unwrap();
        assert_eq!(
            s,
            Scored {
                logprob: -1.75,
                is_greedy: true,
                tokens: 2
            }
        );
        let span = Span::Chars { from: 3, to: 11 };
        assert_eq!(parse_logprobs(&body, &span).unwrap(), s);
        // "The" was not the most likely first token.
        let all = Span::Tokens {
            from: 0,
            prompt: vec![2, 10, 11, 12],
        };
        let s = parse_logprobs(&body, &all).unwrap();
        assert_eq!((s.logprob, s.is_greedy, s.tokens), (-6.75, false, 3));
    }

    #[test]
    fn responses_without_logprobs_or_choices_are_named() {
        let span = Span::Tokens {
            from: 1,
            prompt: vec![1, 2],
        };
        let none = json!({"choices": [{"text": "x", "logprobs": null}]}).to_string();
        assert!(
            matches!(parse_logprobs(none.as_bytes(), &span), Err(Failure::Unsupported(m)) if m.contains("logits_all"))
        );
        let short = echo(&["x"], &[None], &[0.0], &[0]);
        assert!(matches!(
            parse_logprobs(&short, &span),
            Err(Failure::Unsupported(_))
        ));
        let two = json!({"choices": [{}, {}]}).to_string();
        assert!(
            matches!(parse_logprobs(two.as_bytes(), &span), Err(Failure::Malformed(m)) if m.contains("has 2"))
        );
        assert!(
            matches!(parse_logprobs(b"", &span), Err(Failure::Malformed(m)) if m.contains("empty"))
        );
        assert!(matches!(
            parse_logprobs(b"{\"choi", &span),
            Err(Failure::Malformed(_))
        ));
    }

    #[test]
    fn answers_without_echo_or_with_impossible_logprobs_are_refused() {
        let chars = Span::Chars { from: 3, to: 11 };
        // llama.cpp's server ignores echo: only the generated token, offsets from 0.
        let generated = echo(&[" on"], &[Some(-0.3)], &[-0.3], &[0]);
        assert!(matches!(parse_logprobs(&generated, &chars),
            Err(Failure::Unsupported(m)) if m.contains("did not echo")));
        let rolling = Span::Chars { from: 0, to: 11 };
        assert!(matches!(parse_logprobs(&generated, &rolling),
            Err(Failure::Unsupported(m)) if m.contains("did not echo")));
        // The legacy API's offsets of a completion start after the prompt.
        let after = echo(&[" on"], &[Some(-0.3)], &[-0.3], &[11]);
        assert!(matches!(parse_logprobs(&after, &chars),
            Err(Failure::Unsupported(m)) if m.contains("did not echo")));
        let positive = echo(
            &["<bos>", "The", " cat"],
            &[None, Some(-5.0), Some(0.7)],
            &[0.0, -2.0, 0.7],
            &[0, 0, 3],
        );
        let span = Span::Chars { from: 3, to: 7 };
        assert!(matches!(parse_logprobs(&positive, &span),
            Err(Failure::Unsupported(m)) if m.contains("not a probability")));
        let prompt_logprobs = json!({"choices": [{"text": "", "prompt_logprobs": [
            null, {"10": {"logprob": 1.5, "rank": 1}}
        ]}]})
        .to_string();
        let tokens = Span::Tokens {
            from: 1,
            prompt: vec![2, 10],
        };
        assert!(
            matches!(parse_logprobs(prompt_logprobs.as_bytes(), &tokens),
            Err(Failure::Unsupported(m)) if m.contains("not a probability"))
        );
    }

    #[test]
    fn vllm_prompt_logprobs_are_read_by_token_id() {
        let body = json!({"choices": [{"text": "", "logprobs": null, "prompt_logprobs": [
            null,
            {"10": {"logprob": -3.0, "rank": 4}, "7": {"logprob": -0.5, "rank": 1}},
            {"11": {"logprob": -0.5, "rank": 1}}
        ]}]})
        .to_string();
        let span = Span::Tokens {
            from: 1,
            prompt: vec![2, 10, 11],
        };
        let s = parse_logprobs(body.as_bytes(), &span).unwrap();
        assert_eq!(
            s,
            Scored {
                logprob: -3.5,
                is_greedy: false,
                tokens: 2
            }
        );
    }

    #[test]
    fn completions_are_cut_at_stop_strings() {
        let body =
            json!({"choices": [{"text": " 42\n\nQuestion: next", "finish_reason": "length"}],
                          "usage": {"completion_tokens": 9}})
            .to_string();
        let c = parse_completion(body.as_bytes(), Api::Completions, &["\n\n".into()]).unwrap();
        assert_eq!(c.text, " 42");
        assert!(c.stopped_by_until && !c.hit_length);
        assert_eq!(c.tokens, 9);
        let chat = json!({"choices": [{"message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}]})
            .to_string();
        let c = parse_completion(chat.as_bytes(), Api::Chat, &[]).unwrap();
        assert_eq!(c.text, "Paris");
        assert!(!c.stopped_by_until);
    }

    #[test]
    fn error_bodies_give_their_message() {
        let body =
            br#"{"error": {"message": "The model `x` does not exist.", "type": "NotFoundError"}}"#;
        assert_eq!(error_message(body), "The model `x` does not exist.");
        assert_eq!(error_message(b"Not Found"), "Not Found");
    }
}
