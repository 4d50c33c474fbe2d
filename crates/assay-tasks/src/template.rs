//! The doc_to_* fields: a field name, a Jinja template (minijinja, with Python string methods
//! such as `.strip()`), a whole-field expression `{{ expr }}` that keeps its type, or a literal.

use minijinja::Environment;
use serde_json::Value;
use serde_yaml::Value as Yaml;

use assay_data::Record;

/// A compiled doc_to_* field.
#[derive(Debug, Clone)]
pub(crate) enum Field {
    /// A literal from the task file (a number or a list).
    Literal(Value),
    /// A string that is a doc field name when the doc has that field, else a template.
    Text {
        /// The raw string.
        raw: String,
        /// Name of the template rendering it, in the task's environment.
        template: String,
        /// Whether the whole string is one `{{ expression }}` (its value keeps its type).
        expression: bool,
    },
    /// A `!function` hook (`folder/module.function`), called with the document in Python.
    Hook(String),
}

/// The templates of one task.
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// An environment with Python-compatible string methods, strict about undefined names.
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        env.set_fuel(Some(crate::TEMPLATE_FUEL));
        env.set_unknown_method_callback(python_method);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.add_function("shuffled", shuffled);
        env.add_function("index_of", index_of);
        env.add_function("last_boxed", |text: String| {
            crate::answers::last_boxed(&text)
        });
        env.add_function("drop_answers", drop_answers);
        env.add_filter("regex_replace", regex_replace);
        Templates { env }
    }

    /// Compiles a field; `name` identifies it in error messages.
    pub(crate) fn compile(&mut self, name: &str, raw: &Yaml) -> Result<Field, String> {
        match raw {
            Yaml::String(s) => {
                let inner = whole_expression(s);
                let source = match inner {
                    Some(expr) => format!("{{{{ ({expr}) | tojson }}}}"),
                    None => s.clone(),
                };
                self.env
                    .add_template_owned(name.to_string(), source)
                    .map_err(|e| template_error(&e))?;
                Ok(Field::Text {
                    raw: s.clone(),
                    template: name.to_string(),
                    expression: inner.is_some(),
                })
            }
            Yaml::Tagged(tagged) if tagged.tag == "function" => match tagged.value.as_str() {
                Some(path) => Ok(Field::Hook(path.to_string())),
                None => Err("`!function` needs a `module.function` name".into()),
            },
            other => serde_json::to_value(other)
                .map(Field::Literal)
                .map_err(|e| e.to_string()),
        }
    }

    /// Evaluates a field for a document.
    pub(crate) fn eval(&self, field: &Field, doc: &Record) -> Result<Value, String> {
        match field {
            Field::Literal(v) => Ok(v.clone()),
            Field::Hook(path) => crate::hooks::call(path, &[Value::Object(doc.clone())])
                .map_err(|e| format!("`!function {path}`: {e}")),
            Field::Text {
                raw,
                template,
                expression,
            } => {
                if let Some(v) = doc.get(raw) {
                    return Ok(v.clone());
                }
                let tmpl = self
                    .env
                    .get_template(template)
                    .map_err(|e| template_error(&e))?;
                let out = tmpl.render(with_doc(doc)).map_err(|e| template_error(&e))?;
                if *expression {
                    serde_json::from_str(&out)
                        .map_err(|e| format!("expression gave invalid JSON {out:?}: {e}"))
                } else {
                    Ok(Value::String(out))
                }
            }
        }
    }

    /// Renders a plain template string (e.g. `description`) for a document.
    pub(crate) fn render_str(&self, name: &str, doc: &Record) -> Result<String, String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(with_doc(doc)))
            .map_err(|e| template_error(&e))
    }

    /// Adds a plain template string.
    pub(crate) fn add(&mut self, name: &str, source: &str) -> Result<(), String> {
        self.env
            .add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| template_error(&e))
    }
}

