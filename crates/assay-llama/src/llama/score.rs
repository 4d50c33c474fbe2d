//! Scoring: a document's log-likelihood requests in one decode, rolling windows over a text,
//! and the engine's raw scores for benchmarks and the stand-in server.

use super::*;

impl LlamaEngine {
    /// Lays out the requests of one document in decode calls (a function of the document and
    /// the window alone).
    pub(super) fn plan(&self, requests: &[LoglikelihoodRequest]) -> Result<Plan, LlamaError> {
        let tokenized = self
            .tokenizer
            .encode_pairs(&requests.iter().collect::<Vec<_>>());
        plan::plan_document(&tokenized, self.limits)
            .map_err(|e| LlamaError::BadRequest(e.to_string()))
    }

    /// Scores the requests of one document together: their shared context computed once.
    pub(super) fn score_document(&mut self, plan: &Plan) -> Result<Vec<Loglikelihood>, LlamaError> {
        let mut answers: Vec<Option<Loglikelihood>> = vec![None; plan.truncated.len()];
        for round in &plan.rounds {
            let placed = self.run_rounds(&[&round.tokens])?;
            self.read_round(round, placed[0], &plan.truncated, &mut answers);
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every request is served by one round"))
            .collect())
    }

    /// Scores several documents of one round each in one decode call (`--batch-size`): the
    /// caller checks with [`Self::packs`] that they fit.
    pub(super) fn score_packed(
        &mut self,
        plans: &[&Plan],
    ) -> Result<Vec<Vec<Loglikelihood>>, LlamaError> {
        let rounds: Vec<&[BatchToken]> = plans.iter().map(|p| &p.rounds[0].tokens[..]).collect();
        let placed = self.run_rounds(&rounds)?;
        Ok(plans
            .iter()
            .zip(placed)
            .map(|(plan, placement)| {
                let mut answers = vec![None; plan.truncated.len()];
                self.read_round(&plan.rounds[0], placement, &plan.truncated, &mut answers);
                answers
                    .into_iter()
                    .map(|a| a.expect("a packed document has one round"))
                    .collect()
            })
            .collect())
    }

    /// Whether documents of these one-round plans fit one decode call together: tokens within
    /// the batch, sequences and logit rows within the packed limits.
    pub(super) fn packs(&self, plans: &[&Plan]) -> bool {
        let rounds = || plans.iter().map(|p| &p.rounds[0]);
        let tokens: usize = rounds().map(|r| r.tokens.len()).sum();
        let outputs: usize = rounds()
            .map(|r| r.tokens.iter().filter(|t| t.logits).count())
            .sum();
        let seqs: usize = rounds().map(|r| r.targets.len()).sum();
        tokens <= self.limits.max_batch_tokens && outputs <= MAX_PACKED_OUTPUTS && seqs < MAX_SEQS
    }

    /// Reads the scores of `round`'s requests, placed in the last decode call by `placement`.
    fn read_round(
        &self,
        round: &Round,
        placement: Placement,
        truncated: &[bool],
        answers: &mut [Option<Loglikelihood>],
    ) {
        let rows = self.row_stats(
            round
                .targets
                .iter()
                .flat_map(|(_, targets)| targets.iter().map(|t| placement.index(t.batch_index))),
        );
        for (request, targets) in &round.targets {
            let mut logprob = 0.0;
            let mut is_greedy = true;
            for target in targets {
                let (lp, greedy) =
                    self.score(placement.index(target.batch_index), target.token, &rows);
                logprob += lp;
                is_greedy &= greedy;
            }
            answers[*request] = Some(Loglikelihood {
                logprob,
                is_greedy,
                continuation_tokens: targets.len(),
                truncated: truncated[*request],
            });
        }
    }

    /// Scores every token of `text`, window by window.
    pub(super) fn score_rolling(&mut self, text: &str) -> Result<RollingLoglikelihood, LlamaError> {
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
        let plan = self.plan(requests)?;
        let mut decoded = 0;
        for round in &plan.rounds {
            let mut tokens = round.tokens.clone();
            if !all_logits {
                let last = tokens.len() - 1;
                for (i, t) in tokens.iter_mut().enumerate() {
                    t.logits = i == last;
                }
            }
            decoded += tokens.len() - self.run_rounds(&[&tokens])?[0].reused;
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
            let placement = self.run_rounds(&[&round.tokens])?[0];
            let targets: Vec<_> = round.targets.iter().flat_map(|(_, t)| t).collect();
            let rows = self.row_stats(targets.iter().map(|t| placement.index(t.batch_index)));
            for target in targets {
                let index = placement.index(target.batch_index);
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
