//! Generation: a document's prompt, its generation context sized to it, and the documents of a
//! batch generated one at a time or together (`--parallel`).

use super::*;

impl LlamaEngine {
    /// A fresh generation context for one document, `slots` streams of room for `tokens`
    /// tokens each (rounded up to whole 512-token micro-batches, at most the window), with its
    /// prompt cache pinned to the task prefix. Sized to the document: a stream copy copies the
    /// whole stream, and a window of the model's full trained context would be mostly empty.
    pub(super) fn document_generator(
        &mut self,
        slots: usize,
        tokens: usize,
    ) -> Result<&mut Generator, LlamaError> {
        if let Some(used) = self.generator.take() {
            self.tokens_processed += used.tokens_processed;
        }
        let len = self.stream_len(tokens.max(self.prefix.len()));
        self.generator(slots, len)?;
        let generator = self.generator.as_mut().expect("created above");
        generator.pin_cache(&self.prefix)?;
        Ok(generator)
    }

    /// A generation stream's length for `tokens` tokens: whole 512-token micro-batches (so the
    /// prompt splits as it always did), at most the window.
    pub(super) fn stream_len(&self, tokens: usize) -> usize {
        tokens
            .div_ceil(512)
            .saturating_mul(512)
            .min(self.limits.max_len)
    }

    /// The generation context, with room for at least `slots` sequences of `len` tokens at once.
    pub(super) fn generator(
        &mut self,
        slots: usize,
        len: usize,
    ) -> Result<&mut Generator, LlamaError> {
        if self
            .generator
            .as_ref()
            .is_none_or(|g| g.slots() < slots || g.max_len() < len)
        {
            // Drop the old context first: both would hold a KV cache.
            if let Some(old) = self.generator.take() {
                self.tokens_processed += old.tokens_processed;
            }
            self.generator = Some(Generator::new(
                self.model,
                slots,
                len,
                self.info.threads,
                self.lora.as_mut().map(|(a, info)| (&mut **a, &*info)),
            )?);
        }
        Ok(self.generator.as_mut().expect("created above"))
    }

    /// The prompt of a generation request: tokenised, cut from the left (as lm-eval does) to
    /// leave room for `max_gen_toks` in the window.
    pub(super) fn prompt(&self, request: &GenerationRequest) -> Result<Prompt, LlamaError> {
        if request.max_gen_toks == 0 {
            return Err(LlamaError::BadRequest(
                "max_gen_toks must be at least 1".into(),
            ));
        }
        if request.max_gen_toks >= self.limits.max_len {
            return Err(LlamaError::BadRequest(format!(
                "max_gen_toks {} leaves no room for the prompt in the context window of {}",
                request.max_gen_toks, self.limits.max_len
            )));
        }
        let mut tokens = self.tokenizer.tokenize(&request.context, true);
        if tokens.is_empty() {
            tokens.push(self.tokenizer.empty_context_token());
        }
        let budget = self.limits.max_len - request.max_gen_toks;
        let truncated = tokens.len() > budget;
        if truncated {
            tokens.drain(..tokens.len() - budget);
        }
        Ok(Prompt { tokens, truncated })
    }

    /// Generates for `requests`; with `parallel` 1 one document at a time, each reported to
    /// `done` as it finishes.
    pub(super) fn generate_documents(
        &mut self,
        requests: &[GenerationRequest],
        done: &mut GenerationSink<'_>,
    ) -> Result<Vec<Vec<Generation>>, LlamaError> {
        let prompts = requests
            .iter()
            .map(|r| self.prompt(r))
            .collect::<Result<Vec<_>, _>>()?;
        if self.info.parallel > 1 {
            // Streams as long as this batch's longest prompt and generation need (whole
            // micro-batches, at most the window): `--parallel 16` with 32k-token streams held
            // 11.6 GB for a 270M model.
            let need = requests
                .iter()
                .zip(&prompts)
                .map(|(r, p)| p.tokens.len() + r.max_gen_toks + 1)
                .max()
                .unwrap_or(1);
            let generator = self.generator(self.info.parallel, self.stream_len(need))?;
            generator.pin_cache(&[])?;
            let out = generator.generate(requests, &prompts, usize::MAX)?;
            for (i, samples) in out.iter().enumerate() {
                done(i, samples);
            }
            return Ok(out);
        }
        // One document at a time, each in a fresh generation context whose cache holds only the
        // task's shared prefix: its samples run together, and depend on that document (and the
        // prefix) alone. A context reused from the document before carries state that changes
        // near-tie tokens (found by the kill-and-resume test: a document computed after a cached
        // one differed from the same document computed after a generated one); a fresh context
        // costs the prefix's prefill, within noise beside generation (GSM8K: 50 s vs 53 s).
        let mut out = Vec::with_capacity(requests.len());
        for (request, prompt) in requests.iter().zip(prompts) {
            let slots = request.n.min(MAX_SAMPLE_SLOTS);
            let generator =
                self.document_generator(slots, prompt.tokens.len() + request.max_gen_toks + 1)?;
            let mut one = generator.generate(std::slice::from_ref(request), &[prompt], slots)?;
            let samples = one.pop().unwrap_or_default();
            done(out.len(), &samples);
            out.push(samples);
        }
        Ok(out)
    }
}
