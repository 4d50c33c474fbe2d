//! End to end: task files in lm-eval's form naming Hub datasets (`dataset_path: org/name`),
//! run by the real binary on the real model against the stand-in Hub, whose repositories are
//! built from ../shared/data in the real layouts.

mod common;
use common::data_dir;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assay_hub_standin::{build_repos, HubStandIn, Options, GATED_REPO, GATED_TOKEN};
use assert_cmd::cargo::CommandCargoExt;
use serde_json::{json, Value};

struct Hub {
    _root: tempfile::TempDir,
    server: HubStandIn,
}

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        build_repos(&data_dir(), root.path()).unwrap();
        let server = HubStandIn::start(
            root.path(),
            "127.0.0.1:0".parse().unwrap(),
            Options::default(),
        )
        .unwrap();
        Hub {
            _root: root,
            server,
        }
    })
}

/// `HF_ENDPOINT` at the stand-in Hub and `HF_HOME` at `home`.
fn hub_env(home: &Path) -> [(&'static str, String); 2] {
    [
        ("HF_ENDPOINT", hub().server.url()),
        ("HF_HOME", home.display().to_string()),
    ]
}

fn borrowed<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Task files written the way lm-eval's own are (Hub ids, configs, Jinja with Python methods).
fn task_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "arc_easy.yaml",
        "task: arc_easy\ntag: [ai2_arc]\ndataset_path: allenai/ai2_arc\ndataset_name: ARC-Easy\n\
         output_type: multiple_choice\ntraining_split: train\nvalidation_split: validation\n\
         test_split: test\ndoc_to_text: \"Question: {{question}}\\nAnswer:\"\n\
         doc_to_target: \"{{choices.label.index(answerKey)}}\"\ndoc_to_choice: \"{{choices.text}}\"\n\
         should_decontaminate: true\ndoc_to_decontamination_query: \"Question: {{question}}\\nAnswer:\"\n\
         metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n\
         \x20 - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n\
         metadata:\n  version: 1.0\n",
    );
    write(
        "piqa.yaml",
        "task: piqa_hub\ndataset_path: baber/piqa\ndataset_name: null\noutput_type: multiple_choice\n\
         training_split: train\nvalidation_split: validation\ntest_split: null\n\
         doc_to_text: \"Question: {{goal}}\\nAnswer:\"\ndoc_to_target: label\n\
         doc_to_choice: \"{{[sol1, sol2]}}\"\nmetric_list:\n  - metric: acc\n",
    );
    write(
        "gated.yaml",
        &format!(
            "task: gated_gsm8k\ndataset_path: {GATED_REPO}\ndataset_name: main\noutput_type: loglikelihood\n\
             test_split: test\ndoc_to_text: \"Question: {{{{question}}}}\\nAnswer:\"\n\
             doc_to_target: \" {{{{answer}}}}\"\nmetric_list:\n  - metric: perplexity\n"
        ),
    );
    write(
        "hooked.yaml",
        "task: hooked\ndataset_path: truthfulqa/truthful_qa\ndataset_name: multiple_choice\n\
         output_type: multiple_choice\nvalidation_split: validation\n\
         doc_to_text: !function hooks.doc_to_text\ndoc_to_target: 0\n\
         doc_to_choice: \"{{mc1_targets.choices}}\"\n\
         process_docs: !function hooks.first_two_choices\n\
         process_results: !function hooks.process_results\nmetric_list:\n  - metric: acc\n",
    );
    write(
        "hooks.py",
        "def doc_to_text(doc):\n    return 'Q: ' + doc['question'] + '\\nA:'\n\
         def first_two_choices(dataset):\n\
         \x20   def cut(doc):\n\
         \x20       doc['mc1_targets']['choices'] = doc['mc1_targets']['choices'][:2]\n\
         \x20       return doc\n\
         \x20   return dataset.map(cut)\n\
         def process_results(doc, results):\n\
         \x20   lls = [r[0] for r in results]\n\
         \x20   assert len(lls) == 2\n\
         \x20   return {'acc': float(lls.index(max(lls)) == 0)}\n",
    );
    write(
        "missing_module.yaml",
        "task: missing_module\ndataset_path: openai/gsm8k\ndataset_name: main\n\
         output_type: loglikelihood\ntest_split: test\nprocess_docs: !function nowhere.process\n\
         doc_to_text: question\ndoc_to_target: answer\nmetric_list:\n  - metric: perplexity\n",
    );
    dir
}

