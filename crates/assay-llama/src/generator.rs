//! Generation of many sequences at once (continuous batching).
//!
//! Every running sequence has a KV stream of its own (`kv_unified = false`), so its attention
//! covers its own tokens only and a finished sequence's slot is refilled at once with the next
//! one. A further stream, the prompt cache, holds the most recent new prompt (or, pinned, a task's
//! shared prefix): a sequence whose prompt starts with the same tokens (the other samples of the
//! same prompt, or a fixed few-shot block) copies that stream and computes only the rest.
//!
//! llama.cpp's CPU kernels round differently for different batch shapes (a repacked matrix
//! product handles rows in groups of four), so a sequence's tokens can depend, on near ties, on
//! what ran beside it and on how its prompt was split. [`crate::LlamaEngine`] therefore batches
//! across documents only when asked (`parallel > 1`); otherwise it runs one document at a time
//! with the cache pinned to the task's shared prefix, and a document's samples are a function of
//! that document (and the task's prefix) alone.

use std::collections::VecDeque;
use std::num::NonZeroU32;

use assay_core::{Generation, GenerationRequest, StopReason};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use rand_chacha::ChaCha8Rng;

use assay_backend::{AdapterInfo, Token};

use crate::runtime::{apply_adapter, llama_backend};
use crate::{sampler, LlamaError};

/// A prompt ready to generate from.
pub(crate) struct Prompt {
    /// Its tokens (already cut to leave room for `max_gen_toks`).
    pub tokens: Vec<Token>,
    /// Whether it was cut from the left.
    pub truncated: bool,
}

/// A llama.cpp context with one KV stream per running sequence plus the prompt cache.
pub(crate) struct Generator {
    model: &'static LlamaModel,
    ctx: LlamaContext<'static>,
    batch: LlamaBatch<'static>,
    /// Sequences run at once (streams `0..slots`); stream `slots` is the prompt cache.
    slots: usize,
    /// Longest sequence (prompt + generated tokens) one stream holds.
    max_len: usize,
    /// The prompt held by the cache stream.
    cached: Vec<Token>,
    /// Whether the cache holds a fixed prefix (else it follows the newest prompt).
    pinned: bool,
    /// Tokens run through the model.
    pub tokens_processed: u64,
}

/// One sample of one request.
struct Work {
    request: usize,
    sample: usize,
}

/// A sequence occupying a slot.
struct Running {
    work: Work,
    rng: ChaCha8Rng,
    bytes: Vec<u8>,
    text: String,
    tokens: usize,
    /// Position of the next token to feed.
    pos: usize,
    /// The token chosen last, fed at the next step.
    next: Token,
}

