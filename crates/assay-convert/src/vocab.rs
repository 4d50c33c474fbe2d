//! The tokenizer of a checkpoint as llama.cpp's GGUF vocabulary: a SentencePiece
//! `tokenizer.model` (pieces, scores, types), or a `tokenizer.json` of one of the two kinds
//! Hugging Face checkpoints hold. A byte-level BPE (Llama 3, Qwen, OLMo 2) becomes llama.cpp's
//! `gpt2` vocabulary with its merges and the pre-tokenizer named by the split regex; a
//! SentencePiece-style BPE (`▁` for spaces, byte fallback: Gemma, Llama 2, Mistral) becomes the
//! `llama` vocabulary, each token scored by the rank of the first merge that makes it, so that
//! llama.cpp's highest-score-first merging makes the merges in the order the BPE does. The
//! special tokens come from `tokenizer_config.json`, then `config.json`; the chat template from
//! `tokenizer_config.json` or `chat_template.jinja`.

use std::collections::HashMap;
use std::path::Path;

use assay_gguf::container::Value;
use serde_json::Value as Json;

use crate::spm;
use crate::ConvertError;

/// llama.cpp's token types (SentencePiece's numbering).
const NORMAL: i32 = spm::NORMAL;
const CONTROL: i32 = spm::CONTROL;
const USER_DEFINED: i32 = spm::USER_DEFINED;
const UNUSED: i32 = spm::UNUSED;
const BYTE: i32 = spm::BYTE;
const UNKNOWN: i32 = spm::UNKNOWN;

/// GGUF array element types.
const GGUF_I32: u32 = 5;
const GGUF_F32: u32 = 6;
const GGUF_STRING: u32 = 8;

/// The split regexes of byte-level BPE tokenizers whose splitting llama.cpp implements, as
/// `tokenizer.json` writes them.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF metadata and the token texts (padding included) a vocabulary path writes.
type Written = (Vec<(String, Value)>, Vec<String>);

/// A vocabulary as GGUF metadata.
#[derive(Debug, Clone)]
pub struct Vocab {
    /// The `tokenizer.ggml.*` keys (and the chat template).
    pub metadata: Vec<(String, Value)>,
    /// Tokens, padding included.
    pub n_tokens: usize,
    /// Tokens the tokenizer defines (the rest is `[PAD<id>]` up to the embeddings' rows).
    pub n_defined: usize,
}

/// Reads the tokenizer in `dir`. `prefer_spm`: use `tokenizer.model` where there is one (as
/// llama.cpp does for Llama, Gemma and Phi-3); `vocab_size`: the embedding rows, to pad to.
pub fn read(
    dir: &Path,
    prefer_spm: bool,
    vocab_size: Option<usize>,
) -> Result<Vocab, ConvertError> {
    let model_file = dir.join("tokenizer.model");
    let json_file = dir.join("tokenizer.json");
    let tokenizer_json = match json_file.is_file() {
        true => read_json(&json_file)?,
        false => Json::Null,
    };
    let spm = match prefer_spm && model_file.is_file() {
        true => {
            let bytes = std::fs::read(&model_file).map_err(|e| ConvertError::io(&model_file, e))?;
            match spm::parse(&bytes) {
                Ok(m) => Some(m),
                // A tiktoken file named tokenizer.model (Llama 3) is not SentencePiece: the
                // tokenizer.json beside it is the tokenizer.
                Err(_) if !tokenizer_json.is_null() => None,
                Err(why) => return Err(ConvertError::bad(&model_file, why)),
            }
        }
        false => None,
    };
    if spm.is_none() && tokenizer_json.is_null() {
        return Err(ConvertError::bad(
            dir,
            "no tokenizer.json (or tokenizer.model): save the tokenizer with the model (tokenizer.save_pretrained(DIR))",
        ));
    }
    let tokenizer_config = match dir.join("tokenizer_config.json") {
        p if p.is_file() => read_json(&p)?,
        _ => Json::Null,
    };
    let (mut meta, tokens) = match spm {
        Some(model) => {
            let added = match added_from_config(&tokenizer_config) {
                from_config if !from_config.is_empty() => from_config,
                _ => added_tokens(&tokenizer_json),
            };
            sentencepiece(model, &added, vocab_size)
        }
        None => {
            let added = added_tokens(&tokenizer_json);
            from_json(&json_file, &tokenizer_json, &added, vocab_size)?
        }
    };
    special_tokens(dir, &tokenizer_config, &tokenizer_json, &tokens, &mut meta)?;
    let n_defined = tokens
        .iter()
        .rposition(|t| !(t.starts_with("[PAD") && t.ends_with(']')))
        .map_or(0, |i| i + 1);
    Ok(Vocab {
        metadata: meta,
        n_tokens: tokens.len(),
        n_defined,
    })
}

