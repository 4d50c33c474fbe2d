//! Prompt formats: how a prompt is wrapped before generation (a system text, and text before
//! and after the prompt in the user's turn). Four are built in, after the customer's format
//! test; more come from a YAML file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ValidateError;

/// An example "kernel": a short statement of principles a fine-tune is meant to carry, used by
/// the built-in formats. Replace it with your own through a format file.
pub const EXAMPLE_KERNEL: &str = "You answer by these principles:\n\
1. Be honest about what you know and what you do not.\n\
2. Respect the privacy and autonomy of everyone the question involves.\n\
3. Reduce harm without withholding help that is safe to give.\n\
4. Give your reasons briefly, then a clear answer.";

/// A prompt format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptFormat {
    /// Its name (the file name of its outputs).
    #[serde(skip_deserializing)]
    pub name: String,
    /// The system message ("" for none).
    pub system: String,
    /// Text placed before the prompt in the user's turn.
    pub before: String,
    /// Text placed after the prompt in the user's turn.
    pub after: String,
}

/// A prompt in a format: the system text (if any) and the user's turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The system message, when the format has one.
    pub system: Option<String>,
    /// The user's turn.
    pub user: String,
}

impl Rendered {
    /// As one plain text, for a model used without a chat template: the system text, a blank
    /// line, then the user's turn.
    pub fn plain(&self) -> String {
        match &self.system {
            Some(s) => format!("{s}\n\n{}", self.user),
            None => self.user.clone(),
        }
    }
}

impl PromptFormat {
    /// Wraps `prompt`.
    pub fn render(&self, prompt: &str) -> Rendered {
        Rendered {
            system: (!self.system.trim().is_empty()).then(|| self.system.clone()),
            user: format!("{}{prompt}{}", self.before, self.after),
        }
    }
}

/// The built-in formats: `naked` (the prompt alone), `system_style` (the kernel as the system
/// message), `kernel_only` (the kernel before the prompt in the user's turn, no system
/// message) and `sandwich` (the kernel before the prompt and a reminder after it).
pub fn builtin_formats() -> Vec<PromptFormat> {
    let format = |name: &str, system: &str, before: String, after: &str| PromptFormat {
        name: name.into(),
        system: system.into(),
        before,
        after: after.into(),
    };
    vec![
        format("naked", "", String::new(), ""),
        format("system_style", EXAMPLE_KERNEL, String::new(), ""),
        format("kernel_only", "", format!("{EXAMPLE_KERNEL}\n\n"), ""),
        format(
            "sandwich",
            "",
            format!("{EXAMPLE_KERNEL}\n\n---\n\n"),
            "\n\n---\n\nThink through which of the principles above apply, then answer.",
        ),
    ]
}

/// The formats of a file, and the entries that were refused (each naming the file and line).
#[derive(Debug, Default)]
pub struct FormatFile {
    /// The well-formed formats, in file order.
    pub formats: Vec<PromptFormat>,
    /// Entries missing a field, with an unknown key, or not a mapping.
    pub problems: Vec<ValidateError>,
}

