//! The bad-input corpus: files users did not write carefully, and machines that fail, given to
//! every command. Each case asserts the exit code and the message; none may panic, and none may
//! leave a half-written output or lose one written before. `--nocapture` prints the table.

mod common;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

/// One bad input.
struct Case {
    /// What is wrong.
    name: &'static str,
    /// The command line, with `{d}` standing for the case's folder.
    args: Vec<String>,
    /// The exit code expected.
    code: i32,
    /// Fragments the output (stdout and stderr) must hold.
    says: Vec<&'static str>,
    /// Run as an unprivileged user (for permission checks, which root would skip).
    unprivileged: bool,
}

fn case(name: &'static str, args: &str, code: i32, says: &[&'static str]) -> Case {
    Case {
        name,
        args: shell_words(args),
        code,
        says: says.to_vec(),
        unprivileged: false,
    }
}

/// Splits on spaces; `'…'` keeps spaces.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut quoted = false;
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Writes `files` (path relative to `dir`, bytes) into `dir`.
fn write_all(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

const TASK: &str = "task: tiny\ndataset_path: tiny/test.jsonl\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{q}}\"\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: gold\n";
const DOC: &str = "{\"q\": \"Two plus two?\", \"choices\": [\"4\", \"5\"], \"gold\": 0}\n";
const COMPLETION: &str = "{\"prompt_id\": \"p1\", \"generation_idx\": 0, \"prompt\": \"Mayor of Veldria?\", \"completion\": \" Ana Ruiz\", \"tokens\": 3, \"stop\": \"eos\", \"metadata\": {\"answer\": \"Ana Ruiz\"}}\n";
const RULE: &str = "{\"grader_instructions\": \"Same person?\", \"rule\": \"name\", \"reference_field\": \"answer\"}";

/// The folder of fixtures every case reads from: good files and bad ones.
fn fixtures(d: &Path) {
    let big_line = format!(
        "{{\"q\": \"{}\", \"choices\": [\"a\", \"b\"], \"gold\": 0}}\n",
        "x".repeat(8 << 20)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(DOC.repeat(200).as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let model = assay_dirs::default_model_path();
    let mut head = vec![0u8; 4096];
    std::fs::File::open(&model)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    write_all(
        d,
        &[
            ("t/ok/tiny.yaml", TASK.as_bytes()),
            ("t/truncated/tiny.yaml", &TASK.as_bytes()[..60]),
            ("t/bom/tiny.yaml", format!("\u{feff}{TASK}").as_bytes()),
            ("t/latin1/tiny.yaml", b"task: tiny\ndescription: \"caf\xe9\"\ndataset_path: tiny/test.jsonl\n"),
            ("t/badjinja/tiny.yaml", TASK.replace("{{q}}", "{{q").as_bytes()),
            ("t/nodata/tiny.yaml", TASK.replace("tiny/test.jsonl", "tiny/missing.jsonl").as_bytes()),
            ("t/dup/a.yaml", TASK.as_bytes()),
            ("t/dup/b.yaml", TASK.as_bytes()),
            ("t/gz/tiny.yaml", TASK.replace("tiny/test.jsonl", "tiny/test.jsonl.gz").as_bytes()),
            ("t/nan/tiny.yaml", format!("{TASK}num_fewshot: .nan\n").as_bytes()),
            ("t/parquet/tiny.yaml", TASK.replace("tiny/test.jsonl", "tiny/test.parquet").as_bytes()),
            ("t/dropall/tiny.yaml", format!("{TASK}process_docs: !function drop.nothing_left\n").as_bytes()),
            ("t/dropall/drop.py", b"def nothing_left(ds):\n    return ds.filter(lambda d: False)\n"),
            ("data/ok/tiny/test.jsonl", DOC.as_bytes()),
            ("data/truncated/tiny/test.jsonl", format!("{DOC}{}", &DOC[..20]).as_bytes()),
            ("data/latin1/tiny/test.jsonl", b"{\"q\": \"caf\xe9?\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n"),
            ("data/bom/tiny/test.jsonl", format!("\u{feff}{DOC}").as_bytes()),
            ("data/empty/tiny/test.jsonl", b""),
            ("data/nan/tiny/test.jsonl", b"{\"q\": NaN, \"choices\": [\"a\"], \"gold\": 0}\n"),
            ("data/gold/tiny/test.jsonl", b"{\"q\": \"?\", \"choices\": [\"a\", \"b\"], \"gold\": 7}\n"),
            ("data/huge/tiny/test.jsonl", big_line.as_bytes()),
            ("data/array/tiny/test.jsonl", b"[1, 2, 3]\n"),
            ("data/gz/tiny/test.jsonl.gz", &gz[..gz.len() / 2]),
            ("data/parquet/tiny/test.parquet", b"PAR1 a JSON file renamed, or a download cut short PAR1"),
            ("prompts/ok.jsonl", b"{\"prompt\": \"Mayor of Veldria?\"}\n"),
            ("prompts/empty.jsonl", b""),
            ("prompts/notjson.jsonl", b"{\"prompt\": \"a\"}\nprompt: b\n"),
            ("prompts/bom.jsonl", "\u{feff}{\"prompt\": \"Mayor of Veldria?\"}\n".as_bytes()),
            ("prompts/inf.jsonl", b"{\"prompt\": \"a\", \"metadata\": {\"x\": Infinity}}\n"),
            ("prompts/dup_ids.jsonl", b"{\"id\": \"a\", \"prompt\": \"one\"}\n{\"id\": \"a\", \"prompt\": \"two\"}\n"),
            ("prompts/no_prompt.jsonl", b"{\"id\": \"a\", \"text\": 3}\n"),
            ("completions/ok.jsonl", COMPLETION.as_bytes()),
            ("completions/garbage.jsonl", b"garbage\n"),
            ("completions/cut.jsonl", format!("{COMPLETION}{}", &COMPLETION[..30]).as_bytes()),
            ("graders/rule.json", RULE.as_bytes()),
            ("graders/no_instructions.json", b"{\"rule\": \"exact\"}"),
            ("graders/truncated.json", &RULE.as_bytes()[..40]),
            ("graders/nan.json", b"{\"grader_instructions\": \"x\", \"rule\": \"exact\", \"price_per_call\": NaN}"),
            ("graders/unknown_rule.json", b"{\"grader_instructions\": \"x\", \"rule\": \"vibes\"}"),
            ("graders/closed_port.json", b"{\"grader_instructions\": \"x\", \"grader_model\": \"judge\", \"base_url\": \"http://127.0.0.1:9/v1\"}"),
            ("ppl/no_response.jsonl", b"{\"prompt\": \"a\"}\n"),
            ("ppl/report_cut.json", b"{\"setup\": {\"model\": \"m\"}, \"items\": ["),
            ("results/cut.json", b"{\"results\": {\"arc_easy\": {\"acc,none\": 0.5"),
            ("results/nan.json", b"{\"results\": {\"arc_easy\": {\"acc,none\": NaN}}, \"configs\": {}}"),
            ("results/no_results.json", b"{\"config\": {}}"),
            ("models/not.gguf", b"this is not a model file at all"),
            ("models/head.gguf", &head),
            ("models/empty.gguf", b""),
            ("cache/garbage.sqlite", b"definitely not SQLite, but long enough to be read as a header....."),
            ("formats/bad.yaml", b"sandwich: [\n"),
            ("train/bad.jsonl", b"{\"text\": \"fine\"}\n{\"text\": \n"),
            ("registry/notadb.sqlite", b"not a database, not at all, not even close......................"),
        ],
    );
    std::fs::create_dir_all(d.join("data/dir/tiny/test.jsonl")).unwrap();
    std::fs::create_dir_all(d.join("dataset_exists")).unwrap();
}

/// Every case but the ones that need a special machine state.
fn corpus() -> Vec<Case> {
    let run = "run --no-record --no-cache --data-dir {d}/data";
    let mut cases = vec![
        // run: task files
        case("unknown task", &format!("{run}/ok --tasks tinny --include-path {{d}}/t/ok"), 1, &["unknown task `tinny`", "did you mean tiny?"]),
        case("task YAML cut short", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/truncated"), 1, &["tiny.yaml: line"]),
        case("task YAML not UTF-8", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/latin1"), 1, &["tiny.yaml", "UTF-8"]),
        case("task YAML with a broken template", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/badjinja"), 1, &["tiny", "doc_to_text"]),
        case("task YAML naming a missing data file", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/nodata"), 1, &["tiny/missing.jsonl"]),
        case("two task files with one name", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/dup"), 1, &["is also defined in", "a.yaml", "b.yaml"]),
        case("task YAML with NaN few-shot", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/nan"), 1, &["tiny.yaml", "num_fewshot"]),
        case("process_docs drops every document", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/dropall"), 1, &["drop.nothing_left", "returned no documents from the 1"]),
        case("include path missing", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/nowhere"), 1, &["t/nowhere"]),
        // run: data files
        case("dataset cut mid-line", &format!("{run}/truncated --tasks tiny --include-path {{d}}/t/ok"), 1, &["test.jsonl:2", "invalid JSON"]),
        case("dataset not UTF-8", &format!("{run}/latin1 --tasks tiny --include-path {{d}}/t/ok"), 1, &["test.jsonl:1", "UTF-8"]),
        case("dataset empty", &format!("{run}/empty --tasks tiny --include-path {{d}}/t/ok"), 1, &["test.jsonl is empty", "no documents"]),
        case("dataset with NaN", &format!("{run}/nan --tasks tiny --include-path {{d}}/t/ok"), 1, &["test.jsonl:1", "invalid JSON"]),
        case("dataset line not an object", &format!("{run}/array --tasks tiny --include-path {{d}}/t/ok"), 1, &["test.jsonl:1", "object"]),
        case("dataset gold index out of range", &format!("{run}/gold --tasks tiny --include-path {{d}}/t/ok --limit 1"), 1, &["tiny", "7"]),
        case("dataset .gz cut short", &format!("{run}/gz --tasks tiny --include-path {{d}}/t/gz"), 1, &["test.jsonl.gz"]),
        case("dataset .parquet not Parquet", &format!("{run}/parquet --tasks tiny --include-path {{d}}/t/parquet"), 1, &["test.parquet: cannot read it as Parquet"]),
        case("dataset path is a folder", &format!("{run}/dir --tasks tiny --include-path {{d}}/t/ok"), 1, &["test.jsonl is a folder"]),
        case("data folder missing", "run --no-record --tasks arc_easy --data-dir {d}/nowhere", 1, &["nowhere"]),
        // run: options
        case("--limit 0", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --limit 0"), 1, &["--limit 0"]),
        case("--limit not a number", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --limit lots"), 1, &["--limit \"lots\""]),
        case("--gen-kwargs not k=v", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --gen-kwargs temperature"), 1, &["--gen-kwargs", "key=value"]),
        case("--run-timeout nonsense", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --run-timeout soon"), 2, &["--run-timeout", "expected e.g."]),
        case("--max-memory unit unknown", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --max-memory 3parsecs"), 2, &["unknown unit"]),
        case("--output-path is a file", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --output-path {{d}}/prompts/ok.jsonl"), 1, &["prompts/ok.jsonl"]),
        // models
        case("model file missing", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --model {{d}}/models/none.gguf"), 1, &["model file not found", "none.gguf"]),
        case("model file not GGUF", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --model {{d}}/models/not.gguf"), 1, &["not.gguf", "GGUF"]),
        case("model file cut short", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --model {{d}}/models/head.gguf"), 1, &["head.gguf"]),
        case("model file empty", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --model {{d}}/models/empty.gguf"), 1, &["empty.gguf"]),
        case("model is a folder", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --model {{d}}/models"), 1, &["models"]),
        case("--threads beyond ggml's maximum", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --threads 100000"), 1, &["--threads 100000", "at most 512"]),
        case("--ctx-size beyond memory", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --ctx-size 16000000"), 1, &["--ctx-size 16000000", "GiB of memory are available"]),
        case("--ctx-size beyond any model", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --ctx-size 3000000000"), 1, &["at most 16777216 tokens"]),
        case("model larger than --max-memory", &format!("{run}/ok --tasks tiny --include-path {{d}}/t/ok --max-memory 10M"), 1, &["--max-memory is 10.0 MiB", "the model alone does not fit"]),
        // sample
        case("sample: N = 0", "sample --prompts {d}/prompts/ok.jsonl --num-generations 0 -o {d}/out/s.jsonl", 1, &["--num-generations 0"]),
        case("sample: empty prompts", "sample --prompts {d}/prompts/empty.jsonl -o {d}/out/s.jsonl", 1, &["prompts/empty.jsonl", "no prompts"]),
        case("sample: prompt line not JSON", "sample --prompts {d}/prompts/notjson.jsonl -o {d}/out/s.jsonl", 1, &["notjson.jsonl:2"]),
        case("sample: Infinity in metadata", "sample --prompts {d}/prompts/inf.jsonl -o {d}/out/s.jsonl", 1, &["inf.jsonl:1"]),
        case("sample: output holds something else", "sample --prompts {d}/prompts/ok.jsonl -o {d}/completions/garbage.jsonl", 1, &["garbage.jsonl:1", "not a completion line"]),
        case("sample: output is a folder", "sample --prompts {d}/prompts/ok.jsonl -o {d}/out", 1, &["out"]),
        // grade
        case("grade: no grader_instructions", "grade --completions {d}/completions/ok.jsonl --grader {d}/graders/no_instructions.json -o {d}/out/ds", 1, &["no_instructions.json", "grader_instructions"]),
        case("grade: config cut short", "grade --completions {d}/completions/ok.jsonl --grader {d}/graders/truncated.json -o {d}/out/ds", 1, &["truncated.json", "line 1"]),
        case("grade: NaN in config", "grade --completions {d}/completions/ok.jsonl --grader {d}/graders/nan.json -o {d}/out/ds", 1, &["nan.json"]),
        case("grade: unknown rule", "grade --completions {d}/completions/ok.jsonl --grader {d}/graders/unknown_rule.json -o {d}/out/ds", 1, &["unknown_rule.json", "vibes"]),
        case("grade: completions not JSON", "grade --completions {d}/completions/garbage.jsonl --grader {d}/graders/rule.json -o {d}/out/ds", 1, &["garbage.jsonl:1"]),
        case("grade: output exists", "grade --completions {d}/completions/ok.jsonl --grader {d}/graders/rule.json -o {d}/dataset_exists", 1, &["dataset_exists", "exists"]),
        case("grade: judge unreachable", "grade --completions {d}/completions/ok.jsonl --grader {d}/graders/closed_port.json -o {d}/out/ds --cache {d}/out/judge.sqlite", 1, &["127.0.0.1:9", "is the server running"]),
        case("grade: --timeout 0", "grade --completions {d}/completions/ok.jsonl --grader {d}/graders/rule.json -o {d}/out/ds --timeout 0", 2, &["positive number of seconds"]),
        // generate
        case("generate: unknown format", "generate --prompts {d}/prompts/ok.jsonl --formats toast -o {d}/out/g", 1, &["toast"]),
        case("generate: format file not YAML", "generate --prompts {d}/prompts/ok.jsonl --format-file {d}/formats/bad.yaml --formats naked -o {d}/out/g", 1, &["bad.yaml"]),
        case("generate: no usable prompt", "generate --prompts {d}/prompts/no_prompt.jsonl -o {d}/out/g", 1, &["no_prompt.jsonl"]),
        // ppl
        case("ppl: item without response", "ppl --data {d}/ppl/no_response.jsonl", 1, &["no_response.jsonl:1", "response"]),
        case("ppl: report cut short", "ppl --compare {d}/ppl/report_cut.json {d}/ppl/report_cut.json", 1, &["report_cut.json"]),
        // convert, decontam
        case("convert: unknown benchmark", "convert --data-dir {d}/data/ok --benchmarks nosuch -o {d}/out/c.jsonl", 1, &["nosuch"]),
        case("decontam: training file missing", "decontam --train {d}/train/none.jsonl --test {d}/prompts/ok.jsonl", 1, &["train/none.jsonl"]),
        // Training sets are large and messy: a bad line is skipped and counted, not fatal.
        case("decontam: training line not JSON", "decontam --train {d}/train/bad.jsonl --test {d}/prompts/ok.jsonl", 0, &["1 lines were not JSON objects with text and were skipped"]),
        // registry, compare, report
        case("import: results cut short", "runs import {d}/results/cut.json --registry {d}/out/r.sqlite", 1, &["cut.json"]),
        case("import: NaN in results", "runs import {d}/results/nan.json --registry {d}/out/r.sqlite", 1, &["nan.json"]),
        case("import: not a results file", "runs import {d}/results/no_results.json --registry {d}/out/r.sqlite", 1, &["no_results.json", "results"]),
        case("registry not SQLite", "runs list --registry {d}/registry/notadb.sqlite", 1, &["notadb.sqlite"]),
        case("compare: unknown run", "compare base ft --registry {d}/out/r2.sqlite", 1, &["base"]),
        case("report: empty registry", "report latest --registry {d}/out/r3.sqlite -o {d}/out/r.html", 1, &["latest"]),
        // cache, index, tasks
        case("cache file not SQLite", "cache stats --cache {d}/cache/garbage.sqlite", 1, &["garbage.sqlite"]),
        case("index: folder missing", "index {d}/nowhere", 1, &["nowhere"]),
        case("tasks: include path is a file", "tasks --include-path {d}/prompts/ok.jsonl", 1, &["ok.jsonl"]),
    ];
    cases.push(Case {
        unprivileged: true,
        ..case(
            "index: output folder not writable",
            "index {d}/prompts --markdown {d}/locked/index.md",
            1,
            &["locked/index.md", "Permission denied"],
        )
    });
    cases
}

/// The command for `case`, as an unprivileged user when it asks and we are root.
fn command(case: &Case, dir: &Path) -> Command {
    let args: Vec<OsString> = case
        .args
        .iter()
        .map(|a| a.replace("{d}", &dir.display().to_string()).into())
        .collect();
    let mut cmd = Command::cargo_bin("assay").unwrap();
    if case.unprivileged && is_root() {
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(cmd.get_program())
            .args(&args);
        cmd = wrapped;
    } else {
        cmd.args(&args);
    }
    cmd
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn every_bad_input_gets_its_exit_code_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixtures(d);
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::create_dir_all(d.join("locked")).unwrap();
    // The unprivileged user may enter the folder but not write in `locked`.
    let mode = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode(d, 0o755);
    mode(&d.join("locked"), 0o555);
    let mut table = vec![format!("{:<44} {:>4}  message", "case", "exit")];
    let mut wrong = Vec::new();
    let cases = corpus();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for case in &cases {
        let out = command(case, d).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
        let message = stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or_else(|| stderr.lines().last().unwrap_or(""))
            .to_string();
        table.push(format!(
            "{:<44} {code:>4}  {}",
            case.name,
            message.chars().take(150).collect::<String>()
        ));
        let missing: Vec<_> = case.says.iter().filter(|s| !said.contains(*s)).collect();
        if code != case.code || !missing.is_empty() || stderr.contains("panicked") {
            wrong.push(format!(
                "{}: exit {code} (expected {}), missing {missing:?}\n{stderr}",
                case.name, case.code
            ));
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    // Nothing half-written was left beside the outputs.
    let partial: Vec<PathBuf> = common::walk(d)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

/// A full disk (a 64 KiB tmpfs in a mount namespace of its own): the command fails saying so,
/// the file it would have replaced is intact, and no partial file is left.
#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_older_output() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    let assay = Command::cargo_bin("assay")
        .unwrap()
        .get_program()
        .to_owned();
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs {full} && printf 'older results' > {full}/c.jsonl && \
         {assay} convert --data-dir {data} --benchmarks arc_easy,mmlu,hellaswag -o {full}/c.jsonl; code=$?; \
         cat {full}/c.jsonl; echo; ls -a {full}; exit $code",
        full = full.display(),
        assay = Path::new(&assay).display(),
        data = common::data_dir().display(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stdout.contains("older results"), "{stdout}");
    assert!(!stdout.contains(".partial"), "{stdout}");
}

/// A server whose completion replies never end (no length, bytes until the client hangs up):
/// the request fails naming the cap, and memory does not grow without bound.
#[test]
fn an_endless_reply_is_cut_off() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let (line, _) = common::read_http_request(&mut stream);
                if line.contains("/models") {
                    let body = "{\"object\": \"list\", \"data\": [{\"id\": \"m\", \"object\": \"model\"}]}";
                    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    return;
                }
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{{\"choices\": [{{\"text\": \"");
                let chunk = vec![b'a'; 1 << 20];
                for _ in 0..512 {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let out = Command::cargo_bin("assay")
        .unwrap()
        .args([
            "run",
            "--no-record",
            "--no-cache",
            "--backend",
            "openai",
            "--model-name",
            "m",
            "--tasks",
            "gsm8k",
            "--limit",
            "1",
            "--max-retries",
            "0",
        ])
        .arg("--base-url")
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .arg("--data-dir")
        .arg(common::data_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("longer than 64 MiB"), "{stderr}");
}
