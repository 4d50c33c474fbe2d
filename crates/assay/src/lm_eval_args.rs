//! lm-eval's command line, so that `python -m lm_eval --model hf --model_args pretrained=...`
//! runs as `assay run ...` with the rest unchanged: its model types and `--model_args` keys,
//! `--device` and `--batch_size`, mapped onto assay's own flags. A key assay does not honour is
//! an error naming it; one that cannot change assay's numbers is accepted with a note saying so.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::backend::{ApiArg, BackendArgs, BackendKind};

/// Layers offloaded for `--device cuda`: all of them (llama.cpp caps it at the model's count).
const ALL_LAYERS: u32 = 999;

/// lm-eval's model types assay runs: the `hf` family on the embedded engine, the served ones
/// through the OpenAI-compatible backend.
const MODEL_TYPES: &[&str] = &[
    "hf",
    "hf-auto",
    "huggingface",
    "local-completions",
    "local-chat-completions",
];

/// `--model_args` as lm-eval parses it: comma-separated `key=value` pairs.
fn parse_pairs(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => bail!("--model_args: `{pair}` is not key=value (e.g. pretrained=./model.gguf,dtype=float16)"),
        })
        .collect()
}

/// What a `--model_args` key does for a model type.
enum Key {
    /// Sets an assay flag.
    Honoured,
    /// Cannot change assay's numbers; accepted with this note.
    NoEffect(&'static str),
}

/// The keys of lm-eval's `hf` model assay takes, and the served models'.
fn key_for(model_type: &str, key: &str) -> Option<Key> {
    let served = model_type.starts_with("local-");
    Some(match key {
        "pretrained" | "gguf_file" | "max_length" | "device" if !served => Key::Honoured,
        "dtype" if !served => Key::Honoured,
        "trust_remote_code" => Key::NoEffect("assay runs no model code"),
        "batch_size" if !served => Key::Honoured,
        "batch_size" => Key::NoEffect(
            "a served model batches on the server; num_concurrent sets the requests in flight",
        ),
        "parallelize" | "max_batch_size" => {
            Key::NoEffect("assay sizes its own batches (--batch-size auto: as many as fit)")
        }
        "base_url" | "model" | "num_concurrent" | "max_retries" | "timeout" | "max_length"
            if served =>
        {
            Key::Honoured
        }
        "tokenizer" | "tokenizer_backend" | "tokenized_requests" if served => {
            Key::NoEffect("prompts go as text; pass --tokenizer FILE.gguf to send token ids")
        }
        _ => return None,
    })
}

impl BackendArgs {
    /// These flags with lm-eval's `--model TYPE --model_args ...`, `--device` and
    /// `--model_args batch_size` turned into assay's own; notes go to stderr.
    pub fn resolved(&self) -> anyhow::Result<BackendArgs> {
        let mut out = self.clone();
        if let Some(device) = &self.device {
            out.gpu_layers = device_layers(device, self.gpu_layers)?;
        }
        let model_type = match self.model.as_slice() {
            [m] if MODEL_TYPES.contains(&m.as_str()) && !Path::new(m).exists() => m.clone(),
            _ => {
                if self.model_args.is_some() {
                    bail!(
                        "--model_args needs an lm-eval model type as --model ({}); with a GGUF file, pass it as --model PATH",
                        MODEL_TYPES.join(", ")
                    );
                }
                return Ok(out);
            }
        };
        let pairs = parse_pairs(self.model_args.as_deref().unwrap_or(""))?;
        for (key, value) in &pairs {
            match key_for(&model_type, key) {
                Some(Key::Honoured) => {}
                Some(Key::NoEffect(why)) => {
                    eprintln!("note: --model_args {key}={value} has no effect: {why}")
                }
                None => bail!(
                    "--model_args: `{key}` is not a key assay honours for --model {model_type} (it takes: {})",
                    known_keys(&model_type).join(", ")
                ),
            }
        }
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        if let Some(n) = get("max_length") {
            out.ctx_size = Some(n.parse().map_err(|_| {
                anyhow::anyhow!("--model_args max_length={n}: give a number of tokens")
            })?);
        }
        if model_type.starts_with("local-") {
            out.backend = BackendKind::Openai;
            out.api = if model_type == "local-chat-completions" {
                ApiArg::Chat
            } else {
                ApiArg::Completions
            };
            let Some(url) = get("base_url") else {
                bail!("--model {model_type} needs --model_args base_url=http://HOST:PORT/v1/completions");
            };
            // lm-eval names the endpoint; assay the API root (it adds the endpoint).
            let root = url
                .trim_end_matches('/')
                .trim_end_matches("/chat/completions")
                .trim_end_matches("/completions");
            out.base_url = vec![root.to_string()];
            out.model_name = get("model").map(str::to_string);
            out.model = vec!["default".into()];
            if let Some(n) = get("num_concurrent") {
                out.concurrency = n.parse().map_err(|_| {
                    anyhow::anyhow!("--model_args num_concurrent={n}: give a number")
                })?;
            }
            if let Some(n) = get("max_retries") {
                out.max_retries = n
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--model_args max_retries={n}: give a number"))?;
            }
            if let Some(s) = get("timeout") {
                out.timeout = s
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--model_args timeout={s}: give seconds"))?;
            }
            return Ok(out);
        }
        let Some(pretrained) = get("pretrained") else {
            bail!("--model {model_type} needs --model_args pretrained=PATH (a GGUF file, or a folder with gguf_file=NAME)");
        };
        let path = match get("gguf_file") {
            Some(file) => Path::new(pretrained).join(file),
            None => PathBuf::from(pretrained),
        };
        let checkpoint = assay_convert::is_checkpoint_folder(&path);
        if path.is_dir() && !checkpoint {
            bail!(
                "--model_args pretrained={}: a folder with neither config.json (a Hugging Face checkpoint) nor gguf_file=NAME",
                path.display()
            );
        }
        if let Some(dtype) = get("dtype") {
            if checkpoint {
                out.dtype = Some(
                    crate::checkpoint::parse_dtype(dtype)
                        .map_err(|e| anyhow::anyhow!("--model_args dtype={e}"))?,
                );
            } else {
                eprintln!(
                    "note: --model_args dtype={dtype} has no effect: a GGUF file runs at the precision it was written in"
                );
            }
        }
        if let Some(device) = get("device") {
            out.gpu_layers = device_layers(device, out.gpu_layers)?;
        }
        if let Some(size) = get("batch_size") {
            out.batch_size = Some(
                crate::backend::parse_batch_size(size)
                    .map_err(|e| anyhow::anyhow!("--model_args batch_size={e}"))?,
            );
        }
        out.backend = BackendKind::Llama;
        out.model = vec![path.display().to_string()];
        Ok(out)
    }
}

/// The keys `key_for` accepts for `model_type`, for error messages.
fn known_keys(model_type: &str) -> Vec<&'static str> {
    [
        "pretrained",
        "gguf_file",
        "dtype",
        "device",
        "max_length",
        "trust_remote_code",
        "parallelize",
        "batch_size",
        "max_batch_size",
        "base_url",
        "model",
        "num_concurrent",
        "max_retries",
        "timeout",
        "tokenizer",
        "tokenizer_backend",
        "tokenized_requests",
    ]
    .into_iter()
    .filter(|k| key_for(model_type, k).is_some())
    .collect()
}

