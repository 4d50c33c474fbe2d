//! Splitting a model's reasoning from its answer: `<think>…</think>` blocks (DeepSeek-R1,
//! Qwen3 and their fine-tunes) and the analysis channel of the harmony format (gpt-oss).

/// A response with its reasoning taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The answer.
    pub response: String,
    /// The reasoning, when the text had any.
    pub reasoning: Option<String>,
}

const HARMONY_CHANNEL: &str = "<|channel|>";
const HARMONY_MESSAGE: &str = "<|message|>";

/// Splits `text`. Every `<think>…</think>` block goes to the reasoning (an unclosed one runs
/// to the end: the model was cut off while thinking). In harmony text, `analysis` (and
/// `commentary`) channel messages are reasoning and the `final` channel is the answer. Text
/// with neither is all answer.
pub fn split_reasoning(text: &str) -> Split {
    if text.contains(HARMONY_CHANNEL) {
        return split_harmony(text);
    }
    let mut response = String::new();
    let mut reasoning: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<think>") {
        response.push_str(&rest[..start]);
        let inner = &rest[start + "<think>".len()..];
        match inner.find("</think>") {
            Some(end) => {
                reasoning.push(inner[..end].trim());
                rest = &inner[end + "</think>".len()..];
            }
            None => {
                reasoning.push(inner.trim());
                rest = "";
            }
        }
    }
    // A template that opens <think> in the prompt leaves only the closing tag in the text.
    if reasoning.is_empty() {
        if let Some(end) = rest.find("</think>") {
            reasoning.push(rest[..end].trim());
            rest = &rest[end + "</think>".len()..];
        }
    }
    response.push_str(rest);
    Split {
        response: response.trim().to_string(),
        reasoning: (!reasoning.is_empty()).then(|| reasoning.join("\n\n")),
    }
}

/// Harmony: `<|channel|>NAME<|message|>TEXT` segments ended by `<|end|>`, `<|return|>` or the
/// next `<|start|>`.
fn split_harmony(text: &str) -> Split {
    let mut response = Vec::new();
    let mut reasoning = Vec::new();
    for segment in text.split(HARMONY_CHANNEL).skip(1) {
        let Some((channel, body)) = segment.split_once(HARMONY_MESSAGE) else {
            continue;
        };
        let body = ["<|end|>", "<|return|>", "<|start|>", "<|call|>"]
            .iter()
            .filter_map(|m| body.find(m))
            .min()
            .map_or(body, |i| &body[..i])
            .trim();
        if channel.trim().starts_with("final") {
            response.push(body);
        } else {
            reasoning.push(body);
        }
    }
    Split {
        response: response.join("\n\n"),
        reasoning: (!reasoning.is_empty()).then(|| reasoning.join("\n\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_blocks_are_reasoning() {
        let s = split_reasoning("<think>\nweigh A and B\n</think>\n\nB is safer.");
        assert_eq!(s.reasoning.as_deref(), Some("weigh A and B"));
        assert_eq!(s.response, "B is safer.");
        let s = split_reasoning("<think>one</think>A<think>two</think>B");
        assert_eq!(
            (s.reasoning.as_deref(), s.response.as_str()),
            (Some("one\n\ntwo"), "AB")
        );
    }

    #[test]
    fn an_unclosed_block_or_a_lone_closing_tag() {
        let s = split_reasoning("<think>still thinking when cut");
        assert_eq!(
            (s.reasoning.as_deref(), s.response.as_str()),
            (Some("still thinking when cut"), "")
        );
        let s = split_reasoning("the template opened it</think> Answer.");
        assert_eq!(
            (s.reasoning.as_deref(), s.response.as_str()),
            (Some("the template opened it"), "Answer.")
        );
    }

    #[test]
    fn harmony_channels() {
        let s = split_reasoning("<|channel|>analysis<|message|>User asks X.<|end|><|start|>assistant<|channel|>final<|message|>Here is X.<|return|>");
        assert_eq!(s.reasoning.as_deref(), Some("User asks X."));
        assert_eq!(s.response, "Here is X.");
    }

    #[test]
    fn plain_text_is_all_answer() {
        let s = split_reasoning("  Just an answer, thinking about <b>tags</b>.  ");
        assert_eq!(
            s,
            Split {
                response: "Just an answer, thinking about <b>tags</b>.".into(),
                reasoning: None
            }
        );
    }
}
