//! The evaluation pipeline with a fake backend (no model): aggregation with standard errors,
//! groups, filters, few-shot prompts, limits, the shared prefix, per-sample logs and resuming an
//! interrupted run through the request cache.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use assay_backend::fake::FakeBackend;
use assay_backend::Backend;
use assay_core::Loglikelihood;
use assay_eval::{evaluate, prepare_tasks, EvalOptions, Limit, MetricResult, Outcome, Progress};
use assay_request_cache::{CachedBackend, RequestCache};
use assay_tasks::{DataDir, Metric, MetricKind, PreparedTask, Registry};

/// Progress that goes nowhere.
struct Quiet;

impl Progress for Quiet {
    fn task_started(&mut self, _: &str, _: usize) {}
    fn doc_done(&mut self) {}
    fn tokens(&mut self, _: u64) {}
}

/// A folder with two multiple-choice tasks (4 and 2 documents) in a size-weighted group, and a
/// generation task with a regex filter.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    // The fake backend scores " right" above " wrong": the gold choice wins in docs 0-2 of
    // `quiz_a` and doc 0 of `quiz_b`.
    write(
        "a.jsonl",
        concat!(
            "{\"q\": \"A1\", \"c\": [\"wrong\", \"right\"], \"g\": 1}\n",
            "{\"q\": \"A2\", \"c\": [\"right\", \"wrong\"], \"g\": 0}\n",
            "{\"q\": \"A3\", \"c\": [\"wrong\", \"right\"], \"g\": 1}\n",
            "{\"q\": \"A4\", \"c\": [\"wrong\", \"right\"], \"g\": 0}\n",
        ),
    );
    write(
        "b.jsonl",
        concat!(
            "{\"q\": \"B1\", \"c\": [\"right\", \"wrong\"], \"g\": 0}\n",
            "{\"q\": \"B2\", \"c\": [\"right\", \"wrong\"], \"g\": 1}\n",
        ),
    );
    write(
        "g.jsonl",
        concat!(
            "{\"q\": \"2+2\", \"a\": \"4\"}\n",
            "{\"q\": \"3+3\", \"a\": \"6\"}\n",
            "{\"q\": \"1+1\", \"a\": \"2\"}\n",
        ),
    );
    let mc = |task: &str, file: &str| {
        format!(
            "task: {task}\ndataset_path: {file}\ntest_split: test\noutput_type: multiple_choice\n\
             doc_to_text: \"Q: {{{{q}}}}\\nA:\"\ndoc_to_target: g\ndoc_to_choice: c\n\
             description: \"A quiz with some questions.\\n\\n\"\nmetadata:\n  version: 1.0\n"
        )
    };
    write("quiz_a.yaml", &mc("quiz_a", "a.jsonl"));
    write("quiz_b.yaml", &mc("quiz_b", "b.jsonl"));
    write(
        "_quiz.yaml",
        "group: quiz\ntask:\n  - quiz_a\n  - quiz_b\naggregate_metric_list:\n  - metric: acc\n    weight_by_size: true\nmetadata:\n  version: 1.0\n",
    );
    write(
        "sums.yaml",
        concat!(
            "task: sums\ndataset_path: g.jsonl\ntest_split: test\noutput_type: generate_until\n",
            "doc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: a\n",
            "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 8\n",
            "filter_list:\n  - name: strict\n    filter:\n      - function: regex\n",
            "        regex_pattern: \"#### (\\\\d+)\"\n      - function: take_first\n",
            "metadata:\n  version: 1.0\n",
        ),
    );
    dir
}

/// The fake backend's scores: -1 for a continuation containing "right", else -5.
fn prefers_right() -> FakeBackend {
    FakeBackend::new().scoring(|r| Loglikelihood {
        logprob: if r.continuation.contains("right") {
            -1.0
        } else {
            -5.0
        },
        is_greedy: false,
        continuation_tokens: 1,
        truncated: false,
    })
}

/// The tasks (and groups) `names` resolve to in `dir`.
fn prepare(
    dir: &Path,
    names: &[&str],
    num_fewshot: Option<usize>,
) -> (Vec<PreparedTask>, Vec<assay_tasks::GroupNode>) {
    let registry = Registry::load(&[dir.to_path_buf()]).unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let selection = registry.resolve(&names).unwrap();
    let data = DataDir(dir.to_path_buf());
    let tasks = prepare_tasks(&selection, &data, num_fewshot, None, &[]).unwrap();
    (tasks, selection.groups)
}