struct Run {
    code: i32,
    stderr: String,
    results: Option<Value>,
    /// Every line of the per-sample logs.
    samples: Vec<Value>,
}

fn run(tasks: &str, include: Option<&Path>, env: &[(&str, &str)]) -> Run {
    run_on(Some(&data_dir()), tasks, include, env)
}

/// `assay run` with the data folder `data`, or with none to be found (`None`).
fn run_on(data: Option<&Path>, tasks: &str, include: Option<&Path>, env: &[(&str, &str)]) -> Run {
    let mut args = vec!["--tasks", tasks, "--limit", "8"];
    if let Some(dir) = include {
        args.extend(["--include-path", dir.to_str().unwrap()]);
    }
    let (run, _out) = run_with(data, &args, env);
    run
}

/// `assay run ARGS` (logging samples into a folder it returns) with the data folder `data`, or
/// with none to be found (`None`).
fn run_with(data: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> (Run, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::cargo_bin("assay").unwrap();
    cmd.args(["run", "--no-cache", "--no-record", "--log-samples"]);
    match data {
        Some(dir) => {
            cmd.arg("--data-dir").arg(dir);
        }
        None => {
            // A folder whose `../shared/data` does not exist (a /tmp/shared may).
            let cwd = out.path().join("no/data");
            std::fs::create_dir_all(&cwd).unwrap();
            cmd.env_remove("ASSAY_DATA_DIR").current_dir(cwd);
        }
    }
    cmd.args(args)
        .arg("--output-path")
        .arg(out.path())
        .env_remove("HF_TOKEN")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    let results = find_files(out.path(), "results_")
        .first()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap());
    let samples = find_files(out.path(), "samples_")
        .iter()
        .flat_map(|p| read_lines(p))
        .collect();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        results,
        samples,
    };
    (run, out)
}

/// The JSON lines of a per-sample log.
fn read_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

/// The files under `dir` whose names start with `prefix`.
fn find_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(find_files(&path, prefix));
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        {
            found.push(path);
        }
    }
    found
}

fn metric(results: &Value, task: &str, name: &str) -> f64 {
    results["results"][task][name]
        .as_f64()
        .unwrap_or_else(|| panic!("{task} {name} in {}", results["results"]))
}

#[test]
fn hub_tasks_score_as_the_local_tasks_and_record_the_commit() {
    let home = tempfile::tempdir().unwrap();
    let tasks = task_folder();
    let vars = hub_env(home.path());
    let env = borrowed(&vars);
    let from_hub = run("arc_easy,piqa_hub,hooked", Some(tasks.path()), &env);
    assert_eq!(from_hub.code, 0, "{}", from_hub.stderr);
    assert!(
        from_hub
            .stderr
            .contains("replaces the built-in task of that name"),
        "{}",
        from_hub.stderr
    );
    let results = from_hub.results.unwrap();
    let origin = &results["assay"]["datasets"]["arc_easy"];
    assert_eq!(origin["repo"], "allenai/ai2_arc");
    assert_eq!(origin["config"], "ARC-Easy");
    assert_eq!(origin["commit"].as_str().unwrap().len(), 40);
    assert_eq!(
        results["assay"]["datasets"]["piqa_hub"]["repo"],
        "baber/piqa"
    );
    // The built-in tasks read the same benchmark from ../shared/data with the same prompts.
    let local = run("arc_easy,piqa", None, &[]);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let local = local.results.unwrap();
    assert!(local["assay"]["datasets"].as_object().unwrap().is_empty());
    for m in ["acc,none", "acc_norm,none"] {
        assert_eq!(
            metric(&results, "arc_easy", m),
            metric(&local, "arc_easy", m),
            "{m}"
        );
    }
    assert_eq!(
        metric(&results, "piqa_hub", "acc,none"),
        metric(&local, "piqa", "acc,none")
    );

    // Offline, with the Hub gone: the cache alone answers, with the same commit.
    let offline = [
        ("HF_ENDPOINT", "http://127.0.0.1:9".to_string()),
        ("HF_HOME", home.path().display().to_string()),
        ("HF_HUB_OFFLINE", "1".to_string()),
    ];
    let offline: Vec<(&str, &str)> = offline.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let again = run("arc_easy", Some(tasks.path()), &offline);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let again = again.results.unwrap();
    assert_eq!(
        again["assay"]["datasets"]["arc_easy"]["commit"],
        origin["commit"]
    );
    assert_eq!(
        metric(&again, "arc_easy", "acc,none"),
        metric(&results, "arc_easy", "acc,none")
    );
}

