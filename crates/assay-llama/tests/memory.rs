//! Memory of generation at the default window (the model's trained context, 32k tokens): a
//! test binary of its own, so that the process's peak resident memory is this test's alone.

use assay_backend::Backend;
use assay_dirs::default_model_path;
use assay_llama::{EngineSettings, LlamaEngine};

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn parallel_generation_holds_streams_sized_to_the_work_not_the_window() {
    let path = default_model_path();
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh first",
        path.display()
    );
    let mut engine = LlamaEngine::load(
        &path,
        &EngineSettings {
            parallel: 16,
            ..EngineSettings::default()
        },
    )
    .unwrap();
    let requests: Vec<_> = (0..16)
        .map(|i| assay_core::GenerationRequest {
            context: format!("Question: What is {i} + 1?\nAnswer:"),
            until: vec!["\n".into()],
            max_gen_toks: 8,
            sampling: assay_core::Sampling::greedy(),
            n: 1,
        })
        .collect();
    let answers = engine
        .generate_until_many(&requests, &mut |_, _| {})
        .unwrap();
    assert_eq!(answers.len(), 16);
    // 17 streams of the whole 32k window held 11.6 GB; streams of one micro-batch (512
    // tokens) leave the model, the scoring context and its KV cache: about 1.5 GB.
    let peak = peak_resident_bytes();
    assert!(peak < 4 << 30, "peak resident memory {peak} bytes");
}