fn run(
    backend: &mut dyn Backend,
    dir: &Path,
    names: &[&str],
    options: &EvalOptions,
) -> Result<Outcome, assay_eval::EvalError> {
    let (tasks, groups) = prepare(dir, names, None);
    evaluate(backend, &tasks, &groups, options, &mut Quiet)
}

fn metric<'a>(metrics: &'a [MetricResult], kind: MetricKind, filter: &str) -> &'a MetricResult {
    metrics
        .iter()
        .find(|m| m.metric == kind && m.filter == filter)
        .unwrap_or_else(|| panic!("no {kind:?}/{filter} in {metrics:?}"))
}

#[test]
fn task_metrics_aggregate_with_standard_errors() {
    let dir = fixture();
    let mut backend = prefers_right();
    let out = run(
        &mut backend,
        dir.path(),
        &["quiz_a"],
        &EvalOptions::default(),
    )
    .unwrap();
    let task = &out.tasks[0];
    assert_eq!((task.n_original, task.n_effective), (4, 4));
    // acc: [1, 1, 1, 0]; sample variance 0.25, so the standard error is sqrt(0.25 / 4).
    let acc = metric(&task.metrics, MetricKind::Acc, "none");
    assert_eq!(acc.value, 0.75);
    assert!((acc.stderr.unwrap() - 0.25).abs() < 1e-12);
    assert_eq!(
        metric(&task.metrics, MetricKind::AccNorm, "none").value,
        0.75
    );
    assert_eq!(task.requests, 8, "one request per choice");
    assert_eq!(backend.asked, 8);
}

#[test]
fn groups_weight_their_members_by_size() {
    let dir = fixture();
    let mut backend = prefers_right();
    let out = run(&mut backend, dir.path(), &["quiz"], &EvalOptions::default()).unwrap();
    let names: Vec<&str> = out.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["quiz_a", "quiz_b"]);
    assert_eq!(
        metric(&out.tasks[1].metrics, MetricKind::Acc, "none").value,
        0.5
    );
    let group = &out.groups[0];
    assert_eq!((group.name.as_str(), group.size), ("quiz", 6));
    // (3 + 1) right out of 6 documents.
    let acc = metric(&group.metrics, MetricKind::Acc, "none");
    assert!((acc.value - 4.0 / 6.0).abs() < 1e-12);
}

#[test]
fn limits_take_the_first_documents() {
    let dir = fixture();
    for (limit, docs) in [
        (Limit::Count(2), 2),
        (Limit::Fraction(0.5), 2),
        (Limit::Count(9), 4),
    ] {
        let mut backend = prefers_right();
        let options = EvalOptions {
            limit: Some(limit),
            ..EvalOptions::default()
        };
        let out = run(&mut backend, dir.path(), &["quiz_a"], &options).unwrap();
        assert_eq!(out.tasks[0].n_effective, docs, "{limit:?}");
        assert_eq!(backend.asked, 2 * docs, "{limit:?}");
        // The first two documents are both right.
        if docs == 2 {
            assert_eq!(
                metric(&out.tasks[0].metrics, MetricKind::Acc, "none").value,
                1.0
            );
        }
    }
}

#[test]
fn few_shot_examples_and_the_shared_prefix_reach_the_backend() {
    let dir = fixture();
    let contexts = Rc::new(RefCell::new(Vec::new()));
    let seen = contexts.clone();
    let mut backend = prefers_right().scoring(move |r| {
        seen.borrow_mut().push(r.context.clone());
        Loglikelihood {
            logprob: -1.0,
            is_greedy: false,
            continuation_tokens: 1,
            truncated: false,
        }
    });
    let (tasks, groups) = prepare(dir.path(), &["quiz_a"], Some(1));
    evaluate(
        &mut backend,
        &tasks,
        &groups,
        &EvalOptions::default(),
        &mut Quiet,
    )
    .unwrap();
    let contexts = contexts.borrow();
    assert_eq!(contexts.len(), 8);
    for (doc, pair) in contexts.chunks(2).enumerate() {
        // Both choices of a document share its prompt: the description, one example (another
        // document with its gold answer), then the question.
        assert_eq!(pair[0], pair[1]);
        assert!(
            pair[0].starts_with("A quiz with some questions.\n\nQ: A"),
            "{}",
            pair[0]
        );
        assert!(
            pair[0].ends_with(&format!("Q: A{}\nA:", doc + 1)),
            "{}",
            pair[0]
        );
        assert_eq!(pair[0].matches("Q: ").count(), 2, "{}", pair[0]);
        assert!(!pair[0].starts_with(&format!("A quiz with some questions.\n\nQ: A{}\n", doc + 1)));
    }
    // The task's shared start was announced before its documents.
    assert_eq!(backend.prefixes.len(), 1);
    assert!(backend.prefixes[0]
        .as_deref()
        .is_some_and(|p| p.starts_with("A quiz with some questions.")));
}

