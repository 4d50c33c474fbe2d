//! Results and per-sample logs: the input (before the first NUL) as a results JSON, and (after
//! it) as a samples JSONL, recorded into a run registry, which reads both as `assay runs
//! import` does.
#![no_main]

use std::collections::BTreeMap;

use assay_records::{parse_results, NewRun, Registry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (results, samples) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(results).into_owned();
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) {
        let _ = parse_results(&doc, "fuzz");
    }
    let dir = tempfile::tempdir().unwrap();
    let samples_path = dir.path().join("samples_t.jsonl");
    std::fs::write(&samples_path, samples).unwrap();
    let mut registry = Registry::open(&dir.path().join("runs.sqlite")).unwrap();
    if let Ok(id) = registry.record(&NewRun {
        results_text: text,
        origin: "fuzz".into(),
        samples: vec![("t".into(), samples_path)],
        label: None,
        tags: Vec::new(),
        meta: BTreeMap::new(),
    }) {
        let _ = registry.samples(id, "t");
    }
});
