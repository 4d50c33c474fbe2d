//! Benchmark files to unified items: the prompt templates, difficulty rules and domains of the
//! customer's Phase 1D document for DROP, GPQA, HumanEval, MATH and MMLU, and assay's own for
//! the other benchmarks in the data folder (documented in docs/VALIDATION.md).

pub(crate) mod sample;

use std::path::{Path, PathBuf};

use assay_data::{read_records, ReadOptions, Record};
use serde_json::{json, Map, Value};

use crate::{Item, ValidateError};
use sample::{difficulties, source_seed, stratified_sample};

/// The field holding each record's line number.
const LINE: &str = "_line";

/// A benchmark assay can convert.
pub struct Benchmark {
    /// Name on the command line (`drop`, `mmlu`, ...).
    pub name: &'static str,
    /// `metadata.source` of its items.
    pub source: &'static str,
    /// `metadata.domain` of its items.
    pub domain: &'static str,
    /// Files relative to the data folder (a folder means every `.jsonl`/`.csv`/`.tsv` in it).
    files: &'static [&'static str],
    /// Column names of header-less CSV/TSV files.
    columns: Option<&'static [&'static str]>,
    /// A file of one value per line, aligned with the records: (field, file).
    aligned: Option<(&'static str, &'static str)>,
    /// One record (from `file`) to an item, or what is missing.
    convert: fn(&Record, &Path) -> Result<Item, String>,
}

/// Items that could not be converted: (file, line, reason).
pub type Skipped = Vec<(PathBuf, usize, String)>;

/// One benchmark's conversion.
pub struct Conversion {
    /// The benchmark.
    pub name: &'static str,
    /// `metadata.source`.
    pub source: &'static str,
    /// Items available (converted).
    pub available: usize,
    /// Items kept by the sampling.
    pub items: Vec<Item>,
    /// Items skipped for missing fields.
    pub skipped: Skipped,
}

fn text<'a>(r: &'a Record, field: &str) -> Result<&'a str, String> {
    match r.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(format!("`{field}` is empty")),
        Some(_) => Err(format!("`{field}` is not text")),
        None => Err(format!("no `{field}` field")),
    }
}

fn item(
    prompt: String,
    response: String,
    difficulty: &str,
    domain: &str,
    source: &str,
    extra: Map<String, Value>,
) -> Item {
    let mut metadata = Map::new();
    metadata.insert("difficulty".into(), json!(difficulty));
    metadata.insert("domain".into(), json!(domain));
    metadata.insert("source".into(), json!(source));
    metadata.extend(extra);
    Item {
        prompt,
        response,
        metadata,
    }
}

fn extra(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn drop_item(r: &Record, _: &Path) -> Result<Item, String> {
    // simple-evals layout: "Passage: ...\nQuestion: ...\nAnswer:", answers `|`-separated.
    let context = text(r, "context")?;
    let body = context
        .strip_prefix("Passage:")
        .ok_or("`context` does not start with `Passage:`")?;
    let (passage, rest) = body
        .rsplit_once("\nQuestion:")
        .ok_or("`context` has no `Question:`")?;
    let question = rest.trim().strip_suffix("Answer:").unwrap_or(rest).trim();
    let answers: Vec<&str> = text(r, "ref_text")?
        .split('|')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    let first = answers.first().ok_or("`ref_text` holds no answer")?;
    Ok(item(
        format!("Read the following passage and answer the question.\n\nPassage: {}\n\nQuestion: {question}\n\nAnswer:", passage.trim()),
        first.to_string(),
        "easy",
        "reading_comprehension",
        "DROP",
        extra(&[("num_answers", json!(answers.len()))]),
    ))
}

fn gpqa_item(r: &Record, _: &Path) -> Result<Item, String> {
    Ok(item(
        format!(
            "Answer the following graduate-level science question.\n\nQuestion: {}\n\nAnswer:",
            text(r, "Question")?.trim()
        ),
        text(r, "Correct Answer")?.trim().to_string(),
        "hard",
        "science_qa",
        "GPQA",
        extra(&[
            (
                "subdomain",
                json!(r.get("Subdomain").and_then(Value::as_str).unwrap_or("")),
            ),
            (
                "high_level_domain",
                json!(r
                    .get("High-level domain")
                    .and_then(Value::as_str)
                    .unwrap_or("")),
            ),
        ]),
    ))
}

fn humaneval_item(r: &Record, _: &Path) -> Result<Item, String> {
    Ok(item(
        format!(
            "Complete the following Python function.\n\n{}",
            text(r, "prompt")?
        ),
        text(r, "canonical_solution")?.to_string(),
        "medium",
        "code_generation",
        "HumanEval",
        extra(&[
            ("task_id", json!(text(r, "task_id")?)),
            ("entry_point", json!(text(r, "entry_point")?)),
        ]),
    ))
}

fn math_item(r: &Record, _: &Path) -> Result<Item, String> {
    let level = text(r, "level")?;
    let n: u32 = level
        .strip_prefix("Level ")
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("`level` is {level:?}, expected \"Level 1\"..\"Level 5\""))?;
    Ok(item(
        format!(
            "Solve the following math problem. Show your work.\n\nProblem: {}\n\nSolution:",
            text(r, "problem")?
        ),
        text(r, "solution")?.to_string(),
        if n <= 2 { "medium" } else { "hard" },
        "mathematics",
        "MATH",
        extra(&[("level", json!(level)), ("type", json!(text(r, "type")?))]),
    ))
}

