//! The embedded engine on the real default model (fetched by scripts/setup.sh).

use assay_backend::Backend;
use assay_core::LoglikelihoodRequest;
use assay_dirs::default_model_path;
use assay_llama::{EngineSettings, LlamaEngine};

fn engine(threads: usize) -> LlamaEngine {
    engine_with(threads, 1)
}

/// An engine generating up to `parallel` sequences at once across documents.
fn engine_with(threads: usize, parallel: usize) -> LlamaEngine {
    let path = default_model_path();
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh first",
        path.display()
    );
    LlamaEngine::load(
        &path,
        &EngineSettings {
            threads,
            parallel,
            ..EngineSettings::default()
        },
    )
    .unwrap()
}

fn choices(context: &str, options: &[&str]) -> Vec<LoglikelihoodRequest> {
    options
        .iter()
        .map(|c| LoglikelihoodRequest {
            context: context.into(),
            continuation: format!(" {c}"),
        })
        .collect()
}

#[test]
fn scores_are_sane_and_prefer_the_obvious_answer() {
    let mut e = engine(2);
    let reqs = choices(
        "The capital of France is",
        &["Paris", "a banana sandwich with cheese"],
    );
    let out = e.loglikelihood(&reqs).unwrap();
    assert!(out.iter().all(|o| o.logprob < 0.0 && o.logprob.is_finite()));
    assert!(out[0].logprob > out[1].logprob, "{out:?}");
    assert_eq!(out[0].continuation_tokens, 1);
    assert!(!out[0].truncated);
    assert!(e.info().model_sha256.len() == 64);
    assert_eq!(e.info().quantization, "Q4_K_M");
}

#[test]
fn shared_prefix_matches_separate_scoring_closely() {
    let mut e = engine(2);
    let context = "Question: Which gas do plants absorb from the air?\nAnswer:";
    let options = ["carbon dioxide", "oxygen", "nitrogen", "helium"];
    let together = e.loglikelihood(&choices(context, &options)).unwrap();
    for (i, option) in options.iter().enumerate() {
        let alone = e.loglikelihood(&choices(context, &[option])).unwrap();
        let diff = (alone[0].logprob - together[i].logprob).abs();
        assert!(diff < 0.5, "{option}: {diff}");
    }
}

#[test]
fn a_documents_scores_do_not_depend_on_threads_or_history() {
    let docs = [
        choices(
            "Roof shingle removal: A man is sitting on a roof. He",
            &["is using wrap.", "starts pulling up roofing on a roof."],
        ),
        choices("1 + 1 =", &["2", "3", "eleven"]),
    ];
    let mut one = engine(1);
    let mut two = engine(2);
    let a: Vec<_> = docs.iter().map(|d| one.loglikelihood(d).unwrap()).collect();
    // Other order, other thread count, and after an unrelated document.
    two.loglikelihood(&choices("Something else entirely", &["x"]))
        .unwrap();
    let b1 = two.loglikelihood(&docs[1]).unwrap();
    let b0 = two.loglikelihood(&docs[0]).unwrap();
    for (x, y) in a[0].iter().zip(&b0).chain(a[1].iter().zip(&b1)) {
        assert_eq!(x.logprob.to_bits(), y.logprob.to_bits(), "{x:?} vs {y:?}");
    }
}

#[test]
fn rolling_scores_every_token_across_windows() {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(30);
    let mut small = LlamaEngine::load(
        &default_model_path(),
        &EngineSettings {
            ctx_size: Some(128),
            ..EngineSettings::default()
        },
    )
    .unwrap();
    let windowed = small.loglikelihood_rolling(&text).unwrap();
    let mut big = engine(2);
    let whole = big.loglikelihood_rolling(&text).unwrap();
    assert_eq!(windowed.tokens, whole.tokens);
    assert!(windowed.windows > 1 && whole.windows == 1);
    // Shorter windows see less context: the repeated text is less predictable, but close.
    assert!(windowed.logprob < 0.0 && whole.logprob < 0.0);
    assert!((windowed.logprob - whole.logprob).abs() / whole.logprob.abs() < 0.5);
}

fn generation(
    context: &str,
    until: &[&str],
    max: usize,
    sampling: assay_core::Sampling,
    n: usize,
) -> assay_core::GenerationRequest {
    assay_core::GenerationRequest {
        context: context.into(),
        until: until.iter().map(|s| s.to_string()).collect(),
        max_gen_toks: max,
        sampling,
        n,
    }
}

