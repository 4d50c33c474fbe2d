//! A GGUF model's tokenizer, as the embedded engine uses it and as the OpenAI-compatible backend
//! uses it to send token ids (`--tokenizer`), so both score exactly the same tokens.

use std::path::Path;

use assay_core::LoglikelihoodRequest;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::llama::llama_backend;
use crate::plan::{Token, TokenizedRequest};
use crate::{gguf, EngineError};

/// The tokenizer of a GGUF model.
#[derive(Clone, Copy)]
pub struct Tokenizer {
    model: &'static LlamaModel,
    bos: Option<Token>,
}

impl Tokenizer {
    /// Loads only the vocabulary of the GGUF file at `path` (no weights).
    pub fn load(path: &Path) -> Result<Tokenizer, EngineError> {
        gguf::check_header(path)?;
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(llama_backend(), path, &params).map_err(|_| {
            EngineError::LoadFailed {
                path: path.to_path_buf(),
            }
        })?;
        Ok(Tokenizer::of(Box::leak(Box::new(model))))
    }

    /// The tokenizer of a loaded model.
    pub(crate) fn of(model: &'static LlamaModel) -> Tokenizer {
        let vocab = model.vocab();
        Tokenizer {
            model,
            bos: vocab.should_add_bos().then(|| vocab.bos().0),
        }
    }

    /// The BOS token prepended to every context, if the model wants one.
    pub fn bos(&self) -> Option<Token> {
        self.bos
    }

    /// The token an empty context is conditioned on (BOS, else end of text), as lm-eval does.
    pub fn empty_context_token(&self) -> Token {
        self.bos.unwrap_or_else(|| self.model.vocab().eos().0)
    }

    /// Tokenises `text` as the model's tokenizer does; `with_bos` prepends BOS when the model
    /// wants one.
    ///
    /// Special-token text (such as a chat template's `<start_of_turn>`) becomes the special token,
    /// as Hugging Face tokenizers do; a text that already starts with BOS gets no second one.
    pub fn tokenize(&self, text: &str, with_bos: bool) -> Vec<Token> {
        let vocab = self.model.vocab();
        let mut tokens: Vec<Token> = vocab
            .tokenize(text.as_bytes(), with_bos, true)
            .into_iter()
            .map(|t| t.0)
            .collect();
        if let Some(bos) = self.bos {
            if with_bos && tokens.len() > 1 && tokens[0] == bos && tokens[1] == bos {
                tokens.remove(0);
            }
        }
        tokens
    }

    /// lm-eval's split of each (context, continuation) pair into tokens: trailing spaces of the
    /// context move to the continuation, the continuation's tokens are those of the whole text
    /// after the context's. A context shared by consecutive requests (a multiple-choice
    /// document's) is tokenised once, and long lists are split over the machine's cores.
    pub fn encode_pairs(&self, requests: &[&LoglikelihoodRequest]) -> Vec<TokenizedRequest> {
        const PER_THREAD: usize = 64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.min(requests.len().div_ceil(PER_THREAD)).max(1);
        if threads == 1 {
            return self.encode_run(requests);
        }
        let chunk = requests.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = requests
                .chunks(chunk)
                .map(|part| scope.spawn(move || self.encode_run(part)))
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().expect("tokenising never panics"))
                .collect()
        })
    }

    /// Encodes requests in order, reusing the previous request's context tokens when the
    /// context is the same.
    fn encode_run(&self, requests: &[&LoglikelihoodRequest]) -> Vec<TokenizedRequest> {
        let mut last: Option<(&str, Vec<Token>)> = None;
        requests
            .iter()
            .map(|request| {
                let trimmed = request.context.trim_end_matches(' ');
                let context = match &last {
                    Some((text, tokens)) if *text == trimmed => tokens.clone(),
                    _ => {
                        let tokens = self.encode_context(trimmed);
                        last = Some((trimmed, tokens.clone()));
                        tokens
                    }
                };
                self.complete_pair(request, context)
            })
            .collect()
    }

    /// The tokens of a context without its trailing spaces (BOS first when the model wants
    /// it); an empty context conditions on [`Tokenizer::empty_context_token`], as lm-eval's
    /// end-of-text token.
    fn encode_context(&self, trimmed: &str) -> Vec<Token> {
        let mut context = self.tokenize(trimmed, true);
        if context.is_empty() {
            context.push(self.empty_context_token());
        }
        context
    }

    /// The pair given its context's tokens: the continuation's tokens are those of the whole
    /// text after the context's.
    fn complete_pair(
        &self,
        request: &LoglikelihoodRequest,
        context: Vec<Token>,
    ) -> TokenizedRequest {
        let trimmed = request.context.trim_end_matches(' ');
        let moved = &request.context[trimmed.len()..];
        let whole = self.tokenize(&format!("{trimmed}{moved}{}", request.continuation), true);
        let continuation = whole.get(context.len()..).unwrap_or_default().to_vec();
        TokenizedRequest {
            context,
            continuation,
        }
    }

    /// The text of one token as it appears in decoded text (special tokens are empty),
    /// lossily decoded.
    pub fn piece(&self, token: Token) -> String {
        let bytes = self
            .model
            .vocab()
            .token_to_piece(LlamaToken(token), false, None);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether `token` ends generation (end of sequence or of turn).
    pub fn is_end_of_generation(&self, token: Token) -> bool {
        self.model.vocab().is_eog(LlamaToken(token))
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.model.vocab().n_tokens() as usize
    }
}