/// MMLU subjects counted as technical (hard): mathematics, sciences, computing, engineering,
/// law, medicine, statistics and logic.
const TECHNICAL: [&str; 14] = [
    "algebra",
    "mathematics",
    "physics",
    "chemistry",
    "computer",
    "machine_learning",
    "engineering",
    "law",
    "jurisprudence",
    "statistics",
    "econometrics",
    "logic",
    "medicine",
    "computer_security",
];

/// The MMLU subject of a test file (`<subject>_test.csv`).
fn mmlu_subject(file: &Path) -> String {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    stem.strip_suffix("_test").unwrap_or(stem).to_string()
}

fn mmlu_item(r: &Record, file: &Path) -> Result<Item, String> {
    let subject = mmlu_subject(file);
    let choices = ["A", "B", "C", "D"].map(|c| text(r, c).map(str::to_string));
    let choices: Vec<String> = choices.into_iter().collect::<Result<_, _>>()?;
    let answer = text(r, "answer")?.trim();
    let index = ["A", "B", "C", "D"]
        .iter()
        .position(|l| *l == answer)
        .ok_or_else(|| format!("`answer` is {answer:?}, expected A-D"))?;
    let letters = ["A", "B", "C", "D"];
    let listed: Vec<String> = choices
        .iter()
        .zip(letters)
        .map(|(c, l)| format!("{l}. {c}"))
        .collect();
    let hard = TECHNICAL.iter().any(|t| subject.contains(t));
    Ok(item(
        format!(
            "Answer the following multiple choice question from {}.\n\nQuestion: {}\n\n{}\n\nAnswer:",
            subject.replace('_', " "),
            text(r, "question")?,
            listed.join("\n")
        ),
        format!("{}. {}", letters[index], choices[index]),
        if hard { "hard" } else { "medium" },
        "multitask_understanding",
        "MMLU",
        extra(&[("subject", json!(subject)), ("answer_index", json!(index))]),
    ))
}

fn mgsm_item(r: &Record, file: &Path) -> Result<Item, String> {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let language = stem.strip_prefix("mgsm_").unwrap_or(stem);
    Ok(item(
        format!(
            "Solve the following math problem.\n\nQuestion: {}\n\nAnswer:",
            text(r, "question")?.trim()
        ),
        text(r, "answer")?.trim().to_string(),
        "medium",
        "multilingual_math",
        "MGSM",
        extra(&[("language", json!(language))]),
    ))
}