#[test]
fn hub_errors_name_the_task_and_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let tasks = task_folder();
    let vars = hub_env(home.path());
    let env = borrowed(&vars);
    let gated = run("gated_gsm8k", Some(tasks.path()), &env);
    assert_ne!(gated.code, 0);
    assert!(
        gated.stderr.contains("task gated_gsm8k")
            && gated.stderr.contains("is gated")
            && gated.stderr.contains("HF_TOKEN"),
        "{}",
        gated.stderr
    );
    let missing = run("missing_module", Some(tasks.path()), &env);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("task missing_module")
            && missing.stderr.contains("process_docs")
            && missing.stderr.contains("no module file"),
        "{}",
        missing.stderr
    );
    let empty = tempfile::tempdir().unwrap();
    let offline = [
        ("HF_HOME", empty.path().display().to_string()),
        ("HF_HUB_OFFLINE", "1".to_string()),
    ];
    let offline: Vec<(&str, &str)> = offline.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let nothing = run("arc_easy", Some(tasks.path()), &offline);
    assert_ne!(nothing.code, 0);
    assert!(
        nothing.stderr.contains("allenai/ai2_arc") && nothing.stderr.contains("HF_HUB_OFFLINE"),
        "{}",
        nothing.stderr
    );
}

#[test]
fn a_task_library_loads_despite_files_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "good.yaml",
        "task: good_one\ndataset_path: openai/gsm8k\ndataset_name: main\noutput_type: loglikelihood\ntest_split: test\ndoc_to_text: question\ndoc_to_target: answer\n",
    );
    write(
        "odd.yaml",
        "task: odd_one\ndataset_path: openai/gsm8k\ndoc_to_image: x\n",
    );
    write("typo.yaml", "task: typo_one\nnum_fewshots: 1\n");
    write("_group.yaml", "group: both\ntask: [good_one, odd_one]\n");
    let out = Command::cargo_bin("assay")
        .unwrap()
        .arg("tasks")
        .arg("--include-path")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("good_one") && stdout.contains("hub"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 task files could not be read")
            && stdout.contains("typo.yaml: line 2, column 1: unknown field `num_fewshots`"),
        "{stdout}"
    );
    // What assay cannot run is read, listed apart and refused by name.
    assert!(
        stdout.contains("1 tasks need what assay cannot run")
            && stdout.contains("odd.yaml: images or audio"),
        "{stdout}"
    );
    assert!(
        stdout.contains("group both") && stdout.contains("? tasks"),
        "{stdout}"
    );
    // Selecting the unreadable task gives its error; the refused one says what it needs.
    let r = run("typo_one", Some(dir.path()), &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("typo.yaml: line 2"), "{}", r.stderr);
    let r = run("odd_one", Some(dir.path()), &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("needs images or audio") && r.stderr.contains("assay cannot run it"),
        "{}",
        r.stderr
    );
    // A package that Python cannot import is said so.
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args(["tasks", "--tasks-from", "lm_eval"])
        .env("ASSAY_PYTHON", "python3")
        .env("PYTHONPATH", dir.path())
        .output()
        .unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot import lm_eval") && stderr.contains("pip install lm-eval"),
            "{stderr}"
        );
    }
}

