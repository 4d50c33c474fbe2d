//! lm-eval's context construction: a document's prompt, choices, gold answers and target, its
//! few-shot examples, and the prompt text shared by a task's documents.

use assay_data::Record;
use serde_json::Value;

use super::{ExampleFormat, PreparedTask, Sampler};
use crate::chat::Message;
use crate::template::Field;
use crate::text::text_of;
use crate::TaskError;

/// One few-shot example as lm-eval's `build_qa_turn` writes it: the question, the delimiter
/// after it, and the answer (`gen_prefix` first) with the delimiter after the example; no
/// answer part when the answer is empty and there is no prefix.
struct Example {
    question: String,
    delimiter: String,
    answer: Option<String>,
    end: String,
}

impl Example {
    fn new(question: String, answer: String, prefix: Option<&str>, format: &ExampleFormat) -> Self {
        let has_answer = !answer.is_empty();
        let delimiter = match prefix {
            Some(p) if requires_delimiter(&question, p) => format.target_delimiter.clone(),
            None if has_answer => format.target_delimiter.clone(),
            _ => String::new(),
        };
        let (answer, end) = match prefix {
            _ if has_answer => (
                Some(maybe_delimit(prefix.unwrap_or(""), &answer)),
                format.fewshot_delimiter.clone(),
            ),
            Some(p) => (Some(p.to_string()), String::new()),
            None => (None, String::new()),
        };
        Example {
            question,
            delimiter,
            answer,
            end,
        }
    }

    /// The example as plain text.
    fn text(&self) -> String {
        format!(
            "{}{}{}{}",
            self.question,
            self.delimiter,
            self.answer.as_deref().unwrap_or(""),
            self.end
        )
    }
}

/// Whether lm-eval puts a delimiter between `prefix` and `suffix`: neither has whitespace at
/// the join (and `prefix` is not empty).
fn requires_delimiter(prefix: &str, suffix: &str) -> bool {
    match (prefix.chars().last(), suffix.chars().next()) {
        (Some(a), Some(b)) => !(a.is_whitespace() || b.is_whitespace()),
        _ => false,
    }
}

/// `prefix` and `suffix` joined by a space where neither has whitespace at the join.
fn maybe_delimit(prefix: &str, suffix: &str) -> String {
    match (prefix.is_empty(), suffix.is_empty()) {
        (true, _) => suffix.to_string(),
        (_, true) => prefix.to_string(),
        _ if requires_delimiter(prefix, suffix) => format!("{prefix} {suffix}"),
        _ => format!("{prefix}{suffix}"),
    }
}

/// A document's prompt.
pub(super) enum Prompt {
    Text(String),
    ChoiceIndex(usize),
}

impl PreparedTask {
    pub(super) fn field_error(&self, doc_id: usize, field: &str, message: String) -> TaskError {
        TaskError::Template {
            task: self.name.clone(),
            doc_id,
            field: field.into(),
            message,
        }
    }

    /// The prompt of a document: text, or a choice index when the choices are contexts.
    pub(super) fn prompt(&self, doc: &Record, doc_id: usize) -> Result<Prompt, TaskError> {
        self.prompt_of(&self.text, doc, doc_id)
    }

    fn prompt_of(&self, text: &Field, doc: &Record, doc_id: usize) -> Result<Prompt, TaskError> {
        match self
            .templates
            .eval(text, doc)
            .map_err(|m| self.field_error(doc_id, "doc_to_text", m))?
        {
            Value::String(s) => Ok(Prompt::Text(s)),
            Value::Number(n) if n.as_u64().is_some() => {
                Ok(Prompt::ChoiceIndex(n.as_u64().unwrap_or(0) as usize))
            }
            other => Err(self.field_error(
                doc_id,
                "doc_to_text",
                format!("expected text or a choice index, got {other}"),
            )),
        }
    }

    pub(super) fn choices(&self, doc: &Record, doc_id: usize) -> Result<Vec<String>, TaskError> {
        self.choices_of(self.choice.as_ref(), doc, doc_id)
    }

