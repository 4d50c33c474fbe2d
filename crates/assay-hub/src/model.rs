//! A model named by its Hub id, as `--model org/name[@revision][:QUANT]`: from a GGUF repository
//! the one GGUF file of the asked quantisation (as llama.cpp's `-hf org/name:QUANT` picks it:
//! `Q4_K_M` unless told, else the only file, with every part of a split file), or a checkpoint
//! repository's config, weights and tokenizer files, downloaded into the shared cache.

use std::path::PathBuf;

use crate::client::{Hub, RepoKind, Snapshot};
use crate::HubError;

/// The quantisation llama.cpp's `-hf` takes when none is named.
const DEFAULT_QUANT: &str = "Q4_K_M";

/// The files of a checkpoint repository a conversion reads (besides the safetensors).
const CHECKPOINT_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "model.safetensors.index.json",
];

/// A Hub model id as `--model` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// `org/name`.
    pub repo: String,
    /// Branch, tag or commit (`main` unless `@rev` is given).
    pub revision: String,
    /// The quantisation after `:`, for GGUF repositories.
    pub quant: Option<String>,
}

impl ModelRef {
    /// Parses `org/name[@revision][:QUANT]`; `None` for text that is not shaped like a Hub id
    /// (a path with more than one `/`, `./`, a `.gguf` name).
    pub fn parse(text: &str) -> Option<ModelRef> {
        let (rest, quant) = match text.rsplit_once(':') {
            Some((r, q))
                if !q.is_empty() && q.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                (r, Some(q.to_string()))
            }
            _ => (text, None),
        };
        let (id, revision) = match rest.split_once('@') {
            Some((id, rev)) if !rev.is_empty() => (id, rev.to_string()),
            Some(_) => return None,
            None => (rest, "main".to_string()),
        };
        let (org, name) = id.split_once('/')?;
        let part_ok = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !part_ok(org) || !part_ok(name) || name.ends_with(".gguf") {
            return None;
        }
        Some(ModelRef {
            repo: id.to_string(),
            revision,
            quant,
        })
    }
}

/// What a model id gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFiles {
    /// A GGUF file (the first part of a split one).
    Gguf(PathBuf),
    /// The snapshot folder of a checkpoint, with its files downloaded.
    Checkpoint(PathBuf),
}

/// Downloads (or finds in the cache) the model `model` names.
pub fn fetch_model(hub: &Hub, model: &ModelRef) -> Result<ModelFiles, HubError> {
    let snapshot = hub.snapshot_of(RepoKind::Model, &model.repo, &model.revision)?;
    let ggufs: Vec<&String> = snapshot
        .files
        .iter()
        .filter(|f| f.ends_with(".gguf") && !f.to_lowercase().contains("mmproj"))
        .collect();
    if !ggufs.is_empty() {
        let parts = pick_gguf(&snapshot, &ggufs, model.quant.as_deref())?;
        let mut first = None;
        for part in &parts {
            let local = hub.file(&snapshot, part)?;
            first.get_or_insert(local);
        }
        return Ok(ModelFiles::Gguf(first.expect("a GGUF file was picked")));
    }
    let bad = |message: String| HubError::Http {
        url: format!("{}@{}", model.repo, model.revision),
        message,
    };
    if let Some(q) = &model.quant {
        return Err(bad(format!(
            "`:{q}` picks a GGUF file, and model {} has none (it is a checkpoint: drop `:{q}` and choose the precision with --dtype)",
            model.repo
        )));
    }
    if !snapshot.files.iter().any(|f| f == "config.json") {
        return Err(bad(format!(
            "model {} has neither GGUF files nor a config.json: not a model assay can run",
            model.repo
        )));
    }
    let weights: Vec<&String> = snapshot
        .files
        .iter()
        .filter(|f| !f.contains('/') && f.ends_with(".safetensors"))
        .collect();
    if weights.is_empty() {
        return Err(bad(format!(
            "model {} has no .safetensors weights (pickled PyTorch weights are not read)",
            model.repo
        )));
    }
    let mut folder = None;
    for file in CHECKPOINT_FILES
        .iter()
        .filter(|f| snapshot.files.iter().any(|s| s == *f))
        .map(|f| f.to_string())
        .chain(weights.into_iter().cloned())
    {
        let local = hub.file(&snapshot, &file)?;
        folder.get_or_insert_with(|| local.parent().map(PathBuf::from).unwrap_or_default());
    }
    Ok(ModelFiles::Checkpoint(folder.unwrap_or_default()))
}