/// GPU layers for lm-eval's `--device`: `cpu` none, `cuda`/`cuda:N` all (a CUDA build only).
fn device_layers(device: &str, current: u32) -> anyhow::Result<u32> {
    match device {
        "cpu" => Ok(0),
        d if d == "cuda" || d.starts_with("cuda:") => {
            if !cfg!(feature = "cuda") {
                bail!("--device {d}: this assay was built without CUDA; build with `cargo build --release --features cuda`, or use --device cpu");
            }
            Ok(if current > 0 { current } else { ALL_LAYERS })
        }
        other => bail!("--device {other}: assay runs on cpu or cuda (cuda:N)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        backend: BackendArgs,
    }

    fn resolved(args: &[&str]) -> anyhow::Result<BackendArgs> {
        let cli = Cli::try_parse_from(std::iter::once("assay").chain(args.iter().copied()))?;
        cli.backend.resolved()
    }

    #[test]
    fn hf_models_become_gguf_paths_and_served_ones_urls() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.gguf"), b"GGUF").unwrap();
        let folder = dir.path().display().to_string();
        let b = resolved(&[
            "--model",
            "hf",
            "--model_args",
            &format!("pretrained={folder},gguf_file=m.gguf,dtype=float16,max_length=512"),
            "--device",
            "cpu",
            "--batch_size",
            "auto:4",
        ])
        .unwrap();
        assert_eq!(b.batch_size, Some(assay_llama::BATCH_AUTO));
        assert_eq!(b.model, [format!("{folder}/m.gguf")]);
        assert_eq!(b.ctx_size, Some(512));
        assert_eq!(b.gpu_layers, 0);
        let b = resolved(&[
            "--model",
            "local-chat-completions",
            "--model_args",
            "base_url=http://h:8000/v1/chat/completions,model=llama,num_concurrent=4",
        ])
        .unwrap();
        assert_eq!(b.backend, BackendKind::Openai);
        assert_eq!(b.api, ApiArg::Chat);
        assert_eq!(b.base_url, ["http://h:8000/v1"]);
        assert_eq!(b.model_name.as_deref(), Some("llama"));
        assert_eq!(b.concurrency, 4);
    }

    #[test]
    fn keys_assay_does_not_honour_are_named() {
        let err = resolved(&[
            "--model",
            "hf",
            "--model_args",
            "pretrained=x.gguf,peft=./a",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`peft` is not a key assay honours for --model hf"),
            "{err}"
        );
        assert!(err.contains("pretrained, gguf_file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let folder = format!("pretrained={}", dir.path().display());
        let err = resolved(&["--model", "hf", "--model_args", &folder])
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither config.json"), "{err}");
        // A checkpoint folder runs converted, at the dtype lm-eval's key asks for.
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let args = format!("{folder},dtype=bfloat16");
        let r = resolved(&["--model", "hf", "--model_args", &args]).unwrap();
        assert_eq!(r.model, [dir.path().display().to_string()]);
        assert_eq!(
            r.dtype,
            Some(crate::checkpoint::Dtype(Some(
                crate::checkpoint::Precision::Native(assay_convert::OutType::Bf16)
            )))
        );
        let args = format!("{folder},dtype=int4");
        let err = resolved(&["--model", "hf", "--model_args", &args])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dtype=`int4`: expected auto"), "{err}");
        let err = resolved(&["--model", "x.gguf", "--model_args", "pretrained=y"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs an lm-eval model type"), "{err}");
        let err = resolved(&["--batch_size", "many"]).unwrap_err().to_string();
        assert!(err.contains("give a number, auto or auto:N"), "{err}");
        let err = resolved(&["--device", "mps"]).unwrap_err().to_string();
        assert!(err.contains("cpu or cuda"), "{err}");
    }
}