    fn choices_of(
        &self,
        choice: Option<&Field>,
        doc: &Record,
        doc_id: usize,
    ) -> Result<Vec<String>, TaskError> {
        let Some(field) = choice else {
            return Ok(Vec::new());
        };
        let value = self
            .templates
            .eval(field, doc)
            .map_err(|m| self.field_error(doc_id, "doc_to_choice", m))?;
        // A rendered template giving a list's Python repr is read as lm-eval reads it
        // (`ast.literal_eval`).
        let literal = match &value {
            Value::String(text) => match assay_data::parse_literal(text) {
                Ok(Value::Array(items)) => Some(items),
                _ => None,
            },
            _ => None,
        };
        let items = match (value, literal) {
            (_, Some(items)) | (Value::Array(items), None) => items,
            (value, None) => {
                return Err(self.field_error(
                    doc_id,
                    "doc_to_choice",
                    format!("expected a list (or a Python list literal), got {value}"),
                ))
            }
        };
        if items.is_empty() {
            return Err(self.field_error(
                doc_id,
                "doc_to_choice",
                "the list of choices is empty".into(),
            ));
        }
        Ok(items.into_iter().map(|v| text_of(&v)).collect())
    }

    /// Gold indices for a multiple-choice document.
    pub(super) fn gold(
        &self,
        target: &Value,
        choices: &[String],
        doc_id: usize,
    ) -> Result<Vec<usize>, TaskError> {
        let err = |m: String| self.field_error(doc_id, "doc_to_target", m);
        let index = |v: &Value| -> Result<usize, TaskError> {
            let i = match v {
                Value::Number(n) => n.as_u64().map(|i| i as usize),
                Value::String(s) => choices
                    .iter()
                    .position(|c| c == s)
                    .or_else(|| s.trim().parse::<usize>().ok()),
                _ => None,
            }
            .ok_or_else(|| {
                err(format!(
                    "{v} is neither a choice index nor one of the choices"
                ))
            })?;
            if i >= choices.len() {
                return Err(err(format!(
                    "gold index {i} but only {} choices",
                    choices.len()
                )));
            }
            Ok(i)
        };
        match target {
            Value::Array(items) => items.iter().map(index).collect(),
            other => Ok(vec![index(other)?]),
        }
    }

    pub(super) fn target_text(&self, doc: &Record, doc_id: usize) -> Result<String, TaskError> {
        self.target_text_of(&self.text, &self.target, self.choice.as_ref(), doc, doc_id)
    }

    fn target_text_of(
        &self,
        text: &Field,
        target: &Field,
        choice: Option<&Field>,
        doc: &Record,
        doc_id: usize,
    ) -> Result<String, TaskError> {
        let value = self
            .templates
            .eval(target, doc)
            .map_err(|m| self.field_error(doc_id, "doc_to_target", m))?;
        if choice.is_none() {
            return Ok(text_of(&value));
        }
        if let Prompt::ChoiceIndex(_) = self.prompt_of(text, doc, doc_id)? {
            return Ok(text_of(&value));
        }
        let choices = self.choices_of(choice, doc, doc_id)?;
        let gold = self.gold(&value, &choices, doc_id)?;
        Ok(choices[gold[0]].clone())
    }

    /// The `gen_prefix` of `doc` (`field` rendered), `None` when unset or empty.
    fn prefix_of(
        &self,
        field: Option<&Field>,
        doc: &Record,
        doc_id: usize,
    ) -> Result<Option<String>, TaskError> {
        let Some(field) = field else {
            return Ok(None);
        };
        let value = self
            .templates
            .eval(field, doc)
            .map_err(|m| self.field_error(doc_id, "gen_prefix", m))?;
        let text = text_of(&value);
        Ok((!text.is_empty()).then_some(text))
    }