impl Vocab {
    /// Whether some token's text is `text`.
    pub fn has_token(&self, text: &str) -> bool {
        self.metadata.iter().any(|(k, v)| {
            k == "tokenizer.ggml.tokens"
                && matches!(v, Value::Array(_, items) if items.iter().any(|t| matches!(t, Value::String(s) if s == text)))
        })
    }
}

fn read_json(path: &Path) -> Result<Json, ConvertError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConvertError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ConvertError::bad(path, format!("not valid JSON: {e}")))
}

/// An added token: id, text, whether special.
#[derive(Debug, Clone)]
struct Added {
    id: usize,
    content: String,
    special: bool,
}

impl Added {
    /// An added token from its JSON entry (`content`, `special`) and id.
    fn from_json(id: usize, t: &Json) -> Option<Added> {
        Some(Added {
            id,
            content: t.get("content")?.as_str()?.to_string(),
            special: t.get("special").and_then(Json::as_bool).unwrap_or(false),
        })
    }
}

/// `tokenizer.json`'s `added_tokens`.
fn added_tokens(tokenizer: &Json) -> Vec<Added> {
    let list = tokenizer.get("added_tokens").and_then(Json::as_array);
    list.into_iter()
        .flatten()
        .filter_map(|t| Added::from_json(t.get("id")?.as_u64()? as usize, t))
        .collect()
}

/// `tokenizer_config.json`'s `added_tokens_decoder`.
fn added_from_config(tokenizer_config: &Json) -> Vec<Added> {
    let map = tokenizer_config
        .get("added_tokens_decoder")
        .and_then(Json::as_object);
    map.into_iter()
        .flatten()
        .filter_map(|(id, t)| Added::from_json(id.parse().ok()?, t))
        .collect()
}

fn strings(items: &[String]) -> Value {
    Value::Array(
        GGUF_STRING,
        items.iter().map(|s| Value::String(s.clone())).collect(),
    )
}

fn put(meta: &mut Vec<(String, Value)>, key: &str, value: Value) {
    meta.push((format!("tokenizer.ggml.{key}"), value));
}

/// A SentencePiece model: pieces as they are (user-defined pieces as normal ones), ids up to
/// `vocab_size` without a piece as unused `[PAD<id>]`, then the added tokens laid over them.
fn sentencepiece(model: spm::SpmModel, added: &[Added], vocab_size: Option<usize>) -> Written {
    let n = vocab_size.unwrap_or(model.pieces.len());
    let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; n];
    let mut types = vec![UNUSED; n];
    for (i, p) in model.pieces.iter().enumerate().take(n) {
        tokens[i] = p.text.clone();
        scores[i] = p.score;
        types[i] = if p.kind == spm::USER_DEFINED {
            NORMAL
        } else {
            p.kind
        };
    }
    for a in added.iter().filter(|a| a.id < n) {
        scores[a.id] = -1000.0;
        if a.special || looks_special(&a.content) {
            tokens[a.id] = a.content.clone();
            types[a.id] = CONTROL;
        } else {
            tokens[a.id] = a.content.replace('▁', " ");
            types[a.id] = USER_DEFINED;
        }
    }
    let meta = spm_metadata(&tokens, scores, types, model.add_dummy_prefix);
    (meta, tokens)
}

/// The `tokenizer.ggml.*` keys of llama.cpp's SentencePiece (`llama`) vocabulary.
fn spm_metadata(
    tokens: &[String],
    scores: Vec<f32>,
    types: Vec<i32>,
    add_space_prefix: bool,
) -> Vec<(String, Value)> {
    let mut meta = Vec::new();
    put(&mut meta, "model", Value::String("llama".into()));
    put(&mut meta, "pre", Value::String("default".into()));
    put(&mut meta, "tokens", strings(tokens));
    put(
        &mut meta,
        "scores",
        Value::Array(GGUF_F32, scores.into_iter().map(Value::F32).collect()),
    );
    put(
        &mut meta,
        "token_type",
        Value::Array(GGUF_I32, types.into_iter().map(Value::I32).collect()),
    );
    put(&mut meta, "add_space_prefix", Value::Bool(add_space_prefix));
    meta
}