/// The template context: the document's fields, plus the whole document as `doc` (an assay
/// extension for field names that are not identifiers, e.g. `doc['Correct Answer']`).
fn with_doc(doc: &Record) -> minijinja::Value {
    let mut fields = doc.clone();
    fields
        .entry("doc")
        .or_insert_with(|| Value::Object(doc.clone()));
    minijinja::Value::from_serialize(&fields)
}

/// `shuffled(items, key)`: `items` in an order fixed by `key` (a string, e.g. the question), so
/// options can be shuffled reproducibly per document (GPQA).
fn shuffled(items: Vec<minijinja::Value>, key: String) -> Vec<minijinja::Value> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest[..8]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from_le_bytes(seed));
    let mut items = items;
    items.shuffle(&mut rng);
    items
}

/// `index_of(items, item)`: the position of `item` in `items`, or -1.
/// Python's methods on values (pycompat's), plus `list.index(x)` as lm-eval's task files use it
/// (`choices.label.index(answerKey)`): the first position, an error when absent.
fn python_method(
    state: &minijinja::State,
    value: &minijinja::Value,
    method: &str,
    args: &[minijinja::Value],
) -> Result<minijinja::Value, minijinja::Error> {
    if method == "index" && value.kind() == minijinja::value::ValueKind::Seq {
        let [item] = args else {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                "list.index takes one argument",
            ));
        };
        let items = value.try_iter()?;
        for (i, v) in items.enumerate() {
            if &v == item {
                return Ok(minijinja::Value::from(i));
            }
        }
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("list.index({item}): not in the list {value}"),
        ));
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

fn index_of(items: Vec<minijinja::Value>, item: minijinja::Value) -> i64 {
    items
        .iter()
        .position(|v| *v == item)
        .map_or(-1, |i| i as i64)
}

/// `text | regex_replace(pattern, replacement)`: Python's `re.sub(pattern, replacement, text)`
/// with the replacement taken literally (the built-in tasks' Hub fields clean text as lm-eval's
/// `process_docs` hooks do, e.g. HellaSwag's `\\[.*?\\]`).
fn regex_replace(
    text: String,
    pattern: String,
    replacement: String,
) -> Result<String, minijinja::Error> {
    let regex = fancy_regex::Regex::new(&pattern).map_err(|e| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("regex_replace: bad pattern {pattern:?}: {e}"),
        )
    })?;
    Ok(regex
        .replace_all(&text, fancy_regex::NoExpand(&replacement))
        .into_owned())
}

/// `drop_answers(answer, validated_answers)`: DROP's acceptable answers from the Hub dataset's
/// fields, as lm-eval's `get_answers` collects them: the answer, then each validated answer,
/// each its number, else its spans (joined by ", "), else its date ("day month year"), without
/// repeats.
fn drop_answers(
    answer: minijinja::Value,
    validated: minijinja::Value,
) -> Result<Vec<String>, minijinja::Error> {
    let mut candidates = vec![drop_answer_text(&answer)?];
    let numbers = validated.get_attr("number")?;
    let count = numbers.len().unwrap_or(0);
    for i in 0..count {
        let one = |key: &str| -> Result<minijinja::Value, minijinja::Error> {
            validated
                .get_attr(key)?
                .get_item(&minijinja::Value::from(i))
        };
        let fields = [
            ("number", one("number")?),
            ("date", one("date")?),
            ("spans", one("spans")?),
        ];
        let candidate: minijinja::Value = fields.into_iter().collect();
        candidates.push(drop_answer_text(&candidate)?);
    }
    let mut answers: Vec<String> = Vec::new();
    for candidate in candidates {
        if !answers.contains(&candidate) {
            answers.push(candidate);
        }
    }
    Ok(answers)
}

fn drop_answer_text(answer: &minijinja::Value) -> Result<String, minijinja::Error> {
    let text = |v: minijinja::Value| v.as_str().map(str::to_string).unwrap_or_default();
    let number = text(answer.get_attr("number")?);
    if !number.is_empty() {
        return Ok(number);
    }
    let spans = answer.get_attr("spans")?;
    if spans.len().unwrap_or(0) > 0 {
        let parts: Vec<String> = spans.try_iter()?.map(text).collect();
        return Ok(parts.join(", "));
    }
    let date = answer.get_attr("date")?;
    let parts = ["day", "month", "year"]
        .iter()
        .map(|k| date.get_attr(k).map(text))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join(" ").trim().to_string())
}

