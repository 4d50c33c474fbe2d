//! The tokenizer seam: what a backend (or a client that sends token ids) needs from a
//! tokenizer, and lm-eval's split of (context, continuation) pairs into tokens on top of it.

use assay_core::LoglikelihoodRequest;

use crate::plan::{Token, TokenizedRequest};

/// A model's tokenizer, as the planner and lm-eval's pair split use it.
pub trait TextTokenizer: Sync {
    /// Tokenises `text` as the model's tokenizer does; `with_bos` prepends BOS when the model
    /// wants one (and a text that already starts with BOS gets no second one).
    fn tokenize(&self, text: &str, with_bos: bool) -> Vec<Token>;

    /// The BOS token prepended to every context, if the model wants one.
    fn bos(&self) -> Option<Token>;

    /// The token an empty context is conditioned on (BOS, else end of text), as lm-eval does.
    fn empty_context_token(&self) -> Token;

    /// lm-eval's split of each (context, continuation) pair into tokens: trailing spaces of the
    /// context move to the continuation, the continuation's tokens are those of the whole text
    /// after the context's. A context shared by consecutive requests (a multiple-choice
    /// document's) is tokenised once, and long lists are split over the machine's cores.
    fn encode_pairs(&self, requests: &[&LoglikelihoodRequest]) -> Vec<TokenizedRequest> {
        const PER_THREAD: usize = 64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.min(requests.len().div_ceil(PER_THREAD)).max(1);
        if threads == 1 {
            return encode_run(self, requests);
        }
        let chunk = requests.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = requests
                .chunks(chunk)
                .map(|part| scope.spawn(move || encode_run(self, part)))
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().expect("tokenising never panics"))
                .collect()
        })
    }
}

/// Encodes requests in order, reusing the previous request's context tokens when the context
/// is the same.
fn encode_run<T: TextTokenizer + ?Sized>(
    tokenizer: &T,
    requests: &[&LoglikelihoodRequest],
) -> Vec<TokenizedRequest> {
    let mut last: Option<(&str, Vec<Token>)> = None;
    requests
        .iter()
        .map(|request| {
            let trimmed = request.context.trim_end_matches(' ');
            let context = match &last {
                Some((text, tokens)) if *text == trimmed => tokens.clone(),
                _ => {
                    let tokens = encode_context(tokenizer, trimmed);
                    last = Some((trimmed, tokens.clone()));
                    tokens
                }
            };
            complete_pair(tokenizer, request, context)
        })
        .collect()
}

/// The tokens of a context without its trailing spaces (BOS first when the model wants it);
/// an empty context conditions on [`TextTokenizer::empty_context_token`], as lm-eval's
/// end-of-text token.
fn encode_context<T: TextTokenizer + ?Sized>(tokenizer: &T, trimmed: &str) -> Vec<Token> {
    let mut context = tokenizer.tokenize(trimmed, true);
    if context.is_empty() {
        context.push(tokenizer.empty_context_token());
    }
    context
}

/// The pair given its context's tokens: the continuation's tokens are those of the whole text
/// after the context's.
fn complete_pair<T: TextTokenizer + ?Sized>(
    tokenizer: &T,
    request: &LoglikelihoodRequest,
    context: Vec<Token>,
) -> TokenizedRequest {
    let trimmed = request.context.trim_end_matches(' ');
    let moved = &request.context[trimmed.len()..];
    let whole = tokenizer.tokenize(&format!("{trimmed}{moved}{}", request.continuation), true);
    let continuation = whole.get(context.len()..).unwrap_or_default().to_vec();
    TokenizedRequest {
        context,
        continuation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per byte, BOS 1 first, end of text 2.
    struct Bytes;

    impl TextTokenizer for Bytes {
        fn tokenize(&self, text: &str, with_bos: bool) -> Vec<Token> {
            let bos = with_bos.then_some(1);
            bos.into_iter()
                .chain(text.bytes().map(|b| 10 + Token::from(b)))
                .collect()
        }
        fn bos(&self) -> Option<Token> {
            Some(1)
        }
        fn empty_context_token(&self) -> Token {
            1
        }
    }

    fn pair(context: &str, continuation: &str) -> LoglikelihoodRequest {
        LoglikelihoodRequest {
            context: context.into(),
            continuation: continuation.into(),
        }
    }

    #[test]
    fn trailing_spaces_of_the_context_move_to_the_continuation() {
        let requests = [pair("ab ", "c"), pair("ab ", "dd"), pair("", "x")];
        let refs: Vec<&LoglikelihoodRequest> = requests.iter().collect();
        let out = Bytes.encode_pairs(&refs);
        let t = |s: &str| s.bytes().map(|b| 10 + Token::from(b)).collect::<Vec<_>>();
        assert_eq!(out[0].context, [vec![1], t("ab")].concat());
        assert_eq!(out[0].continuation, t(" c"));
        assert_eq!(out[1].continuation, t(" dd"));
        // An empty context conditions on BOS alone.
        assert_eq!(out[2].context, vec![1]);
        assert_eq!(out[2].continuation, t("x"));
    }

    #[test]
    fn long_lists_split_over_threads_keep_their_order() {
        let requests: Vec<LoglikelihoodRequest> =
            (0..300).map(|i| pair(&format!("q{i}"), " a")).collect();
        let refs: Vec<&LoglikelihoodRequest> = requests.iter().collect();
        let out = Bytes.encode_pairs(&refs);
        assert_eq!(out.len(), 300);
        for (i, r) in out.iter().enumerate() {
            assert_eq!(r.context, Bytes.tokenize(&format!("q{i}"), true));
        }
    }
}