#[test]
fn greedy_generation_stops_at_stop_strings_and_reproduces() {
    let mut e = engine(2);
    let req = generation(
        "Question: What is 2 + 3?\nAnswer:",
        &["\n", "Question:"],
        32,
        assay_core::Sampling::greedy(),
        1,
    );
    let a = e.generate_until(&req).unwrap();
    assert_eq!(a.len(), 1);
    assert!(!a[0].text.contains('\n'), "{:?}", a[0]);
    assert!(a[0].tokens >= 1 && a[0].tokens <= 32);
    let mut other = engine(1);
    other
        .loglikelihood(&choices("warm up on something else", &["x"]))
        .unwrap();
    let b = other.generate_until(&req).unwrap();
    assert_eq!(a, b);
    let capped = e
        .generate_until(&generation(
            "Count: 1, 2, 3,",
            &[],
            5,
            assay_core::Sampling::greedy(),
            1,
        ))
        .unwrap();
    assert_eq!(capped[0].tokens, 5);
    assert_eq!(capped[0].stop, assay_core::StopReason::MaxTokens);
}

#[test]
fn sampled_generation_is_seeded_per_sample() {
    let mut e = engine(2);
    let sampling = assay_core::Sampling {
        temperature: 1.0,
        top_p: 0.95,
        top_k: 0,
        seed: 42,
    };
    let req = generation("Once upon a time", &["."], 12, sampling, 4);
    let a = e.generate_until(&req).unwrap();
    assert_eq!(a.len(), 4);
    let distinct: std::collections::BTreeSet<_> = a.iter().map(|g| g.text.clone()).collect();
    assert!(distinct.len() > 1, "{a:?}");
    assert_eq!(a, e.generate_until(&req).unwrap());
    // This GGUF carries no chat template (assay falls back to its built-in one).
    assert!(e.chat_template().is_none());
}

#[test]
fn batched_generation_answers_every_document_in_order_and_reproduces() {
    let prompts = [
        "Question: What is 2 + 3?\nAnswer:",
        "The capital of France is",
        "Count: 1, 2, 3,",
        "Once upon a time",
        "Question: Name a colour.\nAnswer:",
    ];
    let requests: Vec<_> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            // Different lengths, so that slots free up at different steps and are refilled.
            generation(p, &["\n"], 4 + 3 * i, assay_core::Sampling::greedy(), 1)
        })
        .collect();
    let mut batched = engine_with(2, 3);
    assert_eq!(batched.batch_documents(true), 6);
    let a = batched
        .generate_until_many(&requests, &mut |_, _| {})
        .unwrap();
    assert_eq!(a.len(), requests.len());
    for (gens, req) in a.iter().zip(&requests) {
        assert_eq!(gens.len(), 1);
        assert!(
            gens[0].tokens >= 1 && gens[0].tokens <= req.max_gen_toks,
            "{gens:?}"
        );
        assert!(!gens[0].text.contains('\n'));
    }
    // The same run in a fresh engine gives the same texts.
    let mut again = engine_with(2, 3);
    assert_eq!(
        a,
        again
            .generate_until_many(&requests, &mut |_, _| {})
            .unwrap()
    );
    // One document at a time: each document's samples are those of the document alone.
    let mut single = engine(2);
    assert_eq!(single.batch_documents(true), 1);
    let one_by_one: Vec<_> = requests
        .iter()
        .map(|r| single.generate_until(r).unwrap())
        .collect();
    assert_eq!(
        single
            .generate_until_many(&requests, &mut |_, _| {})
            .unwrap(),
        one_by_one
    );
}