/// The kinds of `tokenizer.json` steps in `node` (a step or a `Sequence` of them).
fn steps(node: &Json) -> Vec<&Json> {
    match node.get("type").and_then(Json::as_str) {
        Some("Sequence") => node
            .get("pretokenizers")
            .or_else(|| node.get("normalizers"))
            .and_then(Json::as_array)
            .map(|v| v.iter().flat_map(steps).collect())
            .unwrap_or_default(),
        Some(_) => vec![node],
        None => Vec::new(),
    }
}

fn step_type(step: &Json) -> &str {
    step.get("type").and_then(Json::as_str).unwrap_or("")
}

/// Merges as `left right` strings (tokenizers writes them as strings or as pairs).
fn merges(model: &Json) -> Vec<String> {
    model
        .get("merges")
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| match m {
                    Json::String(s) => Some(s.clone()),
                    Json::Array(pair) => Some(format!(
                        "{} {}",
                        pair.first()?.as_str()?,
                        pair.get(1)?.as_str()?
                    )),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Tokens in id order from the model's vocabulary and the added tokens; ids without a token are
/// `[PAD<id>]`.
fn id_order(
    vocab: &serde_json::Map<String, Json>,
    added: &[Added],
    n: usize,
    path: &Path,
) -> Result<Vec<Option<String>>, ConvertError> {
    let top = vocab
        .values()
        .filter_map(Json::as_u64)
        .map(|i| i as usize + 1)
        .chain(added.iter().map(|a| a.id + 1))
        .max()
        .unwrap_or(0);
    // A hostile or broken file could name id 10^12: ids past every token and the embeddings
    // are refused before anything is allocated for them.
    let limit = n.max(vocab.len() + added.len());
    if top > limit {
        return Err(ConvertError::bad(
            path,
            format!(
                "a token id {} is past the {limit} tokens the file and config.json allow",
                top - 1
            ),
        ));
    }
    let mut tokens = vec![None; n.max(top)];
    for (text, id) in vocab {
        if let Some(id) = id.as_u64() {
            tokens[id as usize] = Some(text.clone());
        }
    }
    for a in added {
        tokens[a.id] = Some(a.content.clone());
    }
    Ok(tokens)
}

/// Whether an added token that is not marked special looks like a control token.
fn looks_special(token: &str) -> bool {
    matches!(token, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (token.starts_with("<|") && token.ends_with("|>"))
        || (token.starts_with("<｜") && token.ends_with("｜>"))
        || (token.starts_with("<unused") && token.ends_with('>'))
}

fn from_json(
    path: &Path,
    tokenizer: &Json,
    added: &[Added],
    vocab_size: Option<usize>,
) -> Result<Written, ConvertError> {
    let model = tokenizer.get("model").cloned().unwrap_or(Json::Null);
    let kind = model.get("type").and_then(Json::as_str).unwrap_or("BPE");
    if kind != "BPE" {
        return Err(ConvertError::Unsupported {
            path: path.to_path_buf(),
            what: format!("a {kind} tokenizer"),
            hint: "byte-level BPE (Llama 3, Qwen, OLMo 2) and SentencePiece-style BPE (Gemma, Llama 2, Mistral) tokenizer.json files convert".into(),
        });
    }
    let Some(vocab) = model.get("vocab").and_then(Json::as_object) else {
        return Err(ConvertError::bad(path, "model.vocab is missing"));
    };
    let merges = merges(&model);
    let pre = tokenizer
        .get("pre_tokenizer")
        .map(steps)
        .unwrap_or_default();
    let normalizers = tokenizer.get("normalizer").map(steps).unwrap_or_default();
    let byte_level = pre.iter().any(|s| step_type(s) == "ByteLevel");
    let special_ids: HashMap<usize, bool> = added.iter().map(|a| (a.id, a.special)).collect();
    let tokens = id_order(vocab, added, vocab_size.unwrap_or(0), path)?;
    let mut meta = Vec::new();
    if byte_level {
        let ignore_merges = model
            .get("ignore_merges")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let name = pre_tokenizer_name(path, &pre, ignore_merges)?;
        let mut types = Vec::with_capacity(tokens.len());
        let texts: Vec<String> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                None => {
                    types.push(UNUSED);
                    format!("[PAD{i}]")
                }
                Some(t) => match special_ids.get(&i) {
                    Some(true) => {
                        types.push(CONTROL);
                        t.clone()
                    }
                    Some(false) if looks_special(t) => {
                        types.push(CONTROL);
                        t.clone()
                    }
                    Some(false) => {
                        types.push(USER_DEFINED);
                        t.replace('▁', " ")
                    }
                    None => {
                        types.push(NORMAL);
                        t.clone()
                    }
                },
            })
            .collect();
        put(&mut meta, "model", Value::String("gpt2".into()));
        put(&mut meta, "pre", Value::String(name.into()));
        put(&mut meta, "tokens", strings(&texts));
        put(
            &mut meta,
            "token_type",
            Value::Array(GGUF_I32, types.into_iter().map(Value::I32).collect()),
        );
        put(&mut meta, "merges", strings(&merges));
        return Ok((meta, texts));
    }
    let spm_style = model.get("byte_fallback").and_then(Json::as_bool) == Some(true)
        || normalizers.iter().chain(pre.iter()).any(|s| {
            matches!(step_type(s), "Metaspace")
                || s.get("content").and_then(Json::as_str) == Some("▁")
        });
    if !spm_style {
        return Err(ConvertError::Unsupported {
            path: path.to_path_buf(),
            what: "a BPE tokenizer.json that is neither byte-level nor SentencePiece-style".into(),
            hint: "byte-level BPE (a ByteLevel pre-tokenizer) and SentencePiece-style BPE (▁ for spaces, byte_fallback) convert".into(),
        });
    }
    // A space put before the text: a `Prepend ▁` normaliser or a Metaspace that prepends.
    let add_space_prefix =
        normalizers.iter().any(|s| {
            step_type(s) == "Prepend" && s.get("prepend").and_then(Json::as_str) == Some("▁")
        }) || pre.iter().any(|s| {
            step_type(s) == "Metaspace"
                && matches!(
                    s.get("prepend_scheme").and_then(Json::as_str),
                    Some("first") | Some("always")
                )
        }) || pre.iter().any(|s| {
            step_type(s) == "Metaspace"
                && s.get("add_prefix_space").and_then(Json::as_bool) == Some(true)
        });
    let mut rank: HashMap<String, usize> = HashMap::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        if let Some((l, r)) = m.split_once(' ') {
            rank.entry(format!("{l}{r}")).or_insert(i);
        }
    }
    let unk = model.get("unk_token").and_then(Json::as_str);
    let unmerged = merges.len() as f32;
    let mut scores = Vec::with_capacity(tokens.len());
    let mut types = Vec::with_capacity(tokens.len());
    let texts: Vec<String> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| match t {
            None => {
                scores.push(-1000.0);
                types.push(UNUSED);
                format!("[PAD{i}]")
            }
            Some(t) => {
                let (score, kind) = match special_ids.get(&i) {
                    Some(true) => (-1000.0, CONTROL),
                    Some(false) if looks_special(t) => (-1000.0, CONTROL),
                    Some(false) => (-1000.0, USER_DEFINED),
                    None if Some(t.as_str()) == unk => (0.0, UNKNOWN),
                    None if is_byte_token(t) => (0.0, BYTE),
                    None => match rank.get(t) {
                        Some(r) => (-(*r as f32), NORMAL),
                        // Never made by a merge (single characters): below every merge.
                        None => (-unmerged - i as f32, NORMAL),
                    },
                };
                scores.push(score);
                types.push(kind);
                t.clone()
            }
        })
        .collect();
    let meta = spm_metadata(&texts, scores, types, add_space_prefix);
    Ok((meta, texts))
}

