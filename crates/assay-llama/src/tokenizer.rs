//! A GGUF model's tokenizer, as the embedded engine uses it and as the OpenAI-compatible backend
//! uses it to send token ids (`--tokenizer`), so both score exactly the same tokens. lm-eval's
//! split of (context, continuation) pairs comes with [`TextTokenizer`].

use std::path::Path;

use assay_backend::{TextTokenizer, Token};
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::runtime::llama_backend;
use crate::LlamaError;

/// The tokenizer of a GGUF model.
#[derive(Clone, Copy)]
pub struct Tokenizer {
    model: &'static LlamaModel,
    bos: Option<Token>,
}

impl Tokenizer {
    /// Loads only the vocabulary of the GGUF file at `path` (no weights).
    pub fn load(path: &Path) -> Result<Tokenizer, LlamaError> {
        assay_gguf::check_header(path)?;
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(llama_backend(), path, &params).map_err(|_| {
            LlamaError::LoadFailed {
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

    /// The text of one token as it appears in decoded text (special tokens are empty),
    /// lossily decoded.
    pub fn piece(&self, token: Token) -> String {
        String::from_utf8_lossy(&self.piece_bytes(token)).into_owned()
    }

    /// The bytes of `token`: part of a character for a byte-fallback token.
    pub fn piece_bytes(&self, token: Token) -> Vec<u8> {
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token), false, None)
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

impl TextTokenizer for Tokenizer {
    fn tokenize(&self, text: &str, with_bos: bool) -> Vec<Token> {
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

    fn bos(&self) -> Option<Token> {
        self.bos
    }

    fn empty_context_token(&self) -> Token {
        self.bos.unwrap_or_else(|| self.model.vocab().eos().0)
    }
}