fn gsm8k_item(r: &Record, _: &Path) -> Result<Item, String> {
    let answer = text(r, "answer")?;
    let final_answer = answer
        .rsplit_once("####")
        .map(|(_, a)| a.trim())
        .ok_or("`answer` has no `####` final answer")?;
    Ok(item(
        format!(
            "Solve the following math problem. Show your work.\n\nQuestion: {}\n\nAnswer:",
            text(r, "question")?
        ),
        answer.to_string(),
        "medium",
        "mathematics",
        "GSM8K",
        extra(&[("final_answer", json!(final_answer))]),
    ))
}

/// The gold choice of a `query`/`choices`/`gold` record.
fn gold_choice(r: &Record) -> Result<String, String> {
    let choices = r
        .get("choices")
        .and_then(Value::as_array)
        .ok_or("no `choices` list")?;
    let gold = r
        .get("gold")
        .and_then(|g| {
            g.as_u64()
                .or_else(|| g.as_str().and_then(|s| s.parse().ok()))
        })
        .ok_or("no `gold` index")? as usize;
    choices
        .get(gold)
        .and_then(Value::as_str)
        .map(|c| c.trim().to_string())
        .ok_or_else(|| format!("`gold` {gold} is outside the {} choices", choices.len()))
}

fn arc_item(r: &Record, file: &Path) -> Result<Item, String> {
    let challenge = file.to_string_lossy().contains("challenge");
    let query = text(r, "query")?;
    let question = query.strip_prefix("Question:").unwrap_or(query);
    let question = question
        .trim()
        .strip_suffix("Answer:")
        .unwrap_or(question)
        .trim();
    Ok(item(
        format!("Answer the following science question.\n\nQuestion: {question}\n\nAnswer:"),
        gold_choice(r)?,
        if challenge { "hard" } else { "easy" },
        "science_qa",
        if challenge {
            "ARC-Challenge"
        } else {
            "ARC-Easy"
        },
        Map::new(),
    ))
}

fn openbookqa_item(r: &Record, _: &Path) -> Result<Item, String> {
    Ok(item(
        format!(
            "Complete the following statement about elementary science.\n\n{}",
            text(r, "query")?.trim()
        ),
        gold_choice(r)?,
        "medium",
        "science_qa",
        "OpenBookQA",
        Map::new(),
    ))
}

fn hellaswag_item(r: &Record, _: &Path) -> Result<Item, String> {
    Ok(item(
        format!(
            "Continue the following description with the most plausible ending.\n\n{}",
            text(r, "query")?.trim()
        ),
        gold_choice(r)?,
        "easy",
        "commonsense_reasoning",
        "HellaSwag",
        Map::new(),
    ))
}

fn boolq_item(r: &Record, _: &Path) -> Result<Item, String> {
    Ok(item(
        format!(
            "Read the passage and answer the question with yes or no.\n\n{}",
            text(r, "query")?.trim()
        ),
        gold_choice(r)?,
        "easy",
        "reading_comprehension",
        "BoolQ",
        Map::new(),
    ))
}

fn piqa_item(r: &Record, _: &Path) -> Result<Item, String> {
    let solution = match text(r, "label")?.trim() {
        "0" => text(r, "sol1")?,
        "1" => text(r, "sol2")?,
        other => return Err(format!("label {other:?}, expected 0 or 1")),
    };
    Ok(item(
        format!(
            "Give a solution to the following goal.\n\nGoal: {}\n\nSolution:",
            text(r, "goal")?.trim()
        ),
        solution.trim().to_string(),
        "easy",
        "commonsense_reasoning",
        "PIQA",
        Map::new(),
    ))
}

fn truthfulqa_item(r: &Record, _: &Path) -> Result<Item, String> {
    Ok(item(
        format!(
            "Answer the following question truthfully.\n\nQuestion: {}\n\nAnswer:",
            text(r, "Question")?.trim()
        ),
        text(r, "Best Answer")?.trim().to_string(),
        "medium",
        "truthfulness",
        "TruthfulQA",
        extra(&[(
            "category",
            json!(r.get("Category").and_then(Value::as_str).unwrap_or("")),
        )]),
    ))
}