/// Reads a YAML format file: a mapping from format name to `{system, before, after}` (all
/// three required, "" for nothing; no other keys). A malformed entry is reported in
/// `problems` and the others are kept; a file that is not such a mapping is an error.
pub fn read_format_file(path: &Path) -> Result<FormatFile, ValidateError> {
    let bad = |line: usize, message: String| ValidateError::BadItem {
        path: path.to_path_buf(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ValidateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let doc: serde_yaml::Mapping = serde_yaml::from_str(&text).map_err(|e| {
        bad(
            e.location().map_or(0, |l| l.line()),
            format!("not a YAML mapping of format names to {{system, before, after}}: {e}"),
        )
    })?;
    let mut file = FormatFile::default();
    for (name, spec) in doc {
        let name = match name {
            serde_yaml::Value::String(s) => s,
            other => {
                file.problems
                    .push(bad(0, format!("format name {other:?} is not text")));
                continue;
            }
        };
        let line = text
            .lines()
            .position(|l| l.starts_with(&format!("{name}:")))
            .map_or(0, |i| i + 1);
        match serde_yaml::from_value::<PromptFormat>(spec) {
            Ok(mut format) => {
                format.name = name;
                file.formats.push(format);
            }
            Err(e) => file.problems.push(bad(
                line,
                format!("format `{name}`: {e} (each format needs `system`, `before` and `after`; use \"\" for none)"),
            )),
        }
    }
    Ok(file)
}

/// The formats named in `names`, from the format file's and the built-in ones (a file's format
/// replaces a built-in one of the same name). A name with no such format is an error.
pub fn choose_formats(
    names: &[String],
    file: &[PromptFormat],
) -> Result<Vec<PromptFormat>, ValidateError> {
    let mut known = file.to_vec();
    for b in builtin_formats() {
        if !known.iter().any(|f| f.name == b.name) {
            known.push(b);
        }
    }
    names
        .iter()
        .map(|n| {
            known.iter().find(|f| &f.name == n).cloned().ok_or_else(|| {
                ValidateError::UnknownFormat {
                    name: n.clone(),
                    known: known
                        .iter()
                        .map(|f| f.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_wrap_the_prompt_as_documented() {
        let f = choose_formats(
            &[
                "naked".into(),
                "system_style".into(),
                "kernel_only".into(),
                "sandwich".into(),
            ],
            &[],
        )
        .unwrap();
        let r: Vec<Rendered> = f.iter().map(|f| f.render("Q?")).collect();
        assert_eq!(
            r[0],
            Rendered {
                system: None,
                user: "Q?".into()
            }
        );
        assert_eq!(r[1].system.as_deref(), Some(EXAMPLE_KERNEL));
        assert_eq!(r[1].user, "Q?");
        assert!(
            r[2].system.is_none()
                && r[2].user.starts_with(EXAMPLE_KERNEL)
                && r[2].user.ends_with("Q?")
        );
        assert!(r[3].user.contains("\n\nQ?\n\n") && r[3].user.ends_with("then answer."));
        assert_eq!(r[1].plain(), format!("{EXAMPLE_KERNEL}\n\nQ?"));
    }

    #[test]
    fn a_format_file_adds_and_replaces_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        std::fs::write(
            &path,
            "naked:\n  system: \"\"\n  before: \"Q: \"\n  after: \"\\nA:\"\nterse:\n  system: Be brief.\n  before: \"\"\n  after: \"\"\n",
        )
        .unwrap();
        let file = read_format_file(&path).unwrap();
        assert!(file.problems.is_empty());
        let f = choose_formats(
            &["naked".into(), "terse".into(), "sandwich".into()],
            &file.formats,
        )
        .unwrap();
        assert_eq!(f[0].render("x").user, "Q: x\nA:");
        assert_eq!(f[1].render("x").system.as_deref(), Some("Be brief."));
        assert_eq!(f[2].name, "sandwich");
        let err = choose_formats(&["nope".into()], &file.formats)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope") && err.contains("terse") && err.contains("sandwich"),
            "{err}"
        );
    }

    #[test]
    fn a_format_missing_a_field_is_reported_with_its_line_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        std::fs::write(&path, "ok:\n  system: \"\"\n  before: \"\"\n  after: \"\"\nbroken:\n  system: hi\n  before: \"\"\n").unwrap();
        let file = read_format_file(&path).unwrap();
        assert_eq!(file.formats.len(), 1);
        let err = file.problems[0].to_string();
        assert!(
            err.contains("f.yaml:5") && err.contains("`broken`") && err.contains("after"),
            "{err}"
        );
        std::fs::write(
            &path,
            "typo:\n  system: \"\"\n  before: \"\"\n  after: \"\"\n  prefix: x\n",
        )
        .unwrap();
        let err = read_format_file(&path).unwrap().problems[0].to_string();
        assert!(err.contains("prefix"), "{err}");
        std::fs::write(&path, "- a\n- b\n").unwrap();
        assert!(read_format_file(&path)
            .unwrap_err()
            .to_string()
            .contains("mapping"));
    }
}
