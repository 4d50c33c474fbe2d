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

/// The most a log-probability sum may exceed 0 by rounding (per scored token).
const LOGPROB_ROUNDING: f64 = 1e-4;

/// Refuses a sum of log-probabilities over `tokens` tokens that no model can produce: NaN,
/// infinite, or above 0 beyond rounding. Such a value (a NaN adapter or scale, a broken
/// server) would otherwise be scored, and an argmax over NaN picks the first choice.
fn check_logprob(logprob: f64, tokens: usize) -> Result<(), String> {
    let why = if logprob.is_nan() {
        "NaN"
    } else if logprob.is_infinite() {
        "infinite"
    } else if logprob > LOGPROB_ROUNDING * tokens.max(1) as f64 {
        "positive"
    } else {
        return Ok(());
    };
    Err(format!(
        "the log-probability over {tokens} tokens is {why} ({logprob}): not a probability, so nothing is scored (a broken model, adapter or --lora-scale, or a server's wrong answer)"
    ))
}

impl Loglikelihood {
    /// Whether this answer can be scored: not NaN, infinite or positive.
    pub fn check(&self) -> Result<(), String> {
        check_logprob(self.logprob, self.continuation_tokens)
    }
}

impl RollingLoglikelihood {
    /// Whether this answer can be scored: not NaN, infinite or positive.
    pub fn check(&self) -> Result<(), String> {
        check_logprob(self.logprob, self.tokens)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(logprob: f64, continuation_tokens: usize) -> Loglikelihood {
        Loglikelihood {
            logprob,
            is_greedy: false,
            continuation_tokens,
            truncated: false,
        }
    }

    #[test]
    fn impossible_log_probabilities_are_refused() {
        assert_eq!(answer(-3.5, 2).check(), Ok(()));
        assert_eq!(answer(0.0, 0).check(), Ok(()));
        // Rounding of a near-certain token may land a hair above 0.
        assert_eq!(answer(2e-5, 1).check(), Ok(()));
        for (bad, why) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "infinite"),
            (f64::NEG_INFINITY, "infinite"),
            (0.5, "positive"),
        ] {
            let err = answer(bad, 3).check().unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let rolling = RollingLoglikelihood {
            logprob: f64::NAN,
            tokens: 10,
            windows: 1,
        };
        assert!(rolling.check().is_err());
    }
}
