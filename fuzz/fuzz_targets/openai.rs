//! The served-model client's reply parsers: the input as the body of a completions, chat,
//! log-probability or model-list reply, and as an error body.
#![no_main]

use assay_openai::protocol::{error_message, model_ids, parse_completion, parse_logprobs, Span};
use assay_openai::Api;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let until = ["\n\n".to_string(), "Question:".to_string()];
    let _ = parse_completion(data, Api::Completions, &until);
    let _ = parse_completion(data, Api::Chat, &until);
    let _ = parse_logprobs(data, &Span::Chars { from: 3, to: 9 });
    let _ = parse_logprobs(
        data,
        &Span::Tokens {
            from: 2,
            prompt: vec![1, 2, 3, 4],
        },
    );
    let _ = error_message(data);
    let _ = model_ids(data);
});