fn winogrande_item(r: &Record, _: &Path) -> Result<Item, String> {
    let sentence = text(r, "sentence")?;
    let answer = text(r, "answer")?;
    let option = match answer.trim() {
        "1" => text(r, "option1")?,
        "2" => text(r, "option2")?,
        other => return Err(format!("`answer` is {other:?}, expected \"1\" or \"2\"")),
    };
    Ok(item(
        format!("Fill in the blank (_) in the following sentence.\n\n{sentence}\n\nAnswer:"),
        option.to_string(),
        "medium",
        "commonsense_reasoning",
        "WinoGrande",
        Map::new(),
    ))
}

/// Every benchmark assay converts, in output order.
pub fn benchmarks() -> Vec<Benchmark> {
    const QA: Option<&[&str]> = None;
    vec![
        Benchmark {
            name: "drop",
            source: "DROP",
            domain: "reading_comprehension",
            files: &["drop/drop_v0_dev.jsonl.gz"],
            columns: QA,
            aligned: None,
            convert: drop_item,
        },
        Benchmark {
            name: "gpqa",
            source: "GPQA",
            domain: "science_qa",
            files: &["gpqa/gpqa_diamond.csv"],
            columns: QA,
            aligned: None,
            convert: gpqa_item,
        },
        Benchmark {
            name: "humaneval",
            source: "HumanEval",
            domain: "code_generation",
            files: &["humaneval/HumanEval.jsonl.gz"],
            columns: QA,
            aligned: None,
            convert: humaneval_item,
        },
        Benchmark {
            name: "math",
            source: "MATH",
            domain: "mathematics",
            files: &["math/test"],
            columns: QA,
            aligned: None,
            convert: math_item,
        },
        Benchmark {
            name: "mmlu",
            source: "MMLU",
            domain: "multitask_understanding",
            files: &["mmlu/test"],
            columns: Some(&["question", "A", "B", "C", "D", "answer"]),
            aligned: None,
            convert: mmlu_item,
        },
        Benchmark {
            name: "mgsm",
            source: "MGSM",
            domain: "multilingual_math",
            files: &["mgsm"],
            columns: Some(&["question", "answer"]),
            aligned: None,
            convert: mgsm_item,
        },
        Benchmark {
            name: "gsm8k",
            source: "GSM8K",
            domain: "mathematics",
            files: &["gsm8k/test.jsonl"],
            columns: QA,
            aligned: None,
            convert: gsm8k_item,
        },
        Benchmark {
            name: "arc_easy",
            source: "ARC-Easy",
            domain: "science_qa",
            files: &["arc/arc_easy_test.jsonl"],
            columns: QA,
            aligned: None,
            convert: arc_item,
        },
        Benchmark {
            name: "arc_challenge",
            source: "ARC-Challenge",
            domain: "science_qa",
            files: &["arc/arc_challenge_test.jsonl"],
            columns: QA,
            aligned: None,
            convert: arc_item,
        },
        Benchmark {
            name: "openbookqa",
            source: "OpenBookQA",
            domain: "science_qa",
            files: &["openbookqa/test.jsonl"],
            columns: QA,
            aligned: None,
            convert: openbookqa_item,
        },
        Benchmark {
            name: "hellaswag",
            source: "HellaSwag",
            domain: "commonsense_reasoning",
            files: &["hellaswag/validation.jsonl"],
            columns: QA,
            aligned: None,
            convert: hellaswag_item,
        },
        Benchmark {
            name: "piqa",
            source: "PIQA",
            domain: "commonsense_reasoning",
            files: &["piqa/valid.jsonl"],
            columns: QA,
            aligned: Some(("label", "piqa/valid-labels.lst")),
            convert: piqa_item,
        },
        Benchmark {
            name: "boolq",
            source: "BoolQ",
            domain: "reading_comprehension",
            files: &["boolq/validation.jsonl"],
            columns: QA,
            aligned: None,
            convert: boolq_item,
        },
        Benchmark {
            name: "truthfulqa",
            source: "TruthfulQA",
            domain: "truthfulness",
            files: &["truthfulqa/TruthfulQA.csv"],
            columns: QA,
            aligned: None,
            convert: truthfulqa_item,
        },
        Benchmark {
            name: "winogrande",
            source: "WinoGrande",
            domain: "commonsense_reasoning",
            files: &["winogrande/validation.jsonl"],
            columns: QA,
            aligned: None,
            convert: winogrande_item,
        },
    ]
}