/// The GGUF file(s) for `quant` (all parts of a split file, in order).
fn pick_gguf(
    snapshot: &Snapshot,
    ggufs: &[&String],
    quant: Option<&str>,
) -> Result<Vec<String>, HubError> {
    let quant_of = |f: &str| -> String {
        let stem = f.rsplit('/').next().unwrap_or(f).trim_end_matches(".gguf");
        let stem = strip_split_suffix(stem);
        stem.rsplit(['-', '.'])
            .next()
            .unwrap_or(stem)
            .to_uppercase()
    };
    let matching = |q: &str| -> Vec<String> {
        let q = q.to_uppercase();
        let mut files: Vec<String> = ggufs
            .iter()
            .filter(|f| quant_of(f) == q || f.to_uppercase().contains(&format!("{q}/")))
            .map(|f| f.to_string())
            .collect();
        files.sort();
        files
    };
    let chosen = match quant {
        Some(q) => matching(q),
        None => {
            let default = matching(DEFAULT_QUANT);
            if default.is_empty() {
                let first = ggufs
                    .iter()
                    .min()
                    .map(|f| f.to_string())
                    .unwrap_or_default();
                let q = quant_of(&first);
                let all = matching(&q);
                if all.is_empty() {
                    vec![first]
                } else {
                    all
                }
            } else {
                default
            }
        }
    };
    if chosen.is_empty() {
        let mut known: Vec<String> = ggufs.iter().map(|f| quant_of(f)).collect();
        known.sort();
        known.dedup();
        return Err(HubError::FileNotFound {
            kind: RepoKind::Model,
            repo: snapshot.repo.clone(),
            revision: snapshot.revision.clone(),
            path: format!(
                "*{}.gguf (its quantisations: {})",
                quant.unwrap_or(DEFAULT_QUANT),
                known.join(", ")
            ),
        });
    }
    Ok(chosen)
}

/// `name-00001-of-00003` → `name`.
fn strip_split_suffix(stem: &str) -> &str {
    let n = stem.len();
    let tail = stem.get(n.saturating_sub(15)..).unwrap_or("");
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let split = n > 15
        && tail.is_ascii()
        && tail.starts_with('-')
        && digits(&tail[1..6])
        && &tail[6..10] == "-of-"
        && digits(&tail[10..]);
    if split {
        &stem[..n - 15]
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_the_hub_and_llama_cpp() {
        let m = ModelRef::parse("unsloth/gemma-3-270m-it-GGUF:Q4_K_M").unwrap();
        assert_eq!(m.repo, "unsloth/gemma-3-270m-it-GGUF");
        assert_eq!(m.quant.as_deref(), Some("Q4_K_M"));
        assert_eq!(m.revision, "main");
        let m = ModelRef::parse("google/gemma-3-270m@v1.0").unwrap();
        assert_eq!((m.revision.as_str(), m.quant), ("v1.0", None));
        for not_an_id in [
            "model.gguf",
            "./a/b",
            "a/b/c",
            "/abs/path",
            "a/b.gguf",
            "default",
            "../x",
        ] {
            assert_eq!(ModelRef::parse(not_an_id), None, "{not_an_id}");
        }
    }

    #[test]
    fn quantisations_are_picked_as_llama_cpp_picks_them() {
        let snap = Snapshot {
            kind: RepoKind::Model,
            repo: "o/m".into(),
            revision: "main".into(),
            commit: "0".repeat(40),
            files: vec![],
        };
        let files: Vec<String> = [
            "m-Q8_0.gguf",
            "m-Q4_K_M.gguf",
            "m.F16-00001-of-00002.gguf",
            "m.F16-00002-of-00002.gguf",
        ]
        .map(String::from)
        .to_vec();
        let refs: Vec<&String> = files.iter().collect();
        assert_eq!(pick_gguf(&snap, &refs, None).unwrap(), ["m-Q4_K_M.gguf"]);
        assert_eq!(
            pick_gguf(&snap, &refs, Some("q8_0")).unwrap(),
            ["m-Q8_0.gguf"]
        );
        assert_eq!(
            pick_gguf(&snap, &refs, Some("F16")).unwrap(),
            ["m.F16-00001-of-00002.gguf", "m.F16-00002-of-00002.gguf"]
        );
        let err = pick_gguf(&snap, &refs, Some("IQ2_XS"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("its quantisations: F16, Q4_K_M, Q8_0"),
            "{err}"
        );
    }
}