#[test]
fn filter_metric_and_aggregation_hooks_score_generations() {
    let home = tempfile::tempdir().unwrap();
    let vars = hub_env(home.path());
    let env = borrowed(&vars);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "gsm8k_hooked.yaml",
        "task: gsm8k_hooked\ndataset_path: openai/gsm8k\ndataset_name: main\n\
         output_type: generate_until\ntest_split: test\n\
         doc_to_text: \"Question: {{question}}\\nAnswer:\"\ndoc_to_target: !function gen_hooks.target\n\
         generation_kwargs:\n  until: [\"\\n\\n\"]\n  max_gen_toks: 12\n\
         filter_list:\n  - name: numbers\n    filter:\n\
         \x20     - function: custom\n        filter_fn: !function gen_hooks.last_number\n\
         \x20     - function: take_first\n\
         \x20 - name: loud\n    filter:\n      - function: !function gen_hooks.Shout\n        ignore_case: true\n\
         \x20     - function: take_first\n\
         metric_list:\n  - metric: exact_match\n\
         \x20 - metric: !function gen_hooks.length\n    aggregation: mean\n    higher_is_better: false\n\
         \x20 - metric: !function gen_hooks.pair\n    aggregation: !function gen_hooks.pair_agg\n    higher_is_better: true\n",
    );
    write(
        "gen_hooks.py",
        "import re\n\
         def target(doc):\n    return doc['answer'].split('####')[-1].strip()\n\
         def last_number(resps, docs):\n\
         \x20   return [[(re.findall(r'-?[0-9]+', r) or ['[none]'])[-1] for r in rs] for rs in resps]\n\
         class Shout:\n\
         \x20   def __init__(self, ignore_case=False):\n        self.upper = ignore_case\n\
         \x20   def apply(self, resps, docs):\n\
         \x20       return [[r.upper() if self.upper else r for r in rs] for rs in resps]\n\
         def length(references, predictions):\n    return float(len(predictions[0]))\n\
         def pair(items):\n    return items\n\
         def pair_agg(items):\n    return 1000 + sum(g == a for g, a in items) / len(items)\n",
    );
    let r = run("gsm8k_hooked", Some(dir.path()), &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let results = r.results.unwrap();
    let task = "gsm8k_hooked";
    assert_eq!(r.samples.len(), 16, "8 documents, 2 filters");
    for filter in ["numbers", "loud"] {
        let lines: Vec<&Value> = r.samples.iter().filter(|l| l["filter"] == filter).collect();
        let mut right = 0.0;
        let mut length = 0.0;
        for line in &lines {
            let answer = line["filtered_resps"][0].as_str().unwrap();
            let raw = line["resps"][0][0].as_str().unwrap();
            match filter {
                "numbers" => assert!(
                    answer == "[none]" || (raw.contains(answer) && answer.parse::<i64>().is_ok()),
                    "{answer} from {raw}"
                ),
                _ => assert_eq!(answer, raw.to_uppercase()),
            }
            assert_eq!(line["pair"], serde_json::json!([line["target"], answer]));
            right += f64::from(u8::from(line["target"] == answer));
            length += answer.chars().count() as f64;
            assert_eq!(
                line["exact_match"],
                f64::from(u8::from(line["target"] == answer))
            );
        }
        let n = lines.len() as f64;
        let em = metric(&results, task, &format!("exact_match,{filter}"));
        assert!((em - right / n).abs() < 1e-9, "{filter}: {em}");
        let len = metric(&results, task, &format!("length,{filter}"));
        assert!((len - length / n).abs() < 1e-9, "{filter}: {len}");
        let pair = metric(&results, task, &format!("pair,{filter}"));
        assert!((pair - 1000.0 - right / n).abs() < 1e-9, "{filter}: {pair}");
        assert_eq!(
            results["results"][task][format!("pair_stderr,{filter}")],
            "N/A"
        );
    }
    assert_eq!(results["higher_is_better"][task]["length"], false);
    let listed = &results["configs"][task]["metric_list"];
    assert_eq!(listed[2]["metric"], "pair");
    assert_eq!(listed[2]["aggregation"], "gen_hooks.pair_agg");
}