impl Generator {
    /// Creates the context: `slots` streams of `max_len` tokens each, plus the cache stream.
    pub fn new(
        model: &'static LlamaModel,
        slots: usize,
        max_len: usize,
        threads: usize,
        lora: Option<(&mut LlamaLoraAdapter, &AdapterInfo)>,
    ) -> Result<Generator, LlamaError> {
        let streams = slots + 1;
        let n_ctx = (max_len * streams) as u32;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(max_len as u32)
            .with_n_ubatch(512.min(max_len as u32))
            .with_n_seq_max(streams as u32)
            .with_kv_unified(false)
            // Flash attention's one-token decode splits the keys among the threads, so the
            // text generated changed with --threads; without it every thread count gives the
            // same text, and GSM8K runs no slower (42-47 s vs 50-55 s for 6 documents).
            .with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32);
        let mut ctx =
            model
                .new_context(llama_backend(), params)
                .map_err(|e| LlamaError::Context {
                    ctx_size: n_ctx,
                    threads,
                    reason: e.to_string(),
                })?;
        if let Some((adapter, info)) = lora {
            apply_adapter(&mut ctx, adapter, info)?;
        }
        Ok(Generator {
            model,
            ctx,
            batch: LlamaBatch::new(max_len.max(slots), 1),
            slots,
            max_len,
            cached: Vec::new(),
            pinned: false,
            tokens_processed: 0,
        })
    }

    /// Generates `request.n` samples for every request, running up to `slots` sequences at once;
    /// answers in request order. Sample `k` draws from the generator of (seed, k).
    pub fn generate(
        &mut self,
        requests: &[GenerationRequest],
        prompts: &[Prompt],
        slots: usize,
    ) -> Result<Vec<Vec<Generation>>, LlamaError> {
        let slots = slots.clamp(1, self.slots);
        let mut queue: VecDeque<Work> = requests
            .iter()
            .enumerate()
            .flat_map(|(request, r)| (0..r.n).map(move |sample| Work { request, sample }))
            .collect();
        let mut out: Vec<Vec<Option<Generation>>> =
            requests.iter().map(|r| vec![None; r.n]).collect();
        let mut running: Vec<Option<Running>> = (0..slots).map(|_| None).collect();
        loop {
            // Fill free slots; a sequence may finish on its first token.
            for (slot, place) in running.iter_mut().enumerate() {
                while place.is_none() {
                    let Some(work) = queue.pop_front() else { break };
                    let request = &requests[work.request];
                    let prompt = &prompts[work.request];
                    let first = self.start(slot, &prompt.tokens)?;
                    let mut seq = Running {
                        rng: sampler::sample_rng(request.sampling.seed, work.sample),
                        work,
                        bytes: Vec::new(),
                        text: String::new(),
                        tokens: 0,
                        pos: prompt.tokens.len(),
                        next: 0,
                    };
                    let logits = self.ctx.get_logits_ith(first as i32);
                    match self.advance(&mut seq, logits, request) {
                        Some(stop) => {
                            let (r, k) = (seq.work.request, seq.work.sample);
                            out[r][k] = Some(finish(seq, stop, prompt.truncated));
                        }
                        None => *place = Some(seq),
                    }
                }
            }
            let active: Vec<usize> = (0..slots).filter(|&s| running[s].is_some()).collect();
            if active.is_empty() {
                break;
            }
            self.batch.clear();
            for &slot in &active {
                let seq = running[slot].as_ref().expect("active slot");
                self.batch
                    .add(LlamaToken(seq.next), seq.pos as i32, &[slot as i32], true)
                    .map_err(|e| LlamaError::Decode(e.to_string()))?;
            }
            self.decode()?;
            for (row, &slot) in active.iter().enumerate() {
                let mut seq = running[slot].take().expect("active slot");
                seq.pos += 1;
                let request = &requests[seq.work.request];
                let logits = self.ctx.get_logits_ith(row as i32);
                match self.advance(&mut seq, logits, request) {
                    Some(stop) => {
                        let (r, k) = (seq.work.request, seq.work.sample);
                        out[r][k] = Some(finish(seq, stop, prompts[r].truncated));
                    }
                    None => running[slot] = Some(seq),
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|samples| {
                samples
                    .into_iter()
                    .map(|g| g.expect("every sample runs to a stop"))
                    .collect()
            })
            .collect())
    }

    /// Sequences this context can run at once.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Tokens each sequence's stream holds (prompt and generation).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Fixes the prompt cache to `prefix` (decoding it unless it is there already), or with an
    /// empty `prefix` lets it follow the newest prompt. While a prefix is pinned, every prompt
    /// that starts with it is computed from it the same way.
    pub fn pin_cache(&mut self, prefix: &[Token]) -> Result<(), LlamaError> {
        let was_pinned = std::mem::replace(&mut self.pinned, !prefix.is_empty());
        if self.cached.as_slice() == prefix || (prefix.is_empty() && !was_pinned) {
            return Ok(());
        }
        let cache = self.slots as i32;
        self.remove(cache, 0)?;
        self.cached.clear();
        if !prefix.is_empty() {
            self.decode_run(cache, prefix, 0)?;
            self.cached = prefix.to_vec();
        }
        Ok(())
    }

    /// Puts `prompt` into `slot`'s stream (from the cache where it shares a prefix) and returns
    /// the batch index of the logits after its last token.
    fn start(&mut self, slot: usize, prompt: &[Token]) -> Result<usize, LlamaError> {
        let seq = slot as i32;
        let cache = self.slots as i32;
        self.remove(seq, 0)?;
        // Reuse the cached prefix, but always compute the last prompt token (its logits are needed).
        let shared = common_prefix(&self.cached, prompt).min(prompt.len() - 1);
        if shared > 0 {
            // A copy between streams copies the whole stream; drop what differs.
            self.ctx
                .copy_kv_cache_seq(cache, seq, None, None)
                .map_err(|e| LlamaError::Decode(e.to_string()))?;
            self.remove(seq, shared)?;
        }
        // Prompts are cut to fit the window, which is also the batch size: one decode call.
        let last = self.decode_run(seq, &prompt[shared..], shared)?;
        if !self.pinned && shared < prompt.len() - 1 && self.cached.as_slice() != prompt {
            // A new prompt: keep it for the next sequences (the copy happens before the next
            // decode writes anything).
            self.remove(cache, 0)?;
            self.ctx
                .copy_kv_cache_seq(seq, cache, None, None)
                .map_err(|e| LlamaError::Decode(e.to_string()))?;
            self.cached = prompt.to_vec();
        }
        Ok(last)
    }

    /// Decodes `prompt` in slot 0 and then `tokens` more single tokens (the prompt's last token
    /// again, at the next positions), as generation would, without sampling. For benchmarks.
    pub fn replay(&mut self, prompt: &[Token], tokens: usize) -> Result<usize, LlamaError> {
        let before = self.tokens_processed;
        self.start(0, prompt)?;
        let last = *prompt.last().expect("prompts have at least one token");
        for pos in prompt.len()..(prompt.len() + tokens).min(self.max_len) {
            self.decode_run(0, &[last], pos)?;
        }
        Ok((self.tokens_processed - before) as usize)
    }

    /// Chooses the next token of `seq` from `logits`; returns why it stopped, if it did.
    fn advance(
        &self,
        seq: &mut Running,
        logits: &[f32],
        request: &GenerationRequest,
    ) -> Option<StopReason> {
        let token = sampler::choose(logits, &request.sampling, &mut seq.rng) as Token;
        let vocab = self.model.vocab();
        if vocab.is_eog(LlamaToken(token)) {
            return Some(StopReason::EndOfGeneration);
        }
        seq.tokens += 1;
        seq.bytes
            .extend(vocab.token_to_piece(LlamaToken(token), false, None));
        seq.text = String::from_utf8_lossy(&seq.bytes).into_owned();
        if let Some(at) = sampler::find_stop(&seq.text, &request.until) {
            seq.text.truncate(at);
            return Some(StopReason::Until);
        }
        if seq.tokens >= request.max_gen_toks || seq.pos + 1 >= self.max_len {
            return Some(StopReason::MaxTokens);
        }
        seq.next = token;
        None
    }

    /// Removes positions `from..` of sequence `seq`.
    fn remove(&mut self, seq: i32, from: usize) -> Result<(), LlamaError> {
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), Some(from as u32), None)
            .map_err(|e| LlamaError::Decode(e.to_string()))?;
        Ok(())
    }

    /// Decodes `tokens` as positions `first..` of sequence `seq`, with logits at the last one;
    /// returns that token's batch index.
    fn decode_run(
        &mut self,
        seq: i32,
        tokens: &[Token],
        first: usize,
    ) -> Result<usize, LlamaError> {
        let last = tokens.len() - 1;
        self.batch.clear();
        for (i, &token) in tokens.iter().enumerate() {
            self.batch
                .add(LlamaToken(token), (first + i) as i32, &[seq], i == last)
                .map_err(|e| LlamaError::Decode(e.to_string()))?;
        }
        self.decode()?;
        Ok(last)
    }

    fn decode(&mut self) -> Result<(), LlamaError> {
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| LlamaError::Decode(e.to_string()))?;
        self.tokens_processed += self.batch.n_tokens() as u64;
        Ok(())
    }
}

fn finish(seq: Running, stop: StopReason, truncated: bool) -> Generation {
    Generation {
        text: seq.text,
        tokens: seq.tokens,
        stop,
        truncated,
    }
}

/// Length of the longest common prefix of `a` and `b`.
fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_counts_shared_leading_tokens() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4, 5]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[1, 2], &[1, 2]), 2);
    }
}
