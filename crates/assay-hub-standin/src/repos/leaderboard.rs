//! The Open LLM Leaderboard v2 datasets that the data folder does not hold, in their real
//! layouts and schemas: `SaylorTwift/bbh` (a config per subtask, `input`/`target`),
//! `TIGER-Lab/MMLU-Pro` (ten options, `answer` letter and `answer_index`), `TAUR-Lab/MuSR`
//! (a split per domain, `choices` as a Python list literal) and
//! `wis-k/instruction-following-eval` (`instruction_id_list` with a `kwargs` struct per
//! instruction). Their rows are written here by assay, generated from small templates with
//! answers computed by the code: none is copied from the real datasets, and their scores say
//! nothing about a model. MATH-hard's `DigitalLearningGmbH/MATH-lighteval` holds the data
//! folder's MATH rows; GPQA lives in [`super::choice`].

use std::path::Path;

use assay_data::Record;
use serde_json::{json, Value};

use super::generation::{math_test_rows, MATH_SUBJECTS};
use super::{branch, to_record, write_card_owned, write_parquet, BuildError};

/// Rows written per split: the leaderboard check runs `--limit 5`.
const ROWS: usize = 6;

/// The BBH subtasks with their answer options, as lm-eval's leaderboard files list them.
const BBH: [(&str, Answers); 24] = [
    ("boolean_expressions", Answers::Boolean),
    ("causal_judgement", Answers::YesNo("Yes", "No")),
    ("date_understanding", Answers::Letters(6)),
    ("disambiguation_qa", Answers::Letters(3)),
    ("formal_fallacies", Answers::YesNo("valid", "invalid")),
    ("geometric_shapes", Answers::Letters(11)),
    ("hyperbaton", Answers::Letters(2)),
    ("logical_deduction_five_objects", Answers::Letters(5)),
    ("logical_deduction_seven_objects", Answers::Letters(7)),
    ("logical_deduction_three_objects", Answers::Letters(3)),
    ("movie_recommendation", Answers::Letters(6)),
    ("navigate", Answers::YesNo("Yes", "No")),
    ("object_counting", Answers::Count),
    ("penguins_in_a_table", Answers::Letters(5)),
    ("reasoning_about_colored_objects", Answers::Letters(18)),
    ("ruin_names", Answers::Letters(6)),
    ("salient_translation_error_detection", Answers::Letters(6)),
    ("snarks", Answers::Letters(2)),
    ("sports_understanding", Answers::YesNo("yes", "no")),
    ("temporal_sequences", Answers::Letters(4)),
    (
        "tracking_shuffled_objects_five_objects",
        Answers::Letters(5),
    ),
    (
        "tracking_shuffled_objects_seven_objects",
        Answers::Letters(7),
    ),
    (
        "tracking_shuffled_objects_three_objects",
        Answers::Letters(3),
    ),
    ("web_of_lies", Answers::YesNo("Yes", "No")),
];

/// How a BBH subtask answers.
#[derive(Clone, Copy)]
enum Answers {
    /// "True" or "False": a Boolean expression to evaluate.
    Boolean,
    /// A yes/no pair (in the subtask's words): whether a sum is right.
    YesNo(&'static str, &'static str),
    /// "(A)".."(N)": which option holds the largest number.
    Letters(usize),
    /// "0".."18": how many things a list names.
    Count,
}

const THINGS: [&str; 6] = ["apple", "violin", "chair", "trumpet", "banana", "table"];

/// Builds the repositories under `root` (MATH from `data`); returns their ids.
pub(super) fn build(data: &Path, root: &Path) -> Result<Vec<String>, BuildError> {
    build_bbh(root)?;
    build_mmlu_pro(root)?;
    build_musr(root)?;
    build_ifeval(root)?;
    build_math_lighteval(data, root)?;
    Ok([
        "SaylorTwift/bbh",
        "TIGER-Lab/MMLU-Pro",
        "TAUR-Lab/MuSR",
        "wis-k/instruction-following-eval",
        "DigitalLearningGmbH/MATH-lighteval",
    ]
    .map(String::from)
    .to_vec())
}