#[test]
fn hooks_draw_from_lm_evals_seeded_generators() {
    let home = tempfile::tempdir().unwrap();
    let vars = hub_env(home.path());
    let env = borrowed(&vars);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    // The leaderboard GPQA's pattern: options shuffled with Python's global `random`.
    write(
        "shuffled.yaml",
        "task: shuffled\ndataset_path: openai/gsm8k\ndataset_name: main\ntest_split: test\n\
         output_type: multiple_choice\nprocess_docs: !function shuf.process\n\
         doc_to_text: \"{{question}}\\n(A) {{o[0]}}\\n(B) {{o[1]}}\\n(C) {{o[2]}}\\n(D) {{o[3]}}\\nAnswer:\"\n\
         doc_to_choice: [\"(A)\", \"(B)\", \"(C)\", \"(D)\"]\ndoc_to_target: gold\n\
         metric_list:\n  - metric: acc\n",
    );
    write(
        "shuf.py",
        "import random\n\
         def options():\n    o = ['right', 'wrong 1', 'wrong 2', 'wrong 3']\n    random.shuffle(o)\n    return o\n\
         def process(ds):\n\
         \x20   def one(doc):\n        o = options()\n        return {'o': o, 'gold': o.index('right')}\n\
         \x20   return ds.map(one)\n\
         def expected(n, seed):\n    random.seed(seed)\n    return [options().index('right') for _ in range(n)]\n",
    );
    let expected = |seed: u64| -> Vec<String> {
        let script = format!(
            "import sys; sys.path.insert(0, {:?}); import shuf; print(' '.join(map(str, shuf.expected(5, {seed}))))",
            dir.path().display().to_string()
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let golds = |extra: &[&str]| {
        let mut args = vec!["--tasks", "shuffled", "--limit", "5"];
        args.extend(["--include-path", dir.path().to_str().unwrap()]);
        args.extend(extra);
        let (r, _out) = run_with(Some(&data_dir()), &args, &env);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let targets: Vec<String> = r
            .samples
            .iter()
            .map(|s| {
                s["target"]
                    .as_str()
                    .map_or(s["target"].to_string(), str::to_string)
            })
            .collect();
        (targets, r.results.unwrap()["config"].clone())
    };
    let (first, config) = golds(&[]);
    assert_eq!(
        first,
        expected(0),
        "Python's random seeded with 0, as lm-eval seeds it"
    );
    assert_eq!(config["random_seed"], 0);
    assert_eq!(config["numpy_seed"], 1234);
    assert_eq!(
        golds(&[]).0,
        first,
        "the same command gives the same documents"
    );
    let (seeded, config) = golds(&["--seed", "5"]);
    assert_eq!(seeded, expected(5));
    assert_eq!(config["random_seed"], 5);
    assert_eq!(config["fewshot_seed"], 5);
}

/// Every built-in task's name: the `task:` of each file under `tasks/` (group files list theirs).
fn built_in_tasks() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tasks");
    let mut files = vec![];
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("task: ").map(|n| n.trim().to_string()))
        })
        .collect();
    names.sort();
    names
}