#[test]
fn generation_answers_go_through_the_task_filters() {
    let dir = fixture();
    // The "model" answers 4 to every question, with the answer after ####.
    let mut backend = FakeBackend::new().generating(|_, _| " I think.\n#### 4".into());
    let out = run(&mut backend, dir.path(), &["sums"], &EvalOptions::default()).unwrap();
    let task = &out.tasks[0];
    assert_eq!(
        task.keys,
        [(Metric::from(MetricKind::ExactMatch), "strict".to_string())]
    );
    let em = metric(&task.metrics, MetricKind::ExactMatch, "strict");
    assert!((em.value - 1.0 / 3.0).abs() < 1e-12);
    // Without the marker the regex finds nothing: no document matches.
    let mut backend = FakeBackend::new().generating(|_, _| " 4".into());
    let out = run(&mut backend, dir.path(), &["sums"], &EvalOptions::default()).unwrap();
    assert_eq!(
        metric(&out.tasks[0].metrics, MetricKind::ExactMatch, "strict").value,
        0.0
    );
}

#[test]
fn per_sample_logs_hold_every_document() {
    let dir = fixture();
    let logs = tempfile::tempdir().unwrap();
    let options = EvalOptions {
        samples: Some((logs.path().to_path_buf(), "stamp".into())),
        ..EvalOptions::default()
    };
    let mut backend = prefers_right();
    let out = run(&mut backend, dir.path(), &["quiz_a"], &options).unwrap();
    let path = out.tasks[0].samples_path.clone().unwrap();
    assert_eq!(path, logs.path().join("samples_quiz_a_stamp.jsonl"));
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let accs: Vec<f64> = lines.iter().map(|l| l["acc"].as_f64().unwrap()).collect();
    assert_eq!(accs, [1.0, 1.0, 1.0, 0.0]);
    assert_eq!(lines[3]["doc_id"], 3);
}

#[test]
fn an_interrupted_run_resumes_from_the_request_cache() {
    let dir = fixture();
    let cache = tempfile::tempdir().unwrap();
    let path = cache.path().join("requests.sqlite");
    let uninterrupted = run(
        &mut prefers_right(),
        dir.path(),
        &["quiz"],
        &EvalOptions::default(),
    )
    .unwrap();

    // The backend fails after 5 answers: the run stops with an error naming the task.
    let mut failing = prefers_right();
    failing.fail_after = Some(5);
    let mut first = CachedBackend::new(Box::new(failing), RequestCache::open(&path).unwrap());
    let err = run(&mut first, dir.path(), &["quiz"], &EvalOptions::default()).unwrap_err();
    assert!(err.to_string().contains("task quiz_a"), "{err}");

    // The same run again asks only for what was not answered (12 requests, 5 cached).
    let mut second = CachedBackend::new(
        Box::new(prefers_right()),
        RequestCache::open(&path).unwrap(),
    );
    let resumed = run(&mut second, dir.path(), &["quiz"], &EvalOptions::default()).unwrap();
    let counts = second.counts();
    assert_eq!((counts.hits, counts.misses), (5, 7));
    for (a, b) in uninterrupted.tasks.iter().zip(&resumed.tasks) {
        assert_eq!(a.metrics, b.metrics, "{}", a.name);
        assert_eq!(a.values, b.values, "{}", a.name);
    }
    assert_eq!(uninterrupted.groups, resumed.groups);
}