fn is_byte_token(t: &str) -> bool {
    t.len() == 6
        && t.starts_with("<0x")
        && t.ends_with('>')
        && u8::from_str_radix(&t[3..5], 16).is_ok()
}

/// llama.cpp's name for the pre-tokenizer of a byte-level BPE.
fn pre_tokenizer_name(
    path: &Path,
    pre: &[&Json],
    ignore_merges: bool,
) -> Result<&'static str, ConvertError> {
    let regex = pre.iter().find_map(|s| {
        (step_type(s) == "Split")
            .then(|| s.get("pattern")?.get("Regex")?.as_str())
            .flatten()
    });
    // Llama 3 and cl100k (DBRX, OLMo 2) split alike; Llama 3 also takes a whole word found in
    // the vocabulary as one token (`ignore_merges`). ByteLevel alone splits with GPT-2's regex.
    match regex {
        None => Ok("gpt-2"),
        Some(LLAMA3_REGEX) if ignore_merges => Ok("llama-bpe"),
        Some(LLAMA3_REGEX) => Ok("dbrx"),
        Some(QWEN2_REGEX) => Ok("qwen2"),
        Some(regex) => Err(ConvertError::Unsupported {
            path: path.to_path_buf(),
            what: format!("the pre-tokenizer split regex {regex:?}"),
            hint: "llama.cpp splits text with its own regexes, known here for Llama 3, Qwen 2/3, OLMo 2 (DBRX) and GPT-2".into(),
        }),
    }
}