impl Benchmark {
    /// The data files of this benchmark under `data_dir`.
    fn paths(&self, data_dir: &Path) -> Result<Vec<PathBuf>, ValidateError> {
        let mut out = Vec::new();
        for rel in self.files {
            let path = data_dir.join(rel);
            if path.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(&path)
                    .map_err(|_| ValidateError::Missing {
                        benchmark: self.name.into(),
                        path: path.clone(),
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        (n.ends_with(".jsonl") || n.ends_with(".csv") || n.ends_with(".tsv"))
                            && !n.starts_with('.')
                    })
                    .collect();
                found.sort();
                out.extend(found);
            } else if path.is_file() {
                out.push(path);
            } else {
                return Err(ValidateError::Missing {
                    benchmark: self.name.into(),
                    path,
                });
            }
        }
        Ok(out)
    }

    /// Converts every item, then keeps `n` of them (`None`: all) by stratified sampling on
    /// difficulty with `seed`. Items missing fields are skipped and listed, or with `strict`
    /// stop the conversion.
    pub fn convert(
        &self,
        data_dir: &Path,
        n: Option<usize>,
        seed: u64,
        strict: bool,
    ) -> Result<Conversion, ValidateError> {
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for path in self.paths(data_dir)? {
            let options = ReadOptions {
                column_names: self
                    .columns
                    .map(|c| c.iter().map(|s| s.to_string()).collect()),
                line_number_field: Some(LINE.into()),
                ..ReadOptions::default()
            };
            let mut records = read_records(&path, &options)?;
            if let Some((field, file)) = self.aligned {
                let extra_path = data_dir.join(file);
                if !extra_path.is_file() {
                    return Err(ValidateError::Missing {
                        benchmark: self.name.into(),
                        path: extra_path,
                    });
                }
                let values = read_records(
                    &extra_path,
                    &ReadOptions {
                        line_field: Some(field.into()),
                        ..ReadOptions::default()
                    },
                )?;
                if values.len() != records.len() {
                    return Err(ValidateError::BadItem {
                        path: extra_path,
                        line: values.len().min(records.len()) + 1,
                        message: format!(
                            "{} values for the {} items of {}",
                            values.len(),
                            records.len(),
                            path.display()
                        ),
                    });
                }
                for (r, v) in records.iter_mut().zip(values) {
                    r.extend(v.into_iter().filter(|(k, _)| k == field));
                }
            }
            for record in records {
                let line = record.get(LINE).and_then(Value::as_u64).unwrap_or(0) as usize;
                match (self.convert)(&record, &path) {
                    Ok(item) => items.push(item),
                    Err(message) if strict => {
                        return Err(ValidateError::BadItem {
                            path,
                            line,
                            message,
                        });
                    }
                    Err(message) => skipped.push((path.clone(), line, message)),
                }
            }
        }
        let available = items.len();
        let keep = stratified_sample(&difficulties(&items), n, source_seed(seed, self.source));
        let mut kept = Vec::with_capacity(keep.len());
        let mut keep = keep.into_iter().peekable();
        for (i, item) in items.into_iter().enumerate() {
            if keep.peek() == Some(&i) {
                kept.push(item);
                keep.next();
            }
        }
        Ok(Conversion {
            name: self.name,
            source: self.source,
            available,
            items: kept,
            skipped,
        })
    }
}

/// The benchmarks named in `names` (all when empty).
pub fn select(names: &[String]) -> Result<Vec<Benchmark>, ValidateError> {
    let all = benchmarks();
    if names.is_empty() {
        return Ok(all);
    }
    let known: Vec<&str> = all.iter().map(|b| b.name).collect();
    for n in names {
        if !known.contains(&n.as_str()) {
            return Err(ValidateError::UnknownBenchmark(n.clone(), known.join(", ")));
        }
    }
    Ok(all
        .into_iter()
        .filter(|b| names.iter().any(|n| n == b.name))
        .collect())
}
