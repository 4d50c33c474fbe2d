//! A backend that answers from the request text alone, for tests of what sits in front of a
//! backend (the request cache, the evaluation pipeline) without a model.

use assay_core::{
    Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, Primitive,
    RollingLoglikelihood, StopReason,
};

use crate::{Backend, BackendError, BackendInfo, GenerationSink, LoglikelihoodSink, RollingSink};

/// How a [`FakeBackend`] scores one log-likelihood request.
pub type ScoreFn = Box<dyn Fn(&LoglikelihoodRequest) -> Loglikelihood>;
/// How a [`FakeBackend`] answers one generation request (sample index given).
pub type GenerateFn = Box<dyn Fn(&GenerationRequest, usize) -> String>;

/// A deterministic backend: by default a continuation's log-probability is minus its length in
/// bytes, a rolling text's minus its length, and a generation is the prompt upper-cased. It
/// counts the requests it answered, remembers the shared prefixes announced to it, and can be
/// told to fail after a number of requests.
pub struct FakeBackend {
    info: BackendInfo,
    score: ScoreFn,
    generate: GenerateFn,
    /// Requests answered so far.
    pub asked: usize,
    /// Fail (with [`BackendError::BadRequest`]) when this many requests have been answered.
    pub fail_after: Option<usize>,
    /// Every shared prefix announced, in order.
    pub prefixes: Vec<Option<String>>,
}

impl Default for FakeBackend {
    fn default() -> FakeBackend {
        FakeBackend::new()
    }
}

impl FakeBackend {
    /// A fake backend with the default answers.
    pub fn new() -> FakeBackend {
        FakeBackend {
            info: BackendInfo {
                backend: "fake".into(),
                model_path: "fake-model".into(),
                model_name: "fake-model".into(),
                model_sha256: "0".into(),
                model_bytes: 0,
                n_params: 0,
                quantization: "none".into(),
                architecture: "none".into(),
                n_ctx_train: 0,
                ctx_size: 2048,
                threads: 1,
                parallel: 1,
                batch_size: 1,
                gpu_layers: 0,
                device: "cpu".into(),
                add_bos: false,
                special_tokens: Default::default(),
                endpoint: None,
                adapter: None,
            },
            score: Box::new(|r| Loglikelihood {
                logprob: -(r.continuation.len() as f64),
                is_greedy: false,
                continuation_tokens: 1,
                truncated: false,
            }),
            generate: Box::new(|r, _| r.context.to_uppercase()),
            asked: 0,
            fail_after: None,
            prefixes: Vec::new(),
        }
    }

    /// Scores log-likelihood requests with `score` instead.
    pub fn scoring(
        mut self,
        score: impl Fn(&LoglikelihoodRequest) -> Loglikelihood + 'static,
    ) -> Self {
        self.score = Box::new(score);
        self
    }

    /// Answers generation requests with `generate` (request, sample index) instead.
    pub fn generating(
        mut self,
        generate: impl Fn(&GenerationRequest, usize) -> String + 'static,
    ) -> Self {
        self.generate = Box::new(generate);
        self
    }

    fn ask(&mut self) -> Result<(), BackendError> {
        if self.fail_after == Some(self.asked) {
            return Err(BackendError::BadRequest("injected failure".into()));
        }
        self.asked += 1;
        Ok(())
    }
}

impl Backend for FakeBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    fn answer_scope(&self, _: Primitive) -> serde_json::Value {
        "fake".into()
    }

    fn loglikelihood_many(
        &mut self,
        docs: &[Vec<LoglikelihoodRequest>],
        done: &mut LoglikelihoodSink<'_>,
    ) -> Result<Vec<Vec<Loglikelihood>>, BackendError> {
        let mut out = Vec::new();
        for (d, doc) in docs.iter().enumerate() {
            let mut answers = Vec::new();
            for (r, request) in doc.iter().enumerate() {
                self.ask()?;
                let answer = (self.score)(request);
                done(d, &[(r, answer)]);
                answers.push(answer);
            }
            out.push(answers);
        }
        Ok(out)
    }

    fn loglikelihood_rolling_many(
        &mut self,
        texts: &[String],
        done: &mut RollingSink<'_>,
    ) -> Result<Vec<RollingLoglikelihood>, BackendError> {
        let mut out = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            self.ask()?;
            let answer = RollingLoglikelihood {
                logprob: -(text.len() as f64),
                tokens: text.len(),
                windows: 1,
            };
            done(i, &answer);
            out.push(answer);
        }
        Ok(out)
    }

    fn generate_until_many(
        &mut self,
        requests: &[GenerationRequest],
        done: &mut GenerationSink<'_>,
    ) -> Result<Vec<Vec<Generation>>, BackendError> {
        let mut out = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            self.ask()?;
            let samples: Vec<Generation> = (0..request.n.max(1))
                .map(|s| Generation {
                    text: (self.generate)(request, s),
                    tokens: 1,
                    stop: StopReason::MaxTokens,
                    truncated: false,
                })
                .collect();
            done(i, &samples);
            out.push(samples);
        }
        Ok(out)
    }

    fn set_shared_prefix(&mut self, prefix: Option<&str>) -> Result<(), BackendError> {
        self.prefixes.push(prefix.map(str::to_string));
        Ok(())
    }

    fn chat_template(&self) -> Option<String> {
        None
    }

    fn tokens_processed(&self) -> u64 {
        0
    }
}
