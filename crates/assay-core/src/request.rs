//! The request primitives, the only contract between tasks and backends (DESIGN.md section 1).

use serde::{Deserialize, Serialize};

/// The three request primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Primitive {
    /// [`LoglikelihoodRequest`].
    Loglikelihood,
    /// Rolling log-likelihood of a whole text.
    LoglikelihoodRolling,
    /// [`GenerationRequest`].
    GenerateUntil,
}

impl Primitive {
    /// lm-eval's name of the primitive.
    pub fn name(self) -> &'static str {
        match self {
            Primitive::Loglikelihood => "loglikelihood",
            Primitive::LoglikelihoodRolling => "loglikelihood_rolling",
            Primitive::GenerateUntil => "generate_until",
        }
    }
}

/// Score `continuation` given `context`: the sum of the log-probabilities of its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoglikelihoodRequest {
    /// The text the model conditions on.
    pub context: String,
    /// The text whose tokens are scored.
    pub continuation: String,
}

/// A backend's answer to a [`LoglikelihoodRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Loglikelihood {
    /// Sum of the natural-log probabilities of the continuation tokens.
    pub logprob: f64,
    /// Whether every continuation token was the model's most likely next token.
    pub is_greedy: bool,
    /// How many tokens the continuation has.
    pub continuation_tokens: usize,
    /// Whether the context was cut from the left to fit the model's context window.
    pub truncated: bool,
}

/// A backend's answer to a rolling log-likelihood request (every token of a text scored once).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RollingLoglikelihood {
    /// Sum of the natural-log probabilities of all tokens of the text.
    pub logprob: f64,
    /// How many tokens were scored.
    pub tokens: usize,
    /// How many context windows the text needed.
    pub windows: usize,
}

/// How tokens are chosen during generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 for greedy decoding; otherwise logits are divided by it before sampling.
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens whose mass reaches `top_p` (1 = off).
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Seed of the document's sampler; sample `i` uses (seed, i), so outputs reproduce.
    pub seed: u64,
}

impl Sampling {
    /// Greedy decoding.
    pub fn greedy() -> Sampling {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

/// Generate text after `context` until a stop string, an end-of-generation token or
/// `max_gen_toks` tokens; `n` samples of the same prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    /// The prompt.
    pub context: String,
    /// Stop strings: generation ends before the first occurrence of any (not returned).
    pub until: Vec<String>,
    /// Most tokens generated.
    pub max_gen_toks: usize,
    /// Token choice.
    pub sampling: Sampling,
    /// Number of samples.
    pub n: usize,
}

/// Why a generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A stop string was produced.
    Until,
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// `max_gen_toks` was reached.
    MaxTokens,
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The text, cut before the stop string.
    pub text: String,
    /// Tokens generated.
    pub tokens: usize,
    /// Why it ended.
    pub stop: StopReason,
    /// Whether the prompt was cut from the left to leave room for `max_gen_toks`.
    pub truncated: bool,
}
