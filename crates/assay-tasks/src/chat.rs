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
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", template.to_string())
            .map_err(|e| format!("the model's chat template does not compile: {e}"))?;
        Ok(ChatFormat {
            env,
            template_sha: crate::prepared::hash(template),
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