#[test]
fn a_task_prefix_is_reused_without_changing_the_answers() {
    let prefix = "The following are questions about arithmetic and geography.\n\n\
                  Question: 2 + 2 =\nAnswer: 4\n\nQuestion: The capital of Italy is\nAnswer: Rome\n\n";
    let docs = [
        choices(
            &format!("{prefix}Question: 1 + 1 =\nAnswer:"),
            &["2", "3", "eleven"],
        ),
        choices(
            &format!("{prefix}Question: The capital of France is\nAnswer:"),
            &["Paris", "Berlin"],
        ),
        // Does not start with the prefix: scored as without one.
        choices("Something else entirely:", &["x", "y"]),
    ];
    let mut plain = engine(2);
    let alone: Vec<_> = docs
        .iter()
        .map(|d| plain.loglikelihood(d).unwrap())
        .collect();
    let mut shared = engine(2);
    shared.set_shared_prefix(Some(prefix)).unwrap();
    let first: Vec<_> = docs
        .iter()
        .map(|d| shared.loglikelihood(d).unwrap())
        .collect();
    let tokens_before = shared.tokens_processed();
    // The prefix is not computed again; a document's scores do not depend on what came before.
    let again = shared.loglikelihood(&docs[1]).unwrap();
    assert!(shared.tokens_processed() - tokens_before < 20);
    for (x, y) in first[1].iter().zip(&again) {
        assert_eq!(x.logprob.to_bits(), y.logprob.to_bits());
    }
    for (a, b) in alone.iter().zip(&first) {
        let best = |v: &Vec<assay_core::Loglikelihood>| {
            (0..v.len())
                .max_by(|&i, &j| v[i].logprob.total_cmp(&v[j].logprob))
                .unwrap()
        };
        assert_eq!(best(a), best(b));
        for (x, y) in a.iter().zip(b) {
            assert!((x.logprob - y.logprob).abs() < 0.3, "{x:?} vs {y:?}");
        }
    }
    // A prefix too short to keep changes nothing.
    shared.set_shared_prefix(Some("Q")).unwrap();
    let short = shared.loglikelihood(&docs[0]).unwrap();
    for (x, y) in alone[0].iter().zip(&short) {
        assert_eq!(x.logprob.to_bits(), y.logprob.to_bits());
    }
}

#[test]
fn documents_batched_into_one_decode_score_as_they_do_alone_within_the_kernels_rounding() {
    let long_context = "The committee met again to discuss the budget. ".repeat(60);
    let docs = vec![
        choices(
            "Roof shingle removal: A man is sitting on a roof. He",
            &[
                "is using wrap to wrap a pair of skis.",
                "starts pulling up roofing on a roof.",
            ],
        ),
        choices("1 + 1 =", &["2", "3", "eleven"]),
        // Cut to the 512-token window, one round per choice: runs alone, between batched ones.
        choices(
            &long_context,
            &["It agreed.", "It did not agree.", "Nobody came."],
        ),
        choices("The capital of France is", &["Paris", "Berlin", "a banana"]),
        choices(
            "Water boils at",
            &["100 degrees Celsius", "10 degrees Celsius"],
        ),
    ];
    let load = |batch_size: usize| {
        LlamaEngine::load(
            &default_model_path(),
            &EngineSettings {
                threads: 2,
                ctx_size: Some(512),
                batch_size,
                ..EngineSettings::default()
            },
        )
        .unwrap()
    };
    let mut alone = load(1);
    let expected: Vec<_> = docs
        .iter()
        .map(|d| alone.loglikelihood(d).unwrap())
        .collect();
    let mut batched = load(3);
    let mut reported = Vec::new();
    let got = batched
        .loglikelihood_many(&docs, &mut |doc, answers| {
            reported.push((doc, answers.len()))
        })
        .unwrap();
    assert_eq!(
        reported,
        docs.iter().map(Vec::len).enumerate().collect::<Vec<_>>(),
        "every document reported whole, in order"
    );
    let best = |v: &[assay_core::Loglikelihood]| {
        (0..v.len())
            .max_by(|&i, &j| v[i].logprob.total_cmp(&v[j].logprob))
            .unwrap()
    };
    for (a, b) in expected.iter().zip(&got) {
        assert_eq!(a.len(), b.len());
        assert_eq!(best(a), best(b), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            // The Q4_K kernels round differently for other batch shapes (DESIGN: batching).
            assert!((x.logprob - y.logprob).abs() < 0.5, "{x:?} vs {y:?}");
            assert_eq!(x.continuation_tokens, y.continuation_tokens);
            assert_eq!(x.truncated, y.truncated);
        }
    }
    // The document that ran alone is exactly as without batching.
    assert!(expected[2].iter().all(|x| x.truncated));
    for (x, y) in expected[2].iter().zip(&got[2]) {
        assert_eq!(x.logprob.to_bits(), y.logprob.to_bits());
    }
    // The same batches give the same scores.
    let again = batched.loglikelihood_many(&docs, &mut |_, _| {}).unwrap();
    for (a, b) in got.iter().zip(&again) {
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.logprob.to_bits(), y.logprob.to_bits());
        }
    }
    assert_eq!(batched.batch_documents(false), 3);
    assert_eq!(batched.batch_documents(true), 1);
}