fn build_bbh(root: &Path) -> Result<(), BuildError> {
    let main = branch(root, "SaylorTwift/bbh", "main")?;
    let mut configs = Vec::new();
    for (subtask, answers) in BBH {
        let rows = (0..ROWS)
            .map(|i| {
                let (input, target) = bbh_item(answers, i);
                to_record(json!({ "input": input, "target": target }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        write_parquet(
            &main.join(format!("{subtask}/test-00000-of-00001.parquet")),
            &rows,
        )?;
        configs.push((
            subtask,
            vec![("test".to_string(), format!("{subtask}/test-*"))],
        ));
    }
    write_card_owned(&main, &configs)
}

/// The `i`-th stand-in item of a subtask answering with `answers`: (input, target).
fn bbh_item(answers: Answers, i: usize) -> (String, String) {
    match answers {
        Answers::Boolean => {
            let (a, b, c) = (i.is_multiple_of(2), i.is_multiple_of(3), i % 4 == 1);
            let value = !(a && b) || c;
            let input = format!(
                "not ( {} and {} ) or {} is",
                py_bool(a),
                py_bool(b),
                py_bool(c)
            );
            (input, py_bool(value).to_string())
        }
        Answers::YesNo(yes, no) => {
            let (x, y) = (3 + i, 4 + 2 * i);
            let claimed = if i.is_multiple_of(2) {
                x + y
            } else {
                x + y + 1
            };
            let input = format!("Question: Is it true that {x} plus {y} makes {claimed}?");
            let target = if claimed == x + y { yes } else { no };
            (input, target.to_string())
        }
        Answers::Letters(n) => {
            let best = (i * 5 + 1) % n;
            let options: Vec<String> = (0..n)
                .map(|k| {
                    let number = if k == best { 90 + i } else { 10 + k * 3 + i };
                    format!("({}) {number}", letter(k))
                })
                .collect();
            let input = format!(
                "Which option holds the largest number?\nOptions:\n{}",
                options.join("\n")
            );
            (input, format!("({})", letter(best)))
        }
        Answers::Count => {
            let count = 2 + i;
            let listed: Vec<&str> = (0..count).map(|k| THINGS[(k + i) % THINGS.len()]).collect();
            let input = format!(
                "I have these things, one of each mention: {}. How many things do I have?",
                listed.join(", ")
            );
            (input, count.to_string())
        }
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn letter(k: usize) -> char {
    char::from(b'A' + k as u8)
}

/// TIGER-Lab/MMLU-Pro: `test` and `validation` (the few-shot split), ten options each.
fn build_mmlu_pro(root: &Path) -> Result<(), BuildError> {
    let mut splits = Vec::new();
    for (split, offset) in [("test", 0), ("validation", 100)] {
        let rows = (0..ROWS)
            .map(|i| mmlu_pro_row(offset + i))
            .collect::<Result<Vec<_>, _>>()?;
        splits.push((split, rows));
    }
    write_default_config(root, "TIGER-Lab/MMLU-Pro", &splits)
}

/// `repo`'s `default` config: one Parquet file per split under `data/`.
fn write_default_config(
    root: &Path,
    repo: &str,
    splits: &[(&str, Vec<Record>)],
) -> Result<(), BuildError> {
    let main = branch(root, repo, "main")?;
    let mut card = Vec::new();
    for (split, rows) in splits {
        write_parquet(
            &main.join(format!("data/{split}-00000-of-00001.parquet")),
            rows,
        )?;
        card.push((split.to_string(), format!("data/{split}-*")));
    }
    write_card_owned(&main, &[("default", card)])
}

fn mmlu_pro_row(id: usize) -> Result<Record, BuildError> {
    let (a, b) = (7 + id % 13, 3 + id % 7);
    let product = a * b;
    let answer_index = id % 10;
    let options: Vec<String> = (0..10)
        .map(|k| (product + k).saturating_sub(answer_index).to_string())
        .collect();
    to_record(json!({
        "question_id": id,
        "question": format!("What is {a} multiplied by {b}?"),
        "options": options,
        "answer": letter(answer_index).to_string(),
        "answer_index": answer_index,
        "cot_content": format!("A: Let's think step by step. {a} times {b} is {product}. The answer is ({}).", letter(answer_index)),
        "category": "math",
        "src": "assay-standin",
    }))
}

/// TAUR-Lab/MuSR: one split per domain; `choices` a Python list literal.
fn build_musr(root: &Path) -> Result<(), BuildError> {
    let mut splits = Vec::new();
    for split in ["murder_mysteries", "object_placements", "team_allocation"] {
        let rows = (0..ROWS)
            .map(|i| musr_row(split, i))
            .collect::<Result<Vec<_>, _>>()?;
        splits.push((split, rows));
    }
    write_default_config(root, "TAUR-Lab/MuSR", &splits)
}

fn musr_row(domain: &str, i: usize) -> Result<Record, BuildError> {
    const PEOPLE: [&str; 4] = ["Mara", "Tobin", "Ilse", "Dev"];
    let (first, second) = (PEOPLE[i % 4], PEOPLE[(i + 1) % 4]);
    let (narrative, question, choices, answer) = match domain {
        "murder_mysteries" => (
            format!("The lamp in the study was broken at nine. {first} was at the theatre all evening, seen by many. {second} had mud on the boots that matched the study's garden, and no one saw {second} after eight."),
            "Who is the most likely culprit?".to_string(),
            vec![first.to_string(), second.to_string()],
            1,
        ),
        "object_placements" => (
            format!("{first} put the keys in the drawer. While {first} was out, {second} moved the keys to the blue box and told no one."),
            format!("Which location is the most likely place {first} would look to find the keys given the story?"),
            vec!["drawer".to_string(), "blue box".to_string()],
            0,
        ),
        _ => (
            format!("{first} is a skilled cook but hates crowds. {second} loves talking to customers but burns every dish. The cafe needs one cook and one server."),
            "Given the story, how would you uniquely allocate each person to make sure both tasks are accomplished efficiently?".to_string(),
            vec![
                format!("Cook: {first}, Server: {second}"),
                format!("Cook: {second}, Server: {first}"),
            ],
            0,
        ),
    };
    let literal = format!(
        "[{}]",
        choices
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    to_record(json!({
        "narrative": narrative,
        "question": question,
        "choices": literal,
        "answer_index": answer,
        "answer_choice": choices[answer],
    }))
}

/// wis-k/instruction-following-eval: one `train` split; every `kwargs` struct has all of
/// IFEval's argument fields, null where an instruction takes none.
fn build_ifeval(root: &Path) -> Result<(), BuildError> {
    let prompts: [(&str, &[(&str, Value)]); ROWS] = [
        (
            "Write a short note to a neighbour about a lost cat. Your entire response should be in English, and in all lowercase letters. No capital letters are allowed.",
            &[("change_case:english_lowercase", json!({}))],
        ),
        (
            "Describe a rainy morning in exactly 3 bullet points. Use the markdown bullet points such as:\n* This is point 1.",
            &[("detectable_format:number_bullet_lists", json!({"num_bullets": 3}))],
        ),
        (
            "Explain why bread rises. Answer with less than 4 sentences and include the keywords yeast and gas.",
            &[
                ("length_constraints:number_sentences", json!({"relation": "less than", "num_sentences": 4})),
                ("keywords:existence", json!({"keywords": ["yeast", "gas"]})),
            ],
        ),
        (
            "Write a two-line poem about the sea without using any commas. Your ENTIRE response should be in English language, no other language is allowed.",
            &[
                ("punctuation:no_comma", json!({})),
                ("language:response_language", json!({"language": "en"})),
            ],
        ),
        (
            "Give a title for a story about a clock, wrapped in double angular brackets, such as <<poem of joy>>, and end your response with the exact phrase Is there anything else I can help with?",
            &[
                ("detectable_format:title", json!({})),
                ("startend:end_checker", json!({"end_phrase": "Is there anything else I can help with?"})),
            ],
        ),
        (
            "List three fruits. Answer with at least 20 words and wrap your entire response with double quotation marks.",
            &[
                ("length_constraints:number_words", json!({"relation": "at least", "num_words": 20})),
                ("startend:quotation", json!({})),
            ],
        ),
    ];
    let rows = prompts
        .iter()
        .enumerate()
        .map(|(i, (prompt, instructions))| {
            let ids: Vec<&str> = instructions.iter().map(|(id, _)| *id).collect();
            let kwargs: Vec<Value> = instructions.iter().map(|(_, a)| ifeval_kwargs(a)).collect();
            to_record(json!({
                "key": 1000 + i,
                "prompt": prompt,
                "instruction_id_list": ids,
                "kwargs": kwargs,
            }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    write_default_config(root, "wis-k/instruction-following-eval", &[("train", rows)])
}

/// IFEval's `kwargs` struct: every argument field, `given` filled in, the rest null.
fn ifeval_kwargs(given: &Value) -> Value {
    const FIELDS: [&str; 24] = [
        "num_highlights",
        "relation",
        "num_words",
        "num_placeholders",
        "prompt_to_repeat",
        "num_bullets",
        "section_spliter",
        "num_sections",
        "capital_relation",
        "capital_frequency",
        "keywords",
        "num_paragraphs",
        "language",
        "let_relation",
        "letter",
        "let_frequency",
        "end_phrase",
        "forbidden_words",
        "keyword",
        "frequency",
        "num_sentences",
        "postscript_marker",
        "first_word",
        "nth_paragraph",
    ];
    let mut map = serde_json::Map::new();
    for field in FIELDS {
        map.insert(
            field.into(),
            given.get(field).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(map)
}

/// DigitalLearningGmbH/MATH-lighteval: a config per subject (and `default`, all of them), the
/// data folder's MATH test rows; `train` <- the test rows (the folder has no train split).
fn build_math_lighteval(data: &Path, root: &Path) -> Result<(), BuildError> {
    let main = branch(root, "DigitalLearningGmbH/MATH-lighteval", "main")?;
    let mut configs = Vec::new();
    let mut all = Vec::new();
    for subject in MATH_SUBJECTS {
        let rows = math_test_rows(data, subject, &["problem", "level", "solution", "type"])?;
        all.extend(rows.iter().cloned());
        configs.push((subject, rows));
    }
    configs.push(("default", all));
    let mut card = Vec::new();
    for (config, rows) in &configs {
        for split in ["train", "test"] {
            write_parquet(
                &main.join(format!("{config}/{split}-00000-of-00001.parquet")),
                rows,
            )?;
        }
        let splits = ["train", "test"]
            .map(|s| (s.to_string(), format!("{config}/{s}-*")))
            .to_vec();
        card.push((*config, splits));
    }
    write_card_owned(&main, &card)
}
