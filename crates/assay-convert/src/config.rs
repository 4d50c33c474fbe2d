//! `config.json`: the architecture and the hyperparameters a GGUF file records. A multimodal
//! checkpoint's `text_config` is laid over the top level, as llama.cpp's converter does, so that
//! the language model's own values win.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::ConvertError;

/// The parsed `config.json` of a checkpoint.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file, for messages.
    pub path: PathBuf,
    /// `architectures[0]`, e.g. `LlamaForCausalLM`.
    pub class: String,
    values: Map<String, Value>,
}

impl Config {
    /// Reads `config.json` in `dir`.
    pub fn read(dir: &Path) -> Result<Config, ConvertError> {
        let path = dir.join("config.json");
        if !path.is_file() {
            return Err(ConvertError::bad(
                dir,
                "no config.json: not a Hugging Face checkpoint folder (give a folder saved by save_pretrained, or a .gguf file)",
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ConvertError::io(&path, e))?;
        Config::parse(&path, &text)
    }

    /// Parses the text of a `config.json` at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConvertError> {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| ConvertError::bad(path, format!("not valid JSON: {e}")))?;
        let Value::Object(mut values) = json else {
            return Err(ConvertError::bad(path, "not a JSON object"));
        };
        let class = values
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ConvertError::bad(path, "no `architectures` list naming the model class")
            })?;
        if let Some(Value::Object(text_config)) = values.remove("text_config") {
            for (k, v) in text_config {
                values.insert(k, v);
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            class,
            values,
        })
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).filter(|v| !v.is_null())
    }

    /// An unsigned integer, if present.
    pub fn opt_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// A number, if present.
    pub fn opt_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// An unsigned integer that must be present.
    pub fn u64(&self, key: &str) -> Result<u64, ConvertError> {
        self.opt_u64(key).ok_or_else(|| {
            ConvertError::bad(
                &self.path,
                format!("`{key}` is missing or not a whole number ({})", self.class),
            )
        })
    }

    /// A number that must be present.
    pub fn f64(&self, key: &str) -> Result<f64, ConvertError> {
        self.opt_f64(key).ok_or_else(|| {
            ConvertError::bad(
                &self.path,
                format!("`{key}` is missing or not a number ({})", self.class),
            )
        })
    }

    /// The weights' precision as saved (`torch_dtype`, or `dtype` in newer transformers).
    pub fn torch_dtype(&self) -> Option<&str> {
        self.get("torch_dtype")
            .or_else(|| self.get("dtype"))
            .and_then(Value::as_str)
    }

    /// The rotary settings: `rope_scaling` (older transformers) or `rope_parameters` (newer),
    /// for full attention where a model gives several.
    pub fn rope_scaling(&self) -> Option<&Map<String, Value>> {
        let rope = self
            .get("rope_scaling")
            .or_else(|| self.get("rope_parameters"))?
            .as_object()?;
        match rope.get("full_attention") {
            Some(Value::Object(full)) => Some(full),
            _ => Some(rope),
        }
    }

    /// `rope_theta`, at the top level or in the rotary settings.
    pub fn rope_theta(&self) -> Option<f64> {
        self.opt_f64("rope_theta")
            .or_else(|| self.rope_scaling()?.get("rope_theta")?.as_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_config_overrides_and_errors_name_the_key() {
        let c = Config::parse(
            Path::new("config.json"),
            r#"{"architectures": ["Gemma3ForConditionalGeneration"], "hidden_size": 1,
                "text_config": {"hidden_size": 640, "rope_scaling": null}, "torch_dtype": "bfloat16"}"#,
        )
        .unwrap();
        assert_eq!(c.class, "Gemma3ForConditionalGeneration");
        assert_eq!(c.u64("hidden_size").unwrap(), 640);
        assert!(c.rope_scaling().is_none());
        assert_eq!(c.torch_dtype(), Some("bfloat16"));
        let err = c.u64("num_hidden_layers").unwrap_err().to_string();
        assert!(err.contains("`num_hidden_layers` is missing"), "{err}");
        let err = Config::parse(Path::new("c.json"), "{}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `architectures`"), "{err}");
    }
}