/// What a task's per-sample log says of each document's prompt: the requests' texts (as a set:
/// the Hub's BoolQ lists its choices in lm-eval's order) and the gold request or target.
fn prompts(out: &Path, task: &str) -> Vec<(u64, Vec<Vec<String>>, Value)> {
    let prefix = format!("samples_{task}_");
    let file = find_files(out, &prefix)
        .into_iter()
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name[prefix.len()..].starts_with(|c: char| c.is_ascii_digit())
        })
        .unwrap_or_else(|| panic!("no per-sample log of {task}"));
    let mut seen: Vec<(u64, Vec<Vec<String>>, Value)> = read_lines(&file)
        .iter()
        .map(|sample| {
            let requests: Vec<Vec<String>> = sample["arguments"]
                .as_object()
                .unwrap()
                .values()
                .map(|args| {
                    let mut texts: Vec<String> = args
                        .as_object()
                        .unwrap()
                        .values()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect();
                    texts.sort();
                    texts
                })
                .collect();
            let gold = gold_request(task, &sample["target"], &requests);
            let mut set = requests.clone();
            set.sort();
            (sample["doc_id"].as_u64().unwrap(), set, gold)
        })
        .collect();
    seen.sort_by_key(|s| s.0);
    seen.dedup();
    seen
}

/// The request a multiple-choice target points at (a list of them for several), else the target
/// as compared across the two layouts: MGSM's numbers without thousands separators (the Hub's
/// `answer_number` is an integer), DROP's answers without repeats (lm-eval's `get_answers`),
/// and nothing for a MATH subject (the Hub has no `answer` column: the reference is the
/// solution's last `\boxed{}`, which the folder's cleaned answer equals up to normalisation).
fn gold_request(task: &str, target: &Value, requests: &[Vec<String>]) -> Value {
    let index = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    let multiple_choice = requests.len() > 1;
    match target {
        Value::Array(items) if multiple_choice => Value::from(
            items
                .iter()
                .map(|i| gold_request(task, i, requests))
                .collect::<Vec<_>>(),
        ),
        // An index, a list of them as Python writes it, or the gold choice's text (MMLU's).
        _ if multiple_choice => match (index(target), target.as_str()) {
            (Some(i), _) => json!(requests[i as usize]),
            (None, Some(list)) if list.starts_with('[') => {
                let items: Value = serde_json::from_str(list).unwrap();
                gold_request(task, &items, requests)
            }
            (None, Some(text)) => json!(requests
                .iter()
                .find(|r| r.iter().any(|t| t.trim() == text.trim()))
                .unwrap_or_else(|| panic!("{task}: target {text:?} is no choice"))),
            (None, None) => target.clone(),
        },
        _ if task.starts_with("math_") => Value::Null,
        Value::String(s) if task.starts_with("mgsm") => json!(s.replace(',', "")),
        Value::Array(items) if task == "drop" => {
            let mut unique: Vec<Value> = vec![];
            for item in items {
                if !unique.contains(item) {
                    unique.push(item.clone());
                }
            }
            Value::from(unique)
        }
        other => other.clone(),
    }
}

