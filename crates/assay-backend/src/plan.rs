//! How the requests of one document are laid out in decode calls: left truncation to the
//! context window, the shared prefix computed once, logits only where a continuation token is
//! predicted. Pure functions of the document's tokens and the engine's limits, so a document's
//! scores never depend on what else is being evaluated.

/// A token id.
pub type Token = i32;

/// One log-likelihood request, tokenised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedRequest {
    /// Context tokens (with BOS when the model wants it).
    pub context: Vec<Token>,
    /// Continuation tokens: the ones scored.
    pub continuation: Vec<Token>,
}

/// The limits a plan must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest input of one sequence (the context window).
    pub max_len: usize,
    /// Most tokens in one decode call (KV cells available).
    pub max_batch_tokens: usize,
    /// Most sequences in one decode call.
    pub max_seqs: usize,
    /// Most positions with logits in one decode call (each costs a vocabulary-sized row).
    pub max_outputs: usize,
}

/// One token of a decode call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchToken {
    /// Token id.
    pub token: Token,
    /// Position in its sequence(s).
    pub pos: i32,
    /// Sequences the token belongs to (several for a shared prefix).
    pub seq_ids: Vec<i32>,
    /// Whether logits are needed at this token.
    pub logits: bool,
}

/// Where to read one continuation token's score after the decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Index of the token in the decode call whose logits predict `token`.
    pub batch_index: usize,
    /// The continuation token scored.
    pub token: Token,
}

/// One decode call: its tokens and, per request it serves, the targets to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// The tokens, shared prefix first, then each request's own tail.
    pub tokens: Vec<BatchToken>,
    /// (request index, targets in continuation order).
    pub targets: Vec<(usize, Vec<Target>)>,
}

/// A document's decode calls and which requests were truncated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Decode calls, each starting from an empty KV cache.
    pub rounds: Vec<Round>,
    /// Per request: whether its context was cut from the left.
    pub truncated: Vec<bool>,
}

/// Why a document cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A continuation has no tokens.
    #[error("request {0} has an empty continuation")]
    EmptyContinuation(usize),
    /// A continuation alone is longer than the context window.
    #[error("request {index}: the continuation has {tokens} tokens, more than the context window of {max_len}")]
    ContinuationTooLong {
        /// The request.
        index: usize,
        /// Its continuation length.
        tokens: usize,
        /// The window.
        max_len: usize,
    },
}

/// The model input of one request after truncation, and where its predictions start.
struct Input {
    tokens: Vec<Token>,
    first_prediction: usize,
    continuation: Vec<Token>,
}

fn prepare(
    index: usize,
    req: &TokenizedRequest,
    max_len: usize,
) -> Result<(Input, bool), PlanError> {
    let m = req.continuation.len();
    if m == 0 {
        return Err(PlanError::EmptyContinuation(index));
    }
    if m > max_len {
        return Err(PlanError::ContinuationTooLong {
            index,
            tokens: m,
            max_len,
        });
    }
    // The model reads context + continuation without its last token; the logits at the last m
    // positions predict the m continuation tokens (lm-eval's convention).
    let mut tokens: Vec<Token> = req
        .context
        .iter()
        .chain(&req.continuation[..m - 1])
        .copied()
        .collect();
    let truncated = tokens.len() > max_len;
    if truncated {
        tokens.drain(..tokens.len() - max_len);
    }
    // With an empty context the first continuation token cannot be predicted from anything;
    // callers always give at least a BOS token, so this only guards the arithmetic.
    let first_prediction = tokens.len().saturating_sub(m);
    Ok((
        Input {
            tokens,
            first_prediction,
            continuation: req.continuation.clone(),
        },
        truncated,
    ))
}

