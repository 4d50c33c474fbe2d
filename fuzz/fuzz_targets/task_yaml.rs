//! Task files: a YAML task (first part of the input) over a JSONL dataset (after the first NUL
//! byte) is loaded, prepared, rendered into requests and scored against a made-up answer. Any
//! outcome but a panic, a hang or a runaway allocation is fine: bad files must give errors.
#![no_main]

use std::sync::LazyLock;

use assay_core::{Generation, Loglikelihood, RollingLoglikelihood, StopReason};
use assay_tasks::{Answers, DataDir, DocKind, PreparedTask, Registry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (yaml, docs) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(yaml);
    // Only the fuzzer's own files: no device, /proc or absolute paths (a task may name any
    // file, and /dev/zero never ends).
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") || text.contains(": /") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fuzz.yaml"), yaml).unwrap();
    std::fs::write(dir.path().join("d.jsonl"), docs).unwrap();
    // The built-in tasks are parsed once; each input adds its own file to a copy.
    static BUILTIN: LazyLock<Registry> = LazyLock::new(|| Registry::load(&[]).unwrap());
    let mut registry = BUILTIN.clone();
    if registry.include(dir.path()).is_err() {
        return;
    }
    let data_dir = DataDir(dir.path().to_path_buf());
    let names: Vec<String> = registry.task_names().map(str::to_string).collect();
    for name in names {
        let (spec, source) = registry.task(&name).unwrap();
        if !source.to_string().contains("fuzz.yaml") {
            continue;
        }
        let Ok(task) = PreparedTask::prepare(&name, spec, &data_dir, None) else {
            continue;
        };
        if task.runs_code() {
            continue;
        }
        let _ = task.shared_prefix();
        for doc in 0..task.docs.len().min(3) {
            let Ok(instance) = task.instance(doc) else {
                continue;
            };
            let answers = match &instance.kind {
                DocKind::Generate { .. } => Answers::Generations(vec![Generation {
                    text: String::from_utf8_lossy(docs).into_owned(),
                    tokens: 3,
                    stop: StopReason::Until,
                    truncated: false,
                }]),
                DocKind::Rolling { .. } => Answers::Rolling(RollingLoglikelihood {
                    logprob: -3.5,
                    tokens: 7,
                    windows: 1,
                }),
                _ => Answers::Loglikelihoods(
                    instance
                        .requests
                        .iter()
                        .enumerate()
                        .map(|(i, _)| Loglikelihood {
                            logprob: -(i as f64),
                            is_greedy: i == 0,
                            continuation_tokens: 2,
                            truncated: false,
                        })
                        .collect(),
                ),
            };
            // Scoring runs the filters too.
            let _ = task.score(&instance, &answers);
        }
    }
});