#[test]
fn every_built_in_task_reads_the_hub_with_the_folders_prompts() {
    let tasks = built_in_tasks();
    assert!(tasks.len() > 90, "{tasks:?}");
    let list = tasks.join(",");
    // What is compared is the prompts: a server answering at once with the default model's
    // tokenizer stands in for the model.
    let server = assay_standin::StandIn::start(
        assay_standin::Options {
            model_name: "stand-in".into(),
            backing: assay_standin::Backing::Instant {
                model: assay_dirs::default_model_path(),
            },
            faults: Default::default(),
            chat_only: false,
            no_logprobs: false,
            text_prompts_only: false,
            delay: std::time::Duration::ZERO,
            lie: None,
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let url = server.url();
    let args = [
        "--tasks",
        &list,
        "--limit",
        "2",
        "--backend",
        "openai",
        "--model-name",
        "stand-in",
        "--base-url",
        &url,
    ];
    let home = tempfile::tempdir().unwrap();
    let mut vars = hub_env(home.path()).to_vec();
    // GPQA is gated; an empty ASSAY_DATA_DIR is no data folder (it was a folder named "").
    vars.push(("HF_TOKEN", GATED_TOKEN.to_string()));
    vars.push(("ASSAY_DATA_DIR", String::new()));
    let (hub_run, hub_out) = run_with(None, &args, &borrowed(&vars));
    assert_eq!(hub_run.code, 0, "{}", hub_run.stderr);
    let (local_run, local_out) = run_with(Some(&data_dir()), &args, &[]);
    assert_eq!(local_run.code, 0, "{}", local_run.stderr);
    let from_hub = hub_run.results.unwrap();
    for task in &tasks {
        let repo = &from_hub["assay"]["datasets"][task]["repo"];
        assert!(repo.is_string(), "{task} did not read the Hub");
        let hub = prompts(hub_out.path(), task);
        assert_eq!(hub.len(), 2, "{task}");
        assert_eq!(
            hub,
            prompts(local_out.path(), task),
            "{task}: the Hub's rows ({repo}) and the data folder give other prompts"
        );
    }
}

/// The Python with lm-eval's task library and the leaderboard hooks' packages, and NLTK's
/// punkt_tab beside it (both from scripts/setup.sh).
fn lm_eval_python() -> (PathBuf, PathBuf) {
    let cache = assay_dirs::cache_dir();
    let python = std::env::var_os("ASSAY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("test-python/bin/python"));
    let nltk = cache.join("nltk_data");
    assert!(
        python.is_file() && nltk.join("tokenizers/punkt_tab/english").is_dir(),
        "{} or {} is missing: run `bash scripts/setup.sh` (it installs lm-eval's task library \
         and writes NLTK's punkt_tab)",
        python.display(),
        nltk.display()
    );
    (python, nltk)
}

/// GPQA's gold letters for the first `n` documents of each leaderboard GPQA task, computed by
/// lm-eval's own hook in `python` after the draws lm-eval 0.4.13 makes before it builds them
/// (seed 0, then 48 random task ids of 8 draws while it builds BBH's group). The three sets'
/// files are one file here, so `datasets`' cache is off: each call must shuffle.
fn lm_evals_gpqa_golds(python: &Path, n: usize) -> Vec<String> {
    let csv = data_dir().join("gpqa/gpqa_diamond.csv");
    let script = format!(
        "import random, os, lm_eval, datasets, importlib.util\n\
         p = os.path.join(os.path.dirname(lm_eval.__file__), 'tasks/leaderboard/gpqa/utils.py')\n\
         spec = importlib.util.spec_from_file_location('u', p)\n\
         u = importlib.util.module_from_spec(spec); spec.loader.exec_module(u)\n\
         ds = datasets.load_dataset('csv', data_files={csv:?}, split='train')\n\
         datasets.disable_caching()\n\
         random.seed(0)\n\
         [random.random() for _ in range(48 * 8)]\n\
         for _ in range(3):\n    print(' '.join(u.process_docs(ds)['answer'][:{n}]))\n"
    );
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(python)
        .args(["-c", &script])
        .env("HF_HOME", home.path())
        .env("HF_DATASETS_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_open_llm_leaderboard_runs_from_lm_evals_task_files_without_a_data_folder() {
    let (python, nltk) = lm_eval_python();
    let home = tempfile::tempdir().unwrap();
    let vars = hub_env(home.path());
    let mut env = borrowed(&vars);
    let python_text = python.display().to_string();
    let nltk_text = nltk.display().to_string();
    env.extend([
        ("ASSAY_PYTHON", python_text.as_str()),
        ("NLTK_DATA", nltk_text.as_str()),
        ("HF_TOKEN", GATED_TOKEN),
    ]);
    let args = [
        "--tasks-from",
        "lm_eval",
        "--tasks",
        "leaderboard",
        "--limit",
        "2",
        "--gen-kwargs",
        "max_gen_toks=8",
    ];
    let (r, out) = run_with(None, &args, &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let results = r.results.unwrap();
    let tasks: Vec<&String> = results["results"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !results["groups"].as_object().unwrap().contains_key(*k))
        .collect();
    assert_eq!(tasks.len(), 39, "{tasks:?}");
    // The group reports every metric some member has, as lm-eval does (members without one
    // are left out of it).
    let group = &results["results"]["leaderboard"];
    for key in [
        "acc,none",
        "acc_norm,none",
        "exact_match,none",
        "prompt_level_strict_acc,none",
        "inst_level_loose_acc,none",
    ] {
        assert!(group[key].is_number(), "{key} in {group}");
    }
    // IFEval's checker ran (its instructions need punkt and langdetect).
    assert!(metric(&results, "leaderboard_ifeval", "inst_level_strict_acc,none") >= 0.0);
    // GPQA's options are shuffled by its hook with Python's global `random`: the gold letters
    // are lm-eval's, draws made while lm-eval builds the BBH group included.
    let targets: Vec<String> = ["diamond", "extended", "main"]
        .iter()
        .flat_map(|set| {
            let files = find_files(out.path(), &format!("samples_leaderboard_gpqa_{set}_"));
            let mut docs = read_lines(&files[0]);
            docs.sort_by_key(|s| s["doc_id"].as_u64());
            docs.into_iter()
                .map(|s| s["target"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(targets, lm_evals_gpqa_golds(&python, 2));
}

/// A task whose `process_docs` hook writes its worker's process id to `pid_file`, then sleeps.
fn sleeping_hook_task(dir: &Path, pid_file: &Path) {
    std::fs::write(
        dir.join("sleepy.yaml"),
        "task: sleepy\ndataset_path: openai/gsm8k\ndataset_name: main\ntest_split: test\n\
         output_type: loglikelihood\nprocess_docs: !function sleepy.process\n\
         doc_to_text: question\ndoc_to_target: answer\nmetric_list:\n  - metric: perplexity\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sleepy.py"),
        format!(
            "import os, time\ndef process(ds):\n    open({:?}, 'w').write(str(os.getpid()))\n    time.sleep(600)\n    return ds\n",
            pid_file.display().to_string()
        ),
    )
    .unwrap();
}

/// Whether process `pid` still runs (a zombie counts as ended).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn waits_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_hook_that_runs_long_is_stopped_and_never_outlives_assay() {
    let home = tempfile::tempdir().unwrap();
    let vars = hub_env(home.path());
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("worker.pid");
    sleeping_hook_task(dir.path(), &pid_file);
    let include = dir.path().to_str().unwrap();
    // --run-timeout reaches the hook: the run stops as a stop (exit 124), the worker is gone.
    let started = Instant::now();
    let (run, _out) = run_with(
        None,
        &[
            "--tasks",
            "sleepy",
            "--include-path",
            include,
            "--run-timeout",
            "4s",
        ],
        &borrowed(&vars),
    );
    assert_eq!(run.code, 124, "{}", run.stderr);
    assert!(run.stderr.contains("--run-timeout 4s"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(60));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    waits_for("the worker to end", || !alive(&pid));

    // SIGTERM (a scheduler's stop) is a stop too; killed outright, assay takes the worker along.
    for signal in ["TERM", "KILL"] {
        let _ = std::fs::remove_file(&pid_file);
        let out = tempfile::tempdir().unwrap();
        let mut child = Command::cargo_bin("assay")
            .unwrap()
            .args(["run", "--no-cache", "--no-record", "--tasks", "sleepy"])
            .args(["--include-path", include])
            .arg("--output-path")
            .arg(out.path())
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        waits_for("the hook to start", || {
            std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.is_empty())
        });
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let status = child.wait().unwrap();
        if signal == "TERM" {
            assert_eq!(status.code(), Some(130), "SIGTERM stops as Ctrl-C does");
        }
        waits_for("the worker to end", || !alive(&pid));
    }
}