fn common_prefix(inputs: &[&Input]) -> usize {
    let first = &inputs[0].tokens;
    let mut len = first.len();
    for input in &inputs[1..] {
        len = len.min(
            first
                .iter()
                .zip(&input.tokens)
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    len
}

/// Tokens and logit rows a round over `inputs` would need.
fn cost(inputs: &[&Input]) -> (usize, usize) {
    let prefix = common_prefix(inputs);
    let tokens = prefix
        + inputs
            .iter()
            .map(|i| i.tokens.len() - prefix)
            .sum::<usize>();
    let mut outputs = 0;
    // Shared positions need one logit row whoever reads them.
    let shared_from = inputs
        .iter()
        .map(|i| i.first_prediction)
        .min()
        .unwrap_or(prefix);
    outputs += prefix.saturating_sub(shared_from);
    for i in inputs {
        outputs += i.tokens.len() - prefix.max(i.first_prediction);
    }
    (tokens, outputs)
}

fn build_round(members: &[(usize, &Input)]) -> Round {
    let inputs: Vec<&Input> = members.iter().map(|(_, i)| *i).collect();
    let prefix = common_prefix(&inputs);
    let all_seqs: Vec<i32> = (0..members.len() as i32).collect();
    let mut tokens = Vec::new();
    for pos in 0..prefix {
        tokens.push(BatchToken {
            token: inputs[0].tokens[pos],
            pos: pos as i32,
            seq_ids: all_seqs.clone(),
            logits: inputs.iter().any(|i| pos >= i.first_prediction),
        });
    }
    let mut targets = Vec::new();
    for (seq, (request, input)) in members.iter().enumerate() {
        let tail_start = tokens.len();
        for pos in prefix..input.tokens.len() {
            tokens.push(BatchToken {
                token: input.tokens[pos],
                pos: pos as i32,
                seq_ids: vec![seq as i32],
                logits: pos >= input.first_prediction,
            });
        }
        let request_targets = input
            .continuation
            .iter()
            .enumerate()
            .map(|(k, &token)| {
                let pos = input.first_prediction + k;
                let batch_index = if pos < prefix {
                    pos
                } else {
                    tail_start + (pos - prefix)
                };
                Target { batch_index, token }
            })
            .collect();
        targets.push((*request, request_targets));
    }
    Round { tokens, targets }
}

/// Lays out the requests of one document in as few decode calls as the limits allow, in
/// request order.
pub fn plan_document(requests: &[TokenizedRequest], limits: Limits) -> Result<Plan, PlanError> {
    let mut inputs = Vec::with_capacity(requests.len());
    let mut truncated = Vec::with_capacity(requests.len());
    for (i, req) in requests.iter().enumerate() {
        let (input, cut) = prepare(i, req, limits.max_len)?;
        inputs.push(input);
        truncated.push(cut);
    }
    let mut rounds = Vec::new();
    let mut members: Vec<(usize, &Input)> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        members.push((i, input));
        let refs: Vec<&Input> = members.iter().map(|(_, x)| *x).collect();
        let (tokens, outputs) = cost(&refs);
        let fits = members.len() <= limits.max_seqs
            && tokens <= limits.max_batch_tokens
            && outputs <= limits.max_outputs;
        if !fits && members.len() > 1 {
            let last = members.pop().expect("at least two members");
            rounds.push(build_round(&members));
            members = vec![last];
        }
    }
    if !members.is_empty() {
        rounds.push(build_round(&members));
    }
    Ok(Plan { rounds, truncated })
}

/// The windows that score every token of a text once (lm-eval's rolling windows with one token
/// of context): each entry is (model input, index of the first input position whose logits
/// are read, the tokens those logits predict).
pub fn rolling_windows(
    prefix_token: Token,
    tokens: &[Token],
    max_len: usize,
) -> Vec<(Vec<Token>, usize, Vec<Token>)> {
    let mut windows = Vec::new();
    let mut done = 0;
    while done < tokens.len() {
        let end = (done + max_len).min(tokens.len());
        // Input: the max_len tokens before `end` (the prefix token stands before the text).
        let mut sequence = Vec::with_capacity(tokens.len() + 1);
        sequence.push(prefix_token);
        sequence.extend_from_slice(tokens);
        // sequence[j + 1] == tokens[j]; the input ends at tokens[end - 2], i.e. sequence[end - 1].
        let input_end = end; // exclusive, in `sequence` coordinates
        let input_start = input_end.saturating_sub(max_len);
        let input = sequence[input_start..input_end].to_vec();
        let predicted = tokens[done..end].to_vec();
        let first = input.len() - predicted.len();
        windows.push((input, first, predicted));
        done = end;
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(context: &[Token], continuation: &[Token]) -> TokenizedRequest {
        TokenizedRequest {
            context: context.to_vec(),
            continuation: continuation.to_vec(),
        }
    }

    const ROOMY: Limits = Limits {
        max_len: 100,
        max_batch_tokens: 1000,
        max_seqs: 8,
        max_outputs: 100,
    };

    #[test]
    fn choices_share_their_context() {
        let plan =
            plan_document(&[req(&[1, 2, 3], &[7, 8]), req(&[1, 2, 3], &[9])], ROOMY).unwrap();
        assert_eq!(plan.rounds.len(), 1);
        let round = &plan.rounds[0];
        // Shared 1 2 3 (logits at 3), then 7 for the first choice; the second needs no token.
        let toks: Vec<Token> = round.tokens.iter().map(|t| t.token).collect();
        assert_eq!(toks, vec![1, 2, 3, 7]);
        assert_eq!(round.tokens[2].seq_ids, vec![0, 1]);
        assert!(round.tokens[2].logits && round.tokens[3].logits && !round.tokens[1].logits);
        assert_eq!(
            round.targets[0].1,
            vec![
                Target {
                    batch_index: 2,
                    token: 7
                },
                Target {
                    batch_index: 3,
                    token: 8
                }
            ]
        );
        assert_eq!(
            round.targets[1].1,
            vec![Target {
                batch_index: 2,
                token: 9
            }]
        );
    }

    #[test]
    fn different_contexts_share_only_their_common_prefix() {
        // Winogrande-style: the choices are contexts, the continuation is the same.
        let plan =
            plan_document(&[req(&[1, 2, 5], &[9, 9]), req(&[1, 2, 6], &[9, 9])], ROOMY).unwrap();
        let round = &plan.rounds[0];
        let toks: Vec<(Token, i32, Vec<i32>)> = round
            .tokens
            .iter()
            .map(|t| (t.token, t.pos, t.seq_ids.clone()))
            .collect();
        assert_eq!(
            toks,
            vec![
                (1, 0, vec![0, 1]),
                (2, 1, vec![0, 1]),
                (5, 2, vec![0]),
                (9, 3, vec![0]),
                (6, 2, vec![1]),
                (9, 3, vec![1])
            ]
        );
        assert_eq!(round.targets[1].1[0].batch_index, 4);
    }

    #[test]
    fn long_contexts_are_cut_from_the_left() {
        let limits = Limits {
            max_len: 4,
            ..ROOMY
        };
        let plan = plan_document(&[req(&[1, 2, 3, 4, 5], &[6, 7])], limits).unwrap();
        assert_eq!(plan.truncated, vec![true]);
        let toks: Vec<Token> = plan.rounds[0].tokens.iter().map(|t| t.token).collect();
        assert_eq!(toks, vec![3, 4, 5, 6]);
        let err = plan_document(&[req(&[1], &[1, 2, 3, 4, 5])], limits).unwrap_err();
        assert!(matches!(err, PlanError::ContinuationTooLong { .. }));
        assert!(plan_document(&[req(&[1], &[])], limits).is_err());
    }

    #[test]
    fn rounds_split_when_limits_are_hit_and_depend_only_on_the_document() {
        let limits = Limits {
            max_seqs: 2,
            ..ROOMY
        };
        let reqs: Vec<_> = (0..5).map(|i| req(&[1, 2], &[10 + i])).collect();
        let plan = plan_document(&reqs, limits).unwrap();
        assert_eq!(plan.rounds.len(), 3);
        let served: Vec<usize> = plan
            .rounds
            .iter()
            .flat_map(|r| r.targets.iter().map(|t| t.0))
            .collect();
        assert_eq!(served, vec![0, 1, 2, 3, 4]);
        assert_eq!(plan, plan_document(&reqs, limits).unwrap());
    }

    #[test]
    fn rolling_windows_score_every_token_once() {
        let tokens: Vec<Token> = (10..20).collect();
        let windows = rolling_windows(1, &tokens, 4);
        let predicted: Vec<Token> = windows.iter().flat_map(|w| w.2.clone()).collect();
        assert_eq!(predicted, tokens);
        assert_eq!(windows[0].0, vec![1, 10, 11, 12]);
        assert_eq!(windows[0].1, 0);
        // Later windows keep as much preceding context as fits.
        assert_eq!(windows[1].0, vec![13, 14, 15, 16]);
        assert_eq!(windows[1].1, 0);
        assert_eq!(windows[2].0, vec![15, 16, 17, 18]);
        assert_eq!(windows[2].1, 2);
        for (input, first, predicted) in &windows {
            assert_eq!(input.len() - first, predicted.len());
            assert!(input.len() <= 4);
        }
    }
}
