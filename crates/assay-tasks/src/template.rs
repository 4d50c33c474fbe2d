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
        env.set_unknown_method_callback(python_method);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.add_function("shuffled", shuffled);
        env.add_function("index_of", index_of);
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
