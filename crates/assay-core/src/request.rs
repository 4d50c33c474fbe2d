//! The request primitives, the only contract between tasks and backends (DESIGN.md section 1).

use serde::{Deserialize, Serialize};

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
