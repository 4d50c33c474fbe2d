//! Tests of task preparation, context construction and scoring: on small task files, and on
//! the built-in tasks with the real data.

mod fixtures {
    use super::super::*;
    use crate::DataDir;
    use std::io::Write;

    fn task(yaml: &str, rows: &str) -> (tempfile::TempDir, PreparedTask) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::File::create(dir.path().join("d.jsonl"))
            .unwrap()
            .write_all(rows.as_bytes())
            .unwrap();
        let spec: TaskSpec = serde_yaml::from_str(yaml).unwrap();
        let prepared =
            PreparedTask::prepare("t", &spec, &DataDir(dir.path().to_path_buf()), None).unwrap();
        (dir, prepared)
    }

    const ROWS: &str = "{\"q\": \"Q1\", \"c\": [\"a\", \"b\"], \"g\": 1}\n{\"q\": \"Q2\", \"c\": [\"c\", \"d\"], \"g\": 0}\n{\"q\": \"Q3\", \"c\": [\"e\", \"f\"], \"g\": 1}\n";

    #[test]
    fn multiple_choice_context_with_description_and_fewshot() {
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: g\ndoc_to_choice: c\ndescription: \"About {{q}}.\\n\\n\"\nnum_fewshot: 1\nfewshot_config: {sampler: first_n}\n",
            ROWS,
        );
        let inst = t.instance(0).unwrap();
        // The document itself is never its own example: doc 1 is used.
        assert_eq!(
            inst.requests[0].context,
            "About Q1.\n\nQ: Q2\nA: c\n\nQ: Q1\nA:"
        );
        assert_eq!(inst.requests[1].continuation, " b");
        assert_eq!(
            inst.kind,
            DocKind::MultipleChoice {
                choices: vec!["a".into(), "b".into()],
                gold: vec![1]
            }
        );
    }

    #[test]
    fn shared_prefix_is_the_common_start_of_the_first_two_contexts() {
        // Fixed description and examples (the first two rows, from a separate split).
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\nfewshot_split: test\noutput_type: multiple_choice\ndoc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: g\ndoc_to_choice: c\ndescription: \"Quiz.\\n\\n\"\nnum_fewshot: 0\n",
            ROWS,
        );
        assert_eq!(t.shared_prefix().unwrap().as_deref(), Some("Quiz.\n\nQ: Q"));
        assert!(t.instance(2).unwrap().requests[0]
            .context
            .starts_with("Quiz.\n\nQ: Q"));
        let (_d, one) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\n",
            "{\"q\": \"Q1\", \"c\": [\"a\"], \"g\": 0}\n",
        );
        assert_eq!(one.shared_prefix().unwrap(), None);
    }

    #[test]
    fn random_fewshot_depends_only_on_the_document() {
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\nnum_fewshot: 1\n",
            ROWS,
        );
        let a = t.instance(2).unwrap();
        let b = t.instance(2).unwrap();
        assert_eq!(a, b);
        assert!(!a.requests[0].context.starts_with("Q3"));
    }

    #[test]
    fn random_fewshot_follows_lm_evals_draws() {
        // Six documents drawing from their own split, two shots: lm-eval draws
        // `random.Random(1234).sample(docs, 3)` for each document in turn and drops the document
        // itself. Python 3.11: r = random.Random(1234); [r.sample(range(6), 3) for _ in range(6)]
        // == [[3, 0, 4], [0, 4, 5], [5, 0, 4], [2, 1, 0], [0, 5, 2], [5, 4, 3]].
        let rows: String = (0..6)
            .map(|i| format!("{{\"q\": \"Q{i}\", \"c\": [\"a\", \"b\"], \"g\": 0}}\n"))
            .collect();
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\nnum_fewshot: 2\n",
            &rows,
        );
        let expected = [[3, 4], [0, 4], [5, 0], [2, 1], [0, 5], [4, 3]];
        for (doc, shots) in expected.iter().enumerate() {
            let context = &t.instance(doc).unwrap().requests[0].context;
            let want = format!("Q{} a\n\nQ{} a\n\nQ{doc}", shots[0], shots[1]);
            assert_eq!(context, &want, "doc {doc}");
        }
    }

    #[test]
    fn choices_as_contexts_share_the_continuation() {
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{ g }}\"\ndoc_to_target: \"rest of it\"\ndoc_to_choice: \"{{ [q + ' a', q + ' b'] }}\"\n",
            ROWS,
        );
        let inst = t.instance(0).unwrap();
        assert_eq!(inst.requests[0].context, "Q1 a");
        assert_eq!(inst.requests[1].context, "Q1 b");
        assert_eq!(inst.requests[1].continuation, " rest of it");
    }

    fn prepare_err(yaml: &str) -> String {
        let (dir, _) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\n",
            ROWS,
        );
        let spec: TaskSpec = serde_yaml::from_str(yaml).unwrap();
        PreparedTask::prepare("t", &spec, &DataDir(dir.path().to_path_buf()), None)
            .err()
            .unwrap()
            .to_string()
    }

    const GEN: &str = "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: generate_until\ndoc_to_text: q\ndoc_to_target: g\n";

    #[test]
    fn bad_generation_settings_fail_before_inference() {
        let err = prepare_err(&format!("{GEN}generation_kwargs: {{until: [\"\"]}}\n"));
        assert!(err.contains("until has an empty stop string"), "{err}");
        let err = prepare_err(&format!("{GEN}generation_kwargs: {{temperature: -0.5}}\n"));
        assert!(err.contains("temperature must be >= 0"), "{err}");
        let err = prepare_err(&format!("{GEN}generation_kwargs: {{max_gen_toks: 0}}\n"));
        assert!(err.contains("max_gen_toks must be at least 1"), "{err}");
        // Hugging Face's `max_new_tokens` wins over `max_gen_toks`, as in lm-eval's `hf` model.
        let err = prepare_err(&format!(
            "{GEN}generation_kwargs: {{max_gen_toks: 5, max_new_tokens: 0}}\n"
        ));
        assert!(err.contains("max_gen_toks must be at least 1"), "{err}");
        let err = prepare_err(&format!("{GEN}filter_list: [{{name: x, filter: [{{function: regex, regex_pattern: \"([\"}}]}}]\n"));
        assert!(
            err.contains("filter `x`, step 1 (regex): invalid regex"),
            "{err}"
        );
        let err = prepare_err(&format!(
            "{GEN}filter_list: [{{name: x, filter: [{{function: extract_magic}}]}}]\n"
        ));
        assert!(
            err.contains("unknown filter function `extract_magic`"),
            "{err}"
        );
    }

    #[test]
    fn generation_requests_carry_settings_and_overrides() {
        let (_d, mut t) = task(
            &format!("{GEN}generation_kwargs: {{until: [\"\\n\"], max_gen_toks: 9}}\n"),
            ROWS,
        );
        let DocKind::Generate { request } = t.instance(1).unwrap().kind else {
            panic!()
        };
        assert_eq!((request.context.as_str(), request.max_gen_toks), ("Q2", 9));
        assert_eq!(request.until, vec!["\n"]);
        assert_eq!(request.sampling.temperature, 0.0);
        t.override_generation(&[
            ("max_gen_toks".into(), "4".into()),
            ("temperature".into(), "0.7".into()),
        ])
        .unwrap();
        let DocKind::Generate { request } = t.instance(1).unwrap().kind else {
            panic!()
        };
        assert_eq!(
            (request.max_gen_toks, request.sampling.temperature),
            (4, 0.7)
        );
        assert!(t
            .override_generation(&[("beams".into(), "2".into())])
            .is_err());
    }

    #[test]
    fn bad_gold_and_metrics_are_clear_errors() {
        let (_d, t) = task(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: 7\ndoc_to_choice: c\n",
            ROWS,
        );
        let err = t.instance(0).unwrap_err().to_string();
        assert!(
            err.contains("task t, doc 0, doc_to_target: gold index 7 but only 2 choices"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let spec: TaskSpec = serde_yaml::from_str("task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: c\nmetric_list: [{metric: bleu}]\n").unwrap();
        let err = PreparedTask::prepare("t", &spec, &DataDir(dir.path().into()), None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown metric `bleu`"), "{err}");
        let err = PreparedTask::prepare(
            "t",
            &TaskSpec {
                metric_list: None,
                ..spec
            },
            &DataDir(dir.path().into()),
            None,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("data file not found"), "{err}");
    }
}

mod builtin {
    use super::super::*;
    use crate::DataDir;
    use crate::Registry;
    use assay_core::StopReason;

    fn data_dir() -> DataDir {
        DataDir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
    }

    /// Scores `text` as the generation of document `doc_id`.
    fn score_as_generation(task: &PreparedTask, doc_id: usize, text: &str) -> Vec<DocValue> {
        scored_generation(task, doc_id, text).values
    }

    /// The scores of `text` as the generation of document `doc_id`, with their details.
    fn scored_generation(task: &PreparedTask, doc_id: usize, text: &str) -> Scored {
        let instance = task.instance(doc_id).unwrap();
        let answers = Answers::Generations(vec![Generation {
            text: text.to_string(),
            tokens: 1,
            stop: StopReason::Until,
            truncated: false,
        }]);
        task.score(&instance, &answers).unwrap()
    }

    #[test]
    fn gsm8k_gold_solutions_score_one_under_both_filters() {
        let registry = Registry::load(&[]).unwrap();
        let (spec, _) = registry.task("gsm8k").unwrap();
        let task = PreparedTask::prepare("gsm8k", spec, &data_dir(), Some(0)).unwrap();
        for doc_id in 0..task.docs.len() {
            let gold = task.docs[doc_id]["answer"].as_str().unwrap().to_string();
            let values = score_as_generation(&task, doc_id, &format!(" {gold}"));
            assert_eq!(values, vec![DocValue::Scalar(1.0); 2], "doc {doc_id}");
        }
        let wrong = score_as_generation(&task, 0, " So she makes 17 dollars.\n#### 17");
        assert_eq!(wrong, vec![DocValue::Scalar(0.0); 2]);
    }

    #[test]
    fn humaneval_runs_programs_in_the_sandbox_and_records_each_outcome() {
        let registry = Registry::load(&[]).unwrap();
        let (spec, _) = registry.task("humaneval").unwrap();
        let mut task = PreparedTask::prepare("humaneval", spec, &data_dir(), None).unwrap();
        assert!(task.runs_code());
        let sandbox = assay_sandbox::Sandbox::detect(assay_sandbox::Limits::default()).unwrap();
        task.set_sandbox(std::sync::Arc::new(sandbox));
        // The canonical solutions of the first problems pass; a wrong body fails with its
        // exception; the outcomes come with the scores, for the sample log.
        for doc_id in 0..5 {
            let solution = task.docs[doc_id]["canonical_solution"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(
                score_as_generation(&task, doc_id, &solution),
                vec![DocValue::Scalar(1.0)],
                "doc {doc_id}"
            );
        }
        let wrong = scored_generation(&task, 0, "    return None\n");
        assert_eq!(wrong.values, vec![DocValue::Scalar(0.0)]);
        let runs = wrong.details.unwrap();
        assert_eq!(runs["create_test"][0]["outcome"], "failed");
        assert_eq!(runs["create_test"][0]["kind"], "AssertionError");
        // pass@k needs k samples, and does not mix with other metrics.
        let yaml = |extra: &str| format!("include: humaneval.yaml\ntask: he_bad\n{extra}");
        for (extra, message) in [
            (
                "metric_list:\n  - metric: pass@10\n",
                "needs at least 10 samples",
            ),
            (
                "metric_list:\n  - metric: pass@1\n  - metric: exact_match\n",
                "cannot be mixed",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("humaneval.yaml"),
                registry
                    .task("humaneval")
                    .map(|(s, _)| serde_yaml::to_string(s).unwrap())
                    .unwrap(),
            )
            .unwrap();
            std::fs::write(dir.path().join("he_bad.yaml"), yaml(extra)).unwrap();
            let local = Registry::load(&[dir.path().to_path_buf()]).unwrap();
            let (spec, _) = local.task("he_bad").unwrap();
            let err = PreparedTask::prepare("he_bad", spec, &data_dir(), None)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn truthfulqa_gen_separates_true_false_and_refusals() {
        let registry = Registry::load(&[]).unwrap();
        let (spec, _) = registry.task("truthfulqa_gen").unwrap();
        let task = PreparedTask::prepare("truthfulqa_gen", spec, &data_dir(), None).unwrap();
        let index = |m: MetricKind| task.keys.iter().position(|(k, _)| *k == m).unwrap();
        let doc = &task.docs[0];
        // The longest answers: BLEU needs at least four tokens to be non-zero (as in sacreBLEU).
        let longest = |field: &str| {
            doc[field]
                .as_str()
                .unwrap()
                .split("; ")
                .max_by_key(|a| a.len())
                .unwrap()
                .to_string()
        };
        let (truth, lie) = (longest("Correct Answers"), longest("Incorrect Answers"));
        let v = score_as_generation(&task, 0, &format!(" {truth}"));
        assert_eq!(v[index(MetricKind::Truthful)], DocValue::Scalar(1.0));
        assert_eq!(v[index(MetricKind::BleuAcc)], DocValue::Scalar(1.0));
        assert_eq!(v[index(MetricKind::RougeLMax)], DocValue::Scalar(100.0));
        let v = score_as_generation(&task, 0, &format!(" {lie}"));
        assert_eq!(v[index(MetricKind::Untruthful)], DocValue::Scalar(1.0));
        assert_eq!(v[index(MetricKind::Rouge1Acc)], DocValue::Scalar(0.0));
        let v = score_as_generation(&task, 0, " I have no comment.");
        assert_eq!(v[index(MetricKind::Refusal)], DocValue::Scalar(1.0));
        assert_eq!(v[index(MetricKind::Truthful)], DocValue::Scalar(0.0));
    }

    #[test]
    fn math500_reference_answers_are_equivalent_to_themselves_boxed() {
        let registry = Registry::load(&[]).unwrap();
        let (spec, _) = registry.task("math500").unwrap();
        let task = PreparedTask::prepare("math500", spec, &data_dir(), Some(0)).unwrap();
        let mut ok = 0;
        for doc_id in 0..task.docs.len() {
            let answer = task.docs[doc_id]["answer"].as_str().unwrap();
            let text = format!(
                " We compute.\nFinal Answer: The final answer is ${answer}$. I hope it is correct."
            );
            ok += usize::from(
                score_as_generation(&task, doc_id, &text) == vec![DocValue::Scalar(1.0)],
            );
        }
        assert_eq!(ok, task.docs.len());
    }
}

/// A task file's own filters, metrics and aggregations (`!function` hooks in Python).
mod hooked {
    use super::super::*;
    use crate::DataDir;
    use assay_core::StopReason;

    const HOOKS: &str = r#"
import re

def last_number(resps, docs):
    return [[(re.findall(r"-?\d+", r) or ["[none]"])[-1] + docs[0]["unit"] for r in rs] for rs in resps]

class Shout:
    def __init__(self, ignore_case=False, regex_pattern=None):
        self.upper = ignore_case
        self.pattern = regex_pattern
    def apply(self, resps, docs):
        return map(lambda rs: [r.upper() if self.upper else r for r in rs], resps)

def length(references, predictions, k=(1,)):
    return float(len(predictions[0]) * k[0])

def pair(items):
    return items

def pair_agg(items):
    return 1000 + sum(gold == answer for gold, answer in items) / len(items)

def broken(references, predictions):
    raise ValueError("no score for you")
"#;

    const ROWS: &str = "{\"q\": \"Q1\", \"g\": \"12kg\", \"unit\": \"kg\"}\n{\"q\": \"Q2\", \"g\": \"7kg\", \"unit\": \"kg\"}\n";

    /// Prepares a generation task whose `{dir}` placeholders name the hooks' folder.
    fn prepared(tail: &str) -> (tempfile::TempDir, Result<PreparedTask, TaskError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.jsonl"), ROWS).unwrap();
        std::fs::write(dir.path().join("hooks.py"), HOOKS).unwrap();
        let yaml = format!(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: generate_until\ndoc_to_text: q\ndoc_to_target: g\n{tail}"
        )
        .replace("{dir}", &dir.path().display().to_string());
        let spec: TaskSpec = serde_yaml::from_str(&yaml).unwrap();
        let task = PreparedTask::prepare("t", &spec, &DataDir(dir.path().to_path_buf()), None);
        (dir, task)
    }

    fn generated(text: &str) -> Answers {
        Answers::Generations(vec![Generation {
            text: text.to_string(),
            tokens: 1,
            stop: StopReason::Until,
            truncated: false,
        }])
    }

    const FILTERS: &str = "filter_list:\n  - name: numbers\n    filter:\n      - function: custom\n        filter_fn: !function {dir}/hooks.last_number\n      - function: take_first\n  - name: loud\n    filter:\n      - function: !function {dir}/hooks.Shout\n        ignore_case: true\n";

    #[test]
    fn filter_hooks_metric_hooks_and_aggregation_hooks_score_as_lm_eval_calls_them() {
        let (_dir, task) = prepared(&format!(
            "{FILTERS}metric_list:\n  - metric: exact_match\n  - metric: !function {{dir}}/hooks.length\n    aggregation: mean\n    higher_is_better: false\n    k: [2]\n  - metric: !function {{dir}}/hooks.pair\n    aggregation: !function {{dir}}/hooks.pair_agg\n"
        ));
        let task = task.unwrap();
        let names: Vec<String> = task
            .keys
            .iter()
            .map(|(m, f)| format!("{},{f}", m.name()))
            .collect();
        assert_eq!(
            names,
            [
                "exact_match,numbers",
                "length,numbers",
                "pair,numbers",
                "exact_match,loud",
                "length,loud",
                "pair,loud"
            ]
        );
        assert!(!task.keys[1].0.higher_is_better());
        assert_eq!(task.keys[2].0.aggregation_name(), "hooks.pair_agg");

        let scored = task
            .score(&task.instance(0).unwrap(), &generated("I think 3, no: 12"))
            .unwrap();
        assert_eq!(
            scored.filtered,
            [
                ("numbers".to_string(), vec!["12kg".to_string()]),
                ("loud".to_string(), vec!["I THINK 3, NO: 12".to_string()]),
            ]
        );
        assert_eq!(scored.values[0], DocValue::Scalar(1.0));
        // `k: [2]` reaches the metric function as a keyword argument.
        assert_eq!(scored.values[1], DocValue::Scalar(8.0));
        assert_eq!(
            scored.values[2],
            DocValue::Item(serde_json::json!(["12kg", "12kg"]))
        );
        assert_eq!(scored.values[3], DocValue::Scalar(0.0));
        let other = task
            .score(&task.instance(1).unwrap(), &generated("no idea"))
            .unwrap();
        let pair = &task.keys[2].0;
        let items = [scored.values[2].clone(), other.values[2].clone()];
        assert_eq!(pair.aggregate(&items).unwrap(), 1000.5);
        assert_eq!(pair.stderr(&items, 100, 1), None);
    }

    #[test]
    fn hook_failures_and_misplaced_hooks_are_clear_errors() {
        let (_dir, task) = prepared(&format!(
            "{FILTERS}metric_list:\n  - metric: !function {{dir}}/hooks.broken\n"
        ));
        let task = task.unwrap();
        let err = task
            .score(&task.instance(0).unwrap(), &generated("12"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("document 0, filter numbers: metric `broken` (`!function hooks.broken`): ValueError: no score for you"),
            "{err}"
        );
        // A pass-through value needs an aggregation hook to combine it.
        let (_dir, task) = prepared("metric_list:\n  - metric: !function {dir}/hooks.pair\n");
        let task = task.unwrap();
        let err = task
            .score(&task.instance(0).unwrap(), &generated("12"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`mean` aggregation cannot combine"), "{err}");

        let (_dir, task) =
            prepared("filter_list:\n  - name: x\n    filter:\n      - function: custom\n");
        let err = task.err().unwrap().to_string();
        assert!(err.contains("`custom` needs `filter_fn"), "{err}");
        let (_dir, task) = prepared(
            "filter_list:\n  - name: x\n    filter:\n      - function: regex\n        ignore_case: true\n",
        );
        let err = task.err().unwrap().to_string();
        assert!(
            err.contains("`ignore_case` applies to `custom` and `!function` filters only"),
            "{err}"
        );
        let (_dir, task) =
            prepared("metric_list:\n  - metric: exact_match\n    aggregation: perplexity\n");
        let err = task.err().unwrap().to_string();
        assert!(
            err.contains("assay aggregates it with `mean`, not `perplexity`"),
            "{err}"
        );
        let (_dir, task) =
            prepared("metric_list:\n  - metric: exact_match\n    aggregation: median\n");
        let err = task.err().unwrap().to_string();
        assert!(
            err.contains("aggregation `median` is not one assay has"),
            "{err}"
        );
        let (_dir, task) = prepared("metric_list:\n  - metric: rouge_zz\n");
        let err = task.err().unwrap().to_string();
        assert!(
            err.contains("unknown metric `rouge_zz`") && err.contains("`!function` metric"),
            "{err}"
        );
    }

    #[test]
    fn choice_f1_and_mcc_are_pairs_for_corpus_aggregations() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.jsonl"),
            "{\"q\": \"a\", \"g\": 1}\n{\"q\": \"b\", \"g\": 1}\n{\"q\": \"c\", \"g\": 0}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("agg.py"),
            "def weighted(items):\n    golds, preds = zip(*items)\n    return sum(g == p for g, p in items) + 100\n",
        )
        .unwrap();
        let d = dir.path().display();
        // As lm-eval's afrobench files: `average` and `hf_evaluate` change nothing here.
        let spec: TaskSpec = serde_yaml::from_str(&format!(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: q\ndoc_to_target: g\ndoc_to_choice: [no, yes]\nmetric_list:\n  - metric: f1\n    aggregation: f1\n  - metric: mcc\n  - metric: f1\n    aggregation: !function {d}/agg.weighted\n    average: weighted\n    hf_evaluate: true\n  - metric: acc\n    weight_by_size: true\n"
        ))
        .unwrap();
        let task = PreparedTask::prepare("t", &spec, &DataDir(dir.path().into()), None).unwrap();
        let ll = |logprob: f64| assay_core::Loglikelihood {
            logprob,
            is_greedy: false,
            continuation_tokens: 1,
            truncated: false,
        };
        // Predictions: yes, no, yes (golds 1, 1, 0).
        let answers = [[-2.0, -1.0], [-1.0, -2.0], [-3.0, -1.0]];
        let per_doc: Vec<Vec<DocValue>> = answers
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let lls = Answers::Loglikelihoods(a.iter().map(|&x| ll(x)).collect());
                task.score(&task.instance(i).unwrap(), &lls).unwrap().values
            })
            .collect();
        assert_eq!(per_doc[0][0], DocValue::Pair { gold: 1, pred: 1 });
        let column = |k: usize| per_doc.iter().map(|v| v[k].clone()).collect::<Vec<_>>();
        // sklearn: f1_score([1,1,0], [1,0,1]) = 0.5, matthews_corrcoef(...) = -0.5.
        assert!((task.keys[0].0.aggregate(&column(0)).unwrap() - 0.5).abs() < 1e-12);
        assert!((task.keys[1].0.aggregate(&column(1)).unwrap() + 0.5).abs() < 1e-12);
        assert_eq!(task.keys[2].0.aggregate(&column(2)).unwrap(), 101.0);
        assert_eq!(task.keys[3].0.aggregate(&column(3)).unwrap(), 1.0 / 3.0);

        let spec: TaskSpec = serde_yaml::from_str(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: generate_until\ndoc_to_text: q\ndoc_to_target: g\nmetric_list:\n  - metric: f1\n    average: macro\n",
        )
        .unwrap();
        let err = PreparedTask::prepare("t", &spec, &DataDir(dir.path().into()), None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`average` is an option of lm-eval's metric functions"),
            "{err}"
        );
    }

    #[test]
    fn process_results_fills_metrics_assay_does_not_have() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.jsonl"), ROWS).unwrap();
        std::fs::write(
            dir.path().join("scoring.py"),
            "def results(doc, results):\n    return {'closeness': 0.25, 'pair': [doc['g'], results[0]]}\ndef agg(items):\n    return len(items)\n",
        )
        .unwrap();
        let d = dir.path().display();
        let spec: TaskSpec = serde_yaml::from_str(&format!(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: generate_until\ndoc_to_text: q\ndoc_to_target: g\nprocess_results: !function {d}/scoring.results\nmetric_list:\n  - metric: closeness\n  - metric: pair\n    aggregation: !function {d}/scoring.agg\n"
        ))
        .unwrap();
        let task = PreparedTask::prepare("t", &spec, &DataDir(dir.path().into()), None).unwrap();
        let scored = task
            .score(&task.instance(0).unwrap(), &generated("x"))
            .unwrap();
        assert_eq!(scored.values[0], DocValue::Scalar(0.25));
        assert_eq!(
            scored.values[1],
            DocValue::Item(serde_json::json!(["12kg", "x"]))
        );
        assert_eq!(task.keys[1].0.aggregate(&scored.values[1..]).unwrap(), 1.0);
    }
}

/// `fewshot_config`'s own fields and `gen_prefix`, written as lm-eval's `build_qa_turn` does.
mod fewshot_format {
    use super::super::*;
    use crate::DataDir;

    fn prepared(yaml: &str) -> PreparedTask {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.jsonl"),
            "{\"q\": \"Q1\", \"g\": \"g1\"}\n{\"q\": \"Q2\", \"g\": \"g2\"}\n",
        )
        .unwrap();
        let spec: TaskSpec = serde_yaml::from_str(yaml).unwrap();
        PreparedTask::prepare("t", &spec, &DataDir(dir.path().into()), None).unwrap()
    }

    #[test]
    fn listed_samples_with_their_own_format_and_prefixes() {
        let task = prepared(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: generate_until\n\
             doc_to_text: \"Q: {{q}}\"\ndoc_to_target: g\ngen_prefix: \"So:\"\nnum_fewshot: 3\n\
             fewshot_config:\n  sampler: first_n\n  doc_to_text: \"Example {{q}}\"\n\
             \x20 doc_to_target: \"{{g}}\"\n  target_delimiter: \"\\n\"\n  fewshot_delimiter: \"\\n---\\n\"\n\
             \x20 gen_prefix: Ans\n  samples:\n    - {q: S1, g: a1}\n    - {q: S2, g: ''}\n    - {q: 'S3 ', g: a3}\n",
        );
        let instance = task.instance(1).unwrap();
        // S2 has no answer: its prefix ends the turn without the few-shot delimiter; "S3 " ends
        // with a space, so no target delimiter before its prefix; "Q: Q2" and "So:" need one.
        assert_eq!(
            instance.context().unwrap(),
            "Example S1\nAns a1\n---\nExample S2\nAnsExample S3 Ans a3\n---\nQ: Q2 So:"
        );
    }

    #[test]
    fn the_examples_default_to_the_tasks_fields() {
        let task = prepared(
            "task: t\ndataset_path: d.jsonl\ntest_split: test\noutput_type: multiple_choice\n\
             doc_to_text: \"{{q}}?\"\ndoc_to_target: 0\ndoc_to_choice: \"{{[g, 'x']}}\"\nnum_fewshot: 1\n\
             fewshot_config:\n  sampler: first_n\n  fewshot_indices: [1]\n",
        );
        let instance = task.instance(0).unwrap();
        assert_eq!(instance.requests[0].context, "Q2? g2\n\nQ1?");
        assert_eq!(instance.requests[0].continuation, " g1");
    }
}
