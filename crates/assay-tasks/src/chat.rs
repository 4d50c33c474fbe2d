//! Chat templates: a prompt rendered through the model's own Jinja chat template (from the
//! GGUF), with an optional system instruction and few-shot examples as earlier turns.

use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

/// How prompts are wrapped in the model's chat format.
pub struct ChatFormat {
    env: Environment<'static>,
    /// SHA-256 of the template source (for the results' `chat_template_sha`).
    pub template_sha: String,
    /// The template source.
    pub template: String,
    /// Placed in a system message before everything else.
    pub system_instruction: Option<String>,
    /// Few-shot examples as alternating user/assistant turns instead of one user message.
    pub fewshot_as_multiturn: bool,
    bos: String,
    eos: String,
}

/// Chat templates shipped with assay, for models whose GGUF carries none (written for assay in
/// the published turn formats of each family).
pub const BUILTIN_TEMPLATES: [(&str, &str); 3] = [
    ("gemma", include_str!("../chat_templates/gemma.jinja")),
    ("chatml", include_str!("../chat_templates/chatml.jinja")),
    ("llama3", include_str!("../chat_templates/llama3.jinja")),
];

/// A built-in template by name.
pub fn builtin_template(name: &str) -> Option<&'static str> {
    BUILTIN_TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// The built-in template for a model architecture (`general.architecture`), when one fits.
pub fn template_for_architecture(architecture: &str) -> Option<&'static str> {
    match architecture {
        a if a.starts_with("gemma") => Some("gemma"),
        a if a.starts_with("qwen") => Some("chatml"),
        _ => None,
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

impl ChatFormat {
    /// Compiles `template` (the GGUF's `tokenizer.chat_template`).
    pub fn new(
        template: &str,
        bos: &str,
        eos: &str,
        system_instruction: Option<String>,
        fewshot_as_multiturn: bool,
    ) -> Result<ChatFormat, String> {
        let mut env = Environment::new();
        env.set_fuel(Some(crate::TEMPLATE_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", template.to_string())
            .map_err(|e| format!("the model's chat template does not compile: {e}"))?;
        Ok(ChatFormat {
            env,
            template_sha: crate::text::hash(template),
            template: template.to_string(),
            system_instruction,
            fewshot_as_multiturn,
            bos: bos.to_string(),
            eos: eos.to_string(),
        })
    }

    /// Renders messages with the generation prompt for the assistant's turn appended.
    pub fn render(&self, messages: &[Message]) -> Result<String, String> {
        let tmpl = self.env.get_template("chat").map_err(|e| e.to_string())?;
        tmpl.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => self.bos,
            eos_token => self.eos,
        })
        .map_err(|e| format!("chat template: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEMMA_LIKE: &str = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

    #[test]
    fn builtin_gemma_folds_the_system_message_into_the_first_turn() {
        let chat = ChatFormat::new(
            builtin_template("gemma").unwrap(),
            "<bos>",
            "<eos>",
            None,
            true,
        )
        .unwrap();
        let out = chat
            .render(&[
                Message {
                    role: "system",
                    content: "Be brief.".into(),
                },
                Message {
                    role: "user",
                    content: "Q1".into(),
                },
                Message {
                    role: "assistant",
                    content: "A1".into(),
                },
                Message {
                    role: "user",
                    content: "Q2".into(),
                },
            ])
            .unwrap();
        assert_eq!(
            out,
            "<bos><start_of_turn>user\nBe brief.\n\nQ1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n<start_of_turn>user\nQ2<end_of_turn>\n<start_of_turn>model\n"
        );
        let err = chat
            .render(&[Message {
                role: "assistant",
                content: "x".into(),
            }])
            .unwrap_err();
        assert!(err.contains("alternate"), "{err}");
        for (name, template) in BUILTIN_TEMPLATES {
            ChatFormat::new(template, "<s>", "</s>", None, false)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn renders_turns_and_reports_template_errors() {
        let chat = ChatFormat::new(GEMMA_LIKE, "<bos>", "<eos>", None, false).unwrap();
        let out = chat
            .render(&[Message {
                role: "user",
                content: "Hi?".into(),
            }])
            .unwrap();
        assert_eq!(
            out,
            "<bos><start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\n"
        );
        let err = chat
            .render(&[Message {
                role: "system",
                content: "x".into(),
            }])
            .unwrap_err();
        assert!(err.contains("no system role"), "{err}");
    }
}