/// `Some(expr)` when `s` is exactly one `{{ expr }}` and nothing else.
fn whole_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(
        inner
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim(),
    )
}

fn template_error(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Record {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn field_names_templates_and_typed_expressions() {
        let mut t = Templates::new();
        let d =
            doc(json!({"q": "  Why? ", "gold": 2, "choices": ["a", "b"], "m": {"x": 1, "y": 0}}));
        let name = t.compile("n", &Yaml::from("gold")).unwrap();
        assert_eq!(t.eval(&name, &d).unwrap(), json!(2));
        let text = t.compile("t", &Yaml::from("Q: {{q.strip()}}\nA:")).unwrap();
        assert_eq!(t.eval(&text, &d).unwrap(), json!("Q: Why?\nA:"));
        let expr = t.compile("e", &Yaml::from("{{choices}}")).unwrap();
        assert_eq!(t.eval(&expr, &d).unwrap(), json!(["a", "b"]));
        let keys = t
            .compile("k", &Yaml::from("{{ m.keys() | list }}"))
            .unwrap();
        assert_eq!(t.eval(&keys, &d).unwrap(), json!(["x", "y"]));
        let lit = t
            .compile(
                "l",
                &serde_yaml::from_str::<Yaml>("[\"A\", \"B\"]").unwrap(),
            )
            .unwrap();
        assert_eq!(t.eval(&lit, &d).unwrap(), json!(["A", "B"]));
    }

    #[test]
    fn a_template_without_end_runs_out_of_fuel() {
        let mut t = Templates::new();
        let endless =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let field = t.compile("endless", &Yaml::from(endless)).unwrap();
        let start = std::time::Instant::now();
        let err = t.eval(&field, &doc(json!({}))).unwrap_err();
        assert!(err.contains("fuel"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
    }

    #[test]
    fn shuffled_is_fixed_by_its_key() {
        let mut t = Templates::new();
        let d = doc(json!({"q": "Q1", "a": "right", "b": "w1", "c": "w2", "e": "w3"}));
        let f = t
            .compile("s", &Yaml::from("{{ shuffled([a, b, c, e], q) }}"))
            .unwrap();
        let once = t.eval(&f, &d).unwrap();
        assert_eq!(once, t.eval(&f, &d).unwrap());
        let mut sorted: Vec<String> = serde_json::from_value(once.clone()).unwrap();
        sorted.sort();
        assert_eq!(sorted, vec!["right", "w1", "w2", "w3"]);
        let g = t
            .compile(
                "i",
                &Yaml::from("{{ index_of(shuffled([a, b, c, e], q), a) }}"),
            )
            .unwrap();
        let i = t.eval(&g, &d).unwrap().as_u64().unwrap() as usize;
        assert_eq!(once[i], "right");
        let spaced = doc(json!({"Correct Answer": " yes "}));
        let f = t
            .compile("d", &Yaml::from("{{ doc['Correct Answer'] | trim }}!"))
            .unwrap();
        assert_eq!(t.eval(&f, &spaced).unwrap(), json!("yes!"));
    }

    #[test]
    fn undefined_names_are_errors() {
        let mut t = Templates::new();
        let f = t.compile("t", &Yaml::from("{{ missing }} x")).unwrap();
        let err = t.eval(&f, &doc(json!({"q": 1}))).unwrap_err();
        assert!(err.contains("undefined"), "{err}");
    }

    #[test]
    fn syntax_errors_are_caught_at_compile_time() {
        let mut t = Templates::new();
        let err = t.compile("t", &Yaml::from("{{ q ")).unwrap_err();
        assert!(err.contains("syntax error"), "{err}");
    }

    #[test]
    fn hellaswag_cleaning_as_lm_evals_process_docs() {
        let mut t = Templates::new();
        let d = doc(json!({
            "activity_label": "Roof shingle removal",
            "ctx_a": "A man is on a roof [title] He  pulls.",
            "ctx_b": "HE",
            "endings": [" is [header] ripping tiles.  ", "waves."],
        }));
        let text = t
            .compile(
                "q",
                &Yaml::from(
                    "{{ (activity_label ~ ': ' ~ ctx_a ~ ' ' ~ ctx_b | capitalize).strip().replace(' [title]', '. ') | regex_replace('\\[.*?\\]', '') | replace('  ', ' ') }}",
                ),
            )
            .unwrap();
        assert_eq!(
            t.eval(&text, &d).unwrap(),
            json!("Roof shingle removal: A man is on a roof. He pulls. He")
        );
        let choices = t
            .compile(
                "c",
                &Yaml::from("{{ endings | map('trim') | map('regex_replace', '\\[.*?\\]', '') | map('replace', '  ', ' ') | list }}"),
            )
            .unwrap();
        assert_eq!(
            t.eval(&choices, &d).unwrap(),
            json!(["is ripping tiles.", "waves."])
        );
        let bad = t
            .compile("b", &Yaml::from("{{ 'x' | regex_replace('(', '') }}"))
            .unwrap();
        assert!(t.eval(&bad, &d).unwrap_err().contains("bad pattern"));
    }

    #[test]
    fn drop_answers_and_last_boxed() {
        let mut t = Templates::new();
        let date = |d: &str, m: &str, y: &str| json!({"day": d, "month": m, "year": y});
        let d = doc(json!({
            "answer": {"number": "", "date": date("", "", ""), "spans": ["Pakistanis", "Filipinos"]},
            "validated_answers": {
                "number": ["", "12", ""],
                "date": [date("", "", ""), date("", "", ""), date("3", "May", "1990")],
                "spans": [["Pakistanis", "Filipinos"], [], []],
            },
            "solution": "so $\\boxed{\\frac{1}{2}}$ and \\boxed{x^{2}}.",
        }));
        let answers = t
            .compile(
                "a",
                &Yaml::from("{{ drop_answers(answer, validated_answers) }}"),
            )
            .unwrap();
        assert_eq!(
            t.eval(&answers, &d).unwrap(),
            json!(["Pakistanis, Filipinos", "12", "3 May 1990"])
        );
        let boxed = t
            .compile("x", &Yaml::from("{{ last_boxed(solution) }}"))
            .unwrap();
        assert_eq!(t.eval(&boxed, &d).unwrap(), json!("x^{2}"));
    }
}

#[cfg(test)]
mod object_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_have_pythons_index() {
        let mut t = Templates::new();
        let d = json!({"choices": {"label": ["A", "B", "C"]}, "answerKey": "C", "bad": "Z"})
            .as_object()
            .unwrap()
            .clone();
        let f = t
            .compile("i", &Yaml::from("{{choices.label.index(answerKey)}}"))
            .unwrap();
        assert_eq!(t.eval(&f, &d).unwrap(), json!(2));
        let missing = t
            .compile("m", &Yaml::from("{{choices.label.index(bad)}}"))
            .unwrap();
        let err = t.eval(&missing, &d).unwrap_err();
        assert!(err.contains("not in the list"), "{err}");
        let text = t.compile("s", &Yaml::from("{{ 'abc'.upper() }}")).unwrap();
        assert_eq!(t.eval(&text, &d).unwrap(), json!("ABC"));
    }

    #[test]
    fn expressions_can_build_objects() {
        let mut t = Templates::new();
        let d = json!({"a": "x; y", "b": "z"}).as_object().unwrap().clone();
        let f = t
            .compile(
                "o",
                &Yaml::from("{{ {'true': a.split('; ') + ['n'], 'false': b.split('; ')} }}"),
            )
            .unwrap();
        assert_eq!(
            t.eval(&f, &d).unwrap(),
            json!({"true": ["x", "y", "n"], "false": ["z"]})
        );
    }
}