/// The special token ids, add-BOS/EOS flags and chat template, found as llama.cpp's converter
/// finds them: `tokenizer_config.json`'s `<kind>_token` looked up among the added tokens, then
/// `config.json`'s `<kind>_token_id`; the flags from the post-processor's template, overridden
/// by `tokenizer_config.json`'s `add_<kind>_token`.
fn special_tokens(
    dir: &Path,
    tokenizer_config: &Json,
    tokenizer_json: &Json,
    tokens: &[String],
    meta: &mut Vec<(String, Value)>,
) -> Result<(), ConvertError> {
    let added = added_tokens(tokenizer_json);
    let config = match dir.join("config.json") {
        p if p.is_file() => read_json(&p)?,
        _ => Json::Null,
    };
    let token_text = |kind: &str| -> Option<String> {
        match tokenizer_config.get(format!("{kind}_token"))? {
            Json::String(s) => Some(s.clone()),
            Json::Object(o) => Some(o.get("content")?.as_str()?.to_string()),
            _ => None,
        }
    };
    for (kind, key) in [
        ("bos", "bos_token_id"),
        ("eos", "eos_token_id"),
        ("unk", "unknown_token_id"),
        ("sep", "seperator_token_id"),
        ("pad", "padding_token_id"),
    ] {
        let from_tokenizer = token_text(kind)
            .and_then(|text| added.iter().find(|a| a.content == text).map(|a| a.id));
        let from_config = || {
            let v = config
                .get(format!("{kind}_token_id"))
                .or_else(|| config.get("text_config")?.get(format!("{kind}_token_id")))?;
            v.as_u64().map(|i| i as usize)
        };
        if let Some(id) = from_tokenizer
            .or_else(from_config)
            .filter(|&i| i < tokens.len())
        {
            put(meta, key, Value::U32(id as u32));
        }
    }
    let mut flags: Vec<(&str, bool)> = Vec::new();
    if let Some(single) = template_single(tokenizer_json) {
        let special = |item: Option<&Json>| -> Option<String> {
            Some(item?.get("SpecialToken")?.get("id")?.as_str()?.to_string())
        };
        if single.len() > 1 {
            let first = special(single.first());
            let last = special(single.last());
            flags.push(("bos", first.is_some() && first == token_text("bos")));
            flags.push(("eos", last.is_some() && last == token_text("eos")));
            flags.push(("sep", false));
        }
    }
    for kind in ["bos", "eos"] {
        if let Some(flag) = tokenizer_config
            .get(format!("add_{kind}_token"))
            .and_then(Json::as_bool)
        {
            flags.retain(|(k, _)| *k != kind);
            flags.push((kind, flag));
        }
    }
    flags.sort_by_key(|(k, _)| ["bos", "eos", "sep"].iter().position(|x| x == k));
    for (kind, flag) in flags {
        put(meta, &format!("add_{kind}_token"), Value::Bool(flag));
    }
    let template = match tokenizer_config.get("chat_template") {
        Some(Json::String(t)) => Some(t.clone()),
        _ => {
            let file = dir.join("chat_template.jinja");
            file.is_file()
                .then(|| std::fs::read_to_string(&file).map_err(|e| ConvertError::io(&file, e)))
                .transpose()?
        }
    };
    if let Some(t) = template {
        meta.push(("tokenizer.chat_template".into(), Value::String(t)));
    }
    Ok(())
}

/// The `single` template of a `TemplateProcessing` post-processor (alone or in a sequence).
fn template_single(tokenizer_json: &Json) -> Option<&Vec<Json>> {
    let post = tokenizer_json.get("post_processor")?;
    let all: Vec<&Json> = match post.get("processors").and_then(Json::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![post],
    };
    all.into_iter()
        .find(|p| step_type(p) == "TemplateProcessing")?
        .get("single")?
        .as_array()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_id_far_past_the_vocabulary_is_refused_not_allocated() {
        let vocab = serde_json::json!({"a": 0, "b": 1_000_000_000_000u64});
        let err = id_order(
            vocab.as_object().unwrap(),
            &[],
            10,
            Path::new("tokenizer.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("past the 10 tokens"), "{err}");
    }
}