    /// The reference of a generation document: a string, a list of acceptable answers, or
    /// `{"true": [...], "false": [...]}` reference sets (TruthfulQA).
    pub(super) fn generation_target(
        &self,
        doc: &Record,
        doc_id: usize,
    ) -> Result<Value, TaskError> {
        let target = self
            .templates
            .eval(&self.target, doc)
            .map_err(|m| self.field_error(doc_id, "doc_to_target", m))?;
        Ok(match target {
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| Value::String(text_of(v))).collect())
            }
            Value::Object(map) => Value::Object(map),
            other => Value::String(text_of(&other)),
        })
    }

    /// The few-shot examples of a document, written as lm-eval writes them.
    fn examples(&self, doc_id: usize) -> Result<Vec<Example>, TaskError> {
        if self.num_fewshot == 0 {
            return Ok(Vec::new());
        }
        // From the evaluated split itself, lm-eval drops every example equal to the document.
        let (pool, this) = match &self.fewshot_docs {
            Some(docs) => (docs, None),
            None => (&self.docs, self.docs.get(doc_id)),
        };
        let keep = |i: &usize| this.is_none_or(|d| pool[*i] != *d);
        let indices: Vec<usize> = match &self.sampler {
            Sampler::FirstN => (0..pool.len())
                .filter(keep)
                .take(self.num_fewshot)
                .collect(),
            Sampler::Random(draws) => draws
                .get(doc_id)
                .into_iter()
                .flatten()
                .copied()
                .filter(|i| *i < pool.len())
                .filter(keep)
                .take(self.num_fewshot)
                .collect(),
        };
        let format = &self.example;
        indices
            .into_iter()
            .map(|i| {
                let ex = &pool[i];
                let question = match self.prompt_of(&format.text, ex, doc_id)? {
                    Prompt::Text(t) => t,
                    Prompt::ChoiceIndex(k) => self
                        .choices_of(format.choice.as_ref(), ex, doc_id)?
                        .get(k)
                        .cloned()
                        .ok_or_else(|| {
                            self.field_error(
                                doc_id,
                                "doc_to_text",
                                format!("few-shot example {i}: index {k} out of range"),
                            )
                        })?,
                };
                let answer = self.target_text_of(
                    &format.text,
                    &format.target,
                    format.choice.as_ref(),
                    ex,
                    doc_id,
                )?;
                let prefix = self.prefix_of(format.gen_prefix.as_ref(), ex, doc_id)?;
                Ok(Example::new(question, answer, prefix.as_deref(), format))
            })
            .collect()
    }

    /// The full context of a document: description, few-shot examples and `prompt` (then the
    /// `gen_prefix`, after `delimiter` where neither side has a space), as plain text or
    /// through the chat template. `delimiter` is the target delimiter, empty where the choices
    /// are the contexts (as lm-eval joins them).
    pub(super) fn context(
        &self,
        doc: &Record,
        doc_id: usize,
        prompt: &str,
        delimiter: &str,
    ) -> Result<String, TaskError> {
        let prefix = self.prefix_of(self.gen_prefix.as_ref(), doc, doc_id)?;
        let description = if self.has_description {
            self.templates
                .render_str("description", doc)
                .map_err(|m| self.field_error(doc_id, "description", m))?
        } else {
            String::new()
        };
        let examples = self.examples(doc_id)?;
        let joined =
            |examples: &[Example]| -> String { examples.iter().map(Example::text).collect() };
        let Some(chat) = &self.chat else {
            let prompt = match &prefix {
                Some(p) if requires_delimiter(prompt, p) => format!("{prompt}{delimiter}{p}"),
                Some(p) => format!("{prompt}{p}"),
                None => prompt.to_string(),
            };
            return Ok(format!("{description}{}{prompt}", joined(&examples)));
        };
        if prefix.is_some() {
            return Err(self.field_error(
                doc_id,
                "gen_prefix",
                "a gen_prefix with a chat template (an assistant turn already begun) is not supported yet; run without --apply-chat-template".into(),
            ));
        }
        let mut messages = Vec::new();
        let system: Vec<&str> = [
            chat.system_instruction.as_deref(),
            Some(description.trim_end()),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
        if !system.is_empty() {
            messages.push(Message {
                role: "system",
                content: system.join(&self.fewshot_delimiter),
            });
        }
        if chat.fewshot_as_multiturn {
            for ex in &examples {
                messages.push(Message {
                    role: "user",
                    content: ex.question.clone(),
                });
                if let Some(answer) = &ex.answer {
                    messages.push(Message {
                        role: "assistant",
                        content: answer.clone(),
                    });
                }
            }
            messages.push(Message {
                role: "user",
                content: prompt.to_string(),
            });
        } else {
            messages.push(Message {
                role: "user",
                content: format!("{}{prompt}", joined(&examples)),
            });
        }
        chat.render(&messages)
            .map_err(|m| self.field_error(doc_id, "chat template", m))
    }

    /// The text that starts the prompts of this task's documents: the common beginning of the
    /// first two documents' contexts (description, fixed few-shot examples, chat template
    /// header). A function of the task, whatever `--limit`; `None` with fewer than two documents.
    pub fn shared_prefix(&self) -> Result<Option<String>, TaskError> {
        if self.docs.len() < 2 {
            return Ok(None);
        }
        let first = self.instance(0)?;
        let second = self.instance(1)?;
        let (Some(a), Some(b)) = (first.context(), second.context()) else {
            return Ok(None);
        };
        let len = a
            .char_indices()
            .zip(b.chars())
            .find(|((_, x), y)| x != y)
            .map_or(a.len().min(b.len()), |((i, _), _)| i);
        Ok((len > 0).then(|| a[..len].to_string()))
    }
}
