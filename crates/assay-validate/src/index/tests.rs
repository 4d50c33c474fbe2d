use super::*;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn record(
    model: &str,
    format: &str,
    chars: usize,
    tokens: u32,
    secs: f64,
    refusal: bool,
) -> String {
    serde_json::json!({"seed_id": "P01", "model": model, "role": "baseline", "format": format,
        "prompt": "p", "response": "r".repeat(chars), "reasoning": null, "chars": chars,
        "reasoning_chars": 0, "tokens": tokens, "gen_time": secs, "is_refusal": refusal})
    .to_string()
        + "\n"
}

#[test]
fn recognises_each_kind_and_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "data/baseline/base/naked.jsonl",
        &(record("base", "naked", 100, 10, 1.0, false)
            + &record("base", "naked", 300, 30, 2.0, true)),
    );
    write(
        root,
        "old-1b-unsigned.jsonl",
        "{\"seed_id\": \"P01\", \"prompt\": \"q\", \"response\": \"abcd\", \"gen_time\": 2.5}\n",
    );
    write(
        root,
        "benchmarks/arith-base.json",
        r#"{"label": "BASE", "accuracy": 50.0, "correct": 1, "total": 2, "avg_time": 0.4, "results": [{"question": "1+1", "gold": "2", "predicted": "2", "correct": true}, {"question": "2+2", "gold": "4", "predicted": "5", "correct": false}]}"#,
    );
    write(
        root,
        "benchmarks/summary.json",
        r#"{"arith": {"base": {"accuracy": 50.0}, "lem": {"accuracy": 0.0}}}"#,
    );
    write(
        root,
        "runs/m1/results_2026.json",
        r#"{"results": {"arc_easy": {"alias": "arc_easy", "sample_len": 40, "acc,none": 0.55, "acc_stderr,none": 0.035}}, "versions": {"arc_easy": 1.0}, "config": {"model_args": "pretrained=/models/m1.gguf"}}"#,
    );
    write(root, "runs/m1/samples_arc_easy_2026.jsonl", "{\"doc_id\": 0, \"doc\": {}, \"target\": 1, \"resps\": [], \"filtered_resps\": [], \"acc\": 1.0}\n");
    write(
        root,
        "logs/base.log",
        "loading\nP01: 13.9s, 1200 chars\nwarning: slow\n",
    );
    write(root, "broken.jsonl", "{\"a\": 1}\n{not json\n");
    write(root, "blob.bin", "\u{1}\u{2}");
    write(
        root,
        "ds/dataset_info.json",
        r#"{"features": {"id": {}, "input_ids": {}}, "splits": {"train": {"num_examples": 3}}}"#,
    );
    write(root, "ds/state.json", "{}");
    write(root, "ds/data-00000-of-00001.arrow", "x");
    let index = index_folder(root, "now".into()).unwrap();
    let by = |p: &str| {
        index
            .files
            .iter()
            .find(|f| f.path == p)
            .unwrap_or_else(|| panic!("{p}: {:?}", index.files))
    };
    let gen = by("data/baseline/base/naked.jsonl");
    assert_eq!(
        (
            gen.category,
            gen.entries,
            gen.model.as_deref(),
            gen.role.as_deref()
        ),
        (
            Category::PromptResponse,
            Some(2),
            Some("base"),
            Some("baseline")
        )
    );
    assert!(
        gen.description
            .contains("format naked, mean 200 chars, refusal rate 50.0%"),
        "{}",
        gen.description
    );
    let old = by("old-1b-unsigned.jsonl");
    assert_eq!(
        (old.model.as_deref(), old.model_source),
        (Some("old-1b"), Some("path"))
    );
    assert_eq!(old.format, "JSONL (seed_id, prompt, response, gen_time)");
    let bench = by("benchmarks/arith-base.json");
    assert_eq!(
        (bench.category, bench.entries, bench.model.as_deref()),
        (Category::Benchmark, Some(2), Some("BASE"))
    );
    assert!(
        bench.description.starts_with("accuracy 50% (1/2)"),
        "{}",
        bench.description
    );
    assert_eq!(by("benchmarks/summary.json").category, Category::Summary);
    let res = by("runs/m1/results_2026.json");
    assert_eq!(
        (res.category, res.model.as_deref()),
        (Category::LmEvalResults, Some("m1"))
    );
    assert_eq!(res.description, "arc_easy acc 0.550 ± 0.035");
    let samples = by("runs/m1/samples_arc_easy_2026.jsonl");
    assert_eq!(
        (samples.category, samples.description.as_str()),
        (
            Category::LmEvalSamples,
            "1 per-document records of task arc_easy"
        )
    );
    let log = by("logs/base.log");
    assert_eq!((log.category, log.entries), (Category::Logs, Some(3)));
    assert!(log.description.contains("1 with timings") && log.description.contains("1 warnings"));
    let broken = by("broken.jsonl");
    assert_eq!(broken.category, Category::Unreadable);
    assert!(
        broken
            .error
            .as_deref()
            .unwrap()
            .starts_with("broken.jsonl:2: not JSON"),
        "{:?}",
        broken.error
    );
    assert_eq!(by("blob.bin").category, Category::Unknown);
    let ds = by("ds");
    assert_eq!((ds.category, ds.entries), (Category::HfDataset, Some(3)));
    assert!(!index.files.iter().any(|f| f.path.starts_with("ds/")));
    // 30+10 tokens over 3 s; one of two flagged.
    let row = &index.format_comparison[0];
    assert_eq!(
        (row.model.as_str(), row.format.as_str(), row.responses),
        ("base", "naked", 2)
    );
    assert_eq!(
        (row.mean_chars, row.tokens_per_s, row.refusal_rate),
        (200.0, Some(40.0 / 3.0), Some(0.5))
    );
    let md = to_markdown(&index);
    assert!(
        md.contains("| base | naked | 2 | 200 | 0 | 13.3 | 50.0% |"),
        "{md}"
    );
    assert!(
        md.contains("- `broken.jsonl`: broken.jsonl:2: not JSON"),
        "{md}"
    );
    assert!(md.contains("| Unreadable | 1 | 0 |"), "{md}");
}
