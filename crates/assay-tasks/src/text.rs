//! Text helpers every part of a task shares: a JSON value as text, and a text's hash.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A JSON value as text: strings as they are, anything else as JSON.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Hex SHA-256 of a string.
pub fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
