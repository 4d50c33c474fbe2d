//! The architectures a checkpoint converts from, each as llama.cpp's converter writes it: the
//! GGUF architecture name, the hyperparameter keys, where each Hugging Face tensor goes, and the
//! changes llama.cpp's graph expects of the weights (Llama's rotary row order for Q and K,
//! Gemma's `1 + w` norms, Llama 3's rope frequency factors).

use assay_gguf::container::Value;
use serde_json::Value as Json;

use crate::config::Config;
use crate::ConvertError;

/// A supported model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Llama 1-3, TinyLlama, Mistral (llama.cpp runs Mistral as `llama`).
    Llama,
    /// Qwen 2 and 2.5.
    Qwen2,
    /// Qwen 3 (dense).
    Qwen3,
    /// Gemma 2.
    Gemma2,
    /// Gemma 3 (text; the language model of the multimodal checkpoints).
    Gemma3,
    /// Phi-3 and Phi-3.5 (fused QKV and gate-up projections).
    Phi3,
    /// OLMo 2.
    Olmo2,
}

/// `architectures[0]` values and their family.
const CLASSES: &[(&str, Family)] = &[
    ("LlamaForCausalLM", Family::Llama),
    ("MistralForCausalLM", Family::Llama),
    ("Qwen2ForCausalLM", Family::Qwen2),
    ("Qwen3ForCausalLM", Family::Qwen3),
    ("Gemma2ForCausalLM", Family::Gemma2),
    ("Gemma3ForCausalLM", Family::Gemma3),
    ("Gemma3ForConditionalGeneration", Family::Gemma3),
    ("Phi3ForCausalLM", Family::Phi3),
    ("Olmo2ForCausalLM", Family::Olmo2),
];

/// Where a checkpoint tensor goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Written under this GGUF name.
    Tensor(Mapped),
    /// Not part of the language model llama.cpp runs (rotary caches, a tied or unused head,
    /// vision towers).
    Skipped,
}

/// A tensor's GGUF name and the change made to its values on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// What to do to the values.
    pub change: Change,
}

/// A change to a tensor's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// As stored.
    None,
    /// Llama's rotary row permutation over `heads` heads.
    Permute {
        /// Head count of the projection (KV heads for K).
        heads: usize,
    },
    /// Gemma's norms multiply by `1 + w`; llama.cpp's by `w`.
    AddOne,
    /// Keep the first `rows` rows (Gemma 3's embeddings past the tokenizer's vocabulary).
    FirstRows {
        /// Rows kept.
        rows: usize,
    },
}

impl Family {
    /// The family of a `config.json`, or an error naming the class and the supported ones.
    pub fn of(config: &Config) -> Result<Family, ConvertError> {
        CLASSES
            .iter()
            .find(|(c, _)| *c == config.class)
            .map(|(_, f)| *f)
            .ok_or_else(|| ConvertError::Unsupported {
                path: config.path.clone(),
                what: format!("architecture {}", config.class),
                hint: format!(
                    "checkpoints of {} convert; convert others with llama.cpp's convert_hf_to_gguf.py and pass the .gguf",
                    CLASSES.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
                ),
            })
    }

    /// `general.architecture`.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3",
            Family::Phi3 => "phi3",
            Family::Olmo2 => "olmo2",
        }
    }

    /// Whether llama.cpp reads the vocabulary from `tokenizer.model` where there is one.
    pub fn prefers_sentencepiece(self) -> bool {
        matches!(
            self,
            Family::Llama | Family::Gemma2 | Family::Gemma3 | Family::Phi3
        )
    }

    /// Whether the embeddings are cut to the tokenizer's vocabulary (Gemma 3) instead of the
    /// vocabulary padded to the embeddings.
    pub fn vocab_from_tokenizer(self) -> bool {
        self == Family::Gemma3
    }

    /// The `<arch>.*` hyperparameter keys.
    pub fn metadata(self, c: &Config) -> Result<Vec<(String, Value)>, ConvertError> {
        let arch = self.gguf_name();
        let mut m: Vec<(String, Value)> = Vec::new();
        let u32_key = |m: &mut Vec<(String, Value)>, key: &str, v: u64| {
            m.push((format!("{arch}.{key}"), Value::U32(v as u32)));
        };
        let heads = c.u64("num_attention_heads")?;
        let hidden = c.u64("hidden_size")?;
        let head_dim = c.opt_u64("head_dim");
        let context = match self {
            Family::Gemma3 => c.opt_u64("max_position_embeddings").unwrap_or(131_072),
            _ => c.u64("max_position_embeddings")?,
        };
        u32_key(&mut m, "context_length", context);
        u32_key(&mut m, "embedding_length", hidden);
        u32_key(&mut m, "block_count", c.u64("num_hidden_layers")?);
        u32_key(&mut m, "feed_forward_length", c.u64("intermediate_size")?);
        u32_key(&mut m, "attention.head_count", heads);
        u32_key(
            &mut m,
            "attention.head_count_kv",
            c.opt_u64("num_key_value_heads").unwrap_or(heads),
        );
        // transformers' defaults where a config.json leaves the key out.
        let eps = c.opt_f64("rms_norm_eps").unwrap_or(match self {
            Family::Phi3 | Family::Olmo2 => 1e-5,
            _ => 1e-6,
        });
        m.push((
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(eps as f32),
        ));
        let theta = match self {
            Family::Gemma3 => Some(c.rope_theta().unwrap_or(1_000_000.0)),
            _ => c.rope_theta(),
        };
        if let Some(theta) = theta {
            m.push((format!("{arch}.rope.freq_base"), Value::F32(theta as f32)));
        }
        let local_theta = c
            .get("rope_parameters")
            .or_else(|| c.get("rope_scaling"))
            .and_then(|r| r.get("sliding_attention")?.get("rope_theta")?.as_f64())
            .or_else(|| c.opt_f64("rope_local_base_freq"));
        if let Some(local) = local_theta {
            m.push((
                format!("{arch}.rope.freq_base_swa"),
                Value::F32(local as f32),
            ));
        }
        let head_dim = match self {
            Family::Gemma3 => Some(head_dim.unwrap_or(256)),
            Family::Gemma2 => Some(c.u64("head_dim")?),
            _ => head_dim,
        };
        if let Some(d) = head_dim {
            u32_key(&mut m, "attention.key_length", d);
            u32_key(&mut m, "attention.value_length", d);
        }
        match self {
            Family::Llama => {
                if let Some(v) = c.opt_u64("vocab_size") {
                    u32_key(&mut m, "vocab_size", v);
                }
                u32_key(
                    &mut m,
                    "rope.dimension_count",
                    head_dim.unwrap_or(hidden / heads),
                );
            }
            Family::Gemma2 => {
                for key in ["attn_logit_softcapping", "final_logit_softcapping"] {
                    if let Some(v) = c.opt_f64(key) {
                        m.push((format!("{arch}.{key}"), Value::F32(v as f32)));
                    }
                }
                u32_key(&mut m, "attention.sliding_window", c.u64("sliding_window")?);
            }
            Family::Gemma3 => {
                if let Some(v) = c.opt_f64("final_logit_softcapping") {
                    m.push((
                        format!("{arch}.final_logit_softcapping"),
                        Value::F32(v as f32),
                    ));
                }
                if c.opt_u64("sliding_window_pattern") != Some(1) {
                    u32_key(&mut m, "attention.sliding_window", c.u64("sliding_window")?);
                }
            }
            Family::Phi3 => {
                let rotary = c.opt_f64("partial_rotary_factor").unwrap_or(1.0);
                u32_key(
                    &mut m,
                    "rope.dimension_count",
                    (rotary * hidden as f64) as u64 / heads,
                );
                u32_key(
                    &mut m,
                    "rope.scaling.original_context_length",
                    c.opt_u64("original_max_position_embeddings")
                        .unwrap_or(context),
                );
                u32_key(
                    &mut m,
                    "attention.sliding_window",
                    c.opt_u64("sliding_window").unwrap_or(0),
                );
            }
            Family::Qwen2 | Family::Qwen3 | Family::Olmo2 => {}
        }
        self.rope_scaling(c, &mut m)?;
        Ok(m)
    }

    /// Rotary scaling keys for linear and YaRN scaling; Llama 3's scaling is a tensor
    /// ([`Family::extra_tensors`]), Phi-3's LongRoPE two.
    fn rope_scaling(self, c: &Config, m: &mut Vec<(String, Value)>) -> Result<(), ConvertError> {
        let Some(rope) = c.rope_scaling() else {
            return Ok(());
        };
        let kind = rope
            .get("rope_type")
            .or_else(|| rope.get("type"))
            .and_then(Json::as_str)
            .unwrap_or("default");
        let arch = self.gguf_name();
        let factor = rope.get("factor").and_then(Json::as_f64);
        match (kind, self) {
            ("default", _) => {}
            ("llama3", Family::Llama) => {}
            ("longrope", Family::Phi3) | ("su", Family::Phi3) => {
                let original = c
                    .opt_u64("original_max_position_embeddings")
                    .unwrap_or(4096) as f64;
                let scale = c.opt_f64("max_position_embeddings").unwrap_or(original) / original;
                let attn = if scale > 1.0 {
                    (1.0 + scale.ln() / original.ln()).sqrt()
                } else {
                    1.0
                };
                m.push((
                    format!("{arch}.rope.scaling.attn_factor"),
                    Value::F32(attn as f32),
                ));
            }
            ("linear", _) | ("yarn", _) => {
                let Some(factor) = factor else {
                    return Err(ConvertError::bad(
                        &c.path,
                        format!("rope scaling `{kind}` without a factor"),
                    ));
                };
                m.push((
                    format!("{arch}.rope.scaling.type"),
                    Value::String(kind.into()),
                ));
                m.push((
                    format!("{arch}.rope.scaling.factor"),
                    Value::F32(factor as f32),
                ));
                if kind == "yarn" {
                    if let Some(n) = rope
                        .get("original_max_position_embeddings")
                        .and_then(Json::as_u64)
                    {
                        m.push((
                            format!("{arch}.rope.scaling.original_context_length"),
                            Value::U32(n as u32),
                        ));
                    }
                }
            }
            (other, _) => {
                return Err(ConvertError::Unsupported {
                    path: c.path.clone(),
                    what: format!("rope scaling `{other}` for {}", c.class),
                    hint: "linear and YaRN scaling, Llama 3's and Phi-3's own, convert".into(),
                })
            }
        }
        Ok(())
    }

    /// Tensors llama.cpp needs that the checkpoint computes at load time: Llama 3's
    /// `rope_freqs.weight`, Phi-3's LongRoPE factors. (name, F32 values).
    pub fn extra_tensors(self, c: &Config) -> Result<Vec<(String, Vec<f32>)>, ConvertError> {
        let Some(rope) = c.rope_scaling() else {
            return Ok(Vec::new());
        };
        let kind = rope
            .get("rope_type")
            .or_else(|| rope.get("type"))
            .and_then(Json::as_str)
            .unwrap_or("default");
        let num = |k: &str, d: f64| rope.get(k).and_then(Json::as_f64).unwrap_or(d);
        match (self, kind) {
            (Family::Llama, "llama3") => {
                let heads = c.u64("num_attention_heads")?;
                let dim = c
                    .opt_u64("head_dim")
                    .unwrap_or(c.u64("hidden_size")? / heads) as usize;
                let base = c.rope_theta().unwrap_or(10_000.0);
                let factor = num("factor", 8.0);
                let low = num("low_freq_factor", 1.0);
                let high = num("high_freq_factor", 4.0);
                let old = rope
                    .get("original_max_position_embeddings")
                    .and_then(Json::as_f64)
                    .or_else(|| c.opt_f64("original_max_position_embeddings"))
                    .unwrap_or(8192.0);
                let (low_wavelen, high_wavelen) = (old / low, old / high);
                let factors = (0..dim)
                    .step_by(2)
                    .map(|i| {
                        let freq = 1.0 / (base as f32).powf(i as f32 / dim as f32);
                        let wavelen = 2.0 * std::f64::consts::PI / f64::from(freq);
                        let f = if wavelen < high_wavelen {
                            1.0
                        } else if wavelen > low_wavelen {
                            factor
                        } else {
                            let smooth = (old / wavelen - low) / (high - low);
                            1.0 / ((1.0 - smooth) / factor + smooth)
                        };
                        f as f32
                    })
                    .collect();
                Ok(vec![("rope_freqs.weight".into(), factors)])
            }
            (Family::Phi3, "longrope" | "su") => {
                let list = |k: &str| -> Result<Vec<f32>, ConvertError> {
                    rope.get(k)
                        .and_then(Json::as_array)
                        .map(|v| {
                            v.iter()
                                .filter_map(Json::as_f64)
                                .map(|x| x as f32)
                                .collect()
                        })
                        .ok_or_else(|| {
                            ConvertError::bad(&c.path, format!("rope_scaling has no `{k}` list"))
                        })
                };
                Ok(vec![
                    ("rope_factors_long.weight".into(), list("long_factor")?),
                    ("rope_factors_short.weight".into(), list("short_factor")?),
                ])
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Where the checkpoint tensor `name` goes; an error for a tensor this family has no place
    /// for. `n_vocab`: the tokenizer's vocabulary, for Gemma 3's embeddings.
    pub fn place(self, c: &Config, name: &str, n_vocab: usize) -> Result<Placement, ConvertError> {
        let skipped = name.ends_with(".rotary_emb.inv_freq")
            || [
                "vision_tower.",
                "multi_modal_projector.",
                "model.vision_tower.",
                "model.multi_modal_projector.",
                "vision_model.",
            ]
            .iter()
            .any(|p| name.starts_with(p));
        if skipped {
            return Ok(Placement::Skipped);
        }
        let rest = name
            .strip_prefix("model.language_model.")
            .or_else(|| name.strip_prefix("language_model.model."))
            .or_else(|| name.strip_prefix("model."))
            .or_else(|| name.strip_prefix("language_model."))
            .unwrap_or(name);
        let unknown = || {
            ConvertError::Unsupported {
            path: c.path.clone(),
            what: format!("tensor {name} in a {} checkpoint", c.class),
            hint: "it has no place in llama.cpp's graph for this architecture (a checkpoint with extra modules, e.g. a value head or a merged adapter left unmerged?)".into(),
        }
        };
        let gemma = matches!(self, Family::Gemma2 | Family::Gemma3);
        let norm_change = if gemma { Change::AddOne } else { Change::None };
        let mapped = |name: String, change| Ok(Placement::Tensor(Mapped { name, change }));
        match rest {
            "embed_tokens.weight" => {
                let change = if self.vocab_from_tokenizer() {
                    Change::FirstRows { rows: n_vocab }
                } else {
                    Change::None
                };
                return mapped("token_embd.weight".into(), change);
            }
            "norm.weight" => return mapped("output_norm.weight".into(), norm_change),
            "lm_head.weight" => {
                let tied = c
                    .get("tie_word_embeddings")
                    .and_then(Json::as_bool)
                    .unwrap_or(gemma);
                return if gemma || tied {
                    Ok(Placement::Skipped)
                } else {
                    mapped("output.weight".into(), Change::None)
                };
            }
            _ => {}
        }
        let Some(layer_rest) = rest.strip_prefix("layers.") else {
            return Err(unknown());
        };
        let Some((layer, part)) = layer_rest.split_once('.') else {
            return Err(unknown());
        };
        let Ok(layer) = layer.parse::<usize>() else {
            return Err(unknown());
        };
        let (module, suffix) = match part.rsplit_once('.') {
            Some((m, s @ ("weight" | "bias"))) => (m, s),
            _ => return Err(unknown()),
        };
        let heads = c.u64("num_attention_heads")? as usize;
        let heads_kv = c
            .opt_u64("num_key_value_heads")
            .map_or(heads, |h| h as usize);
        let llama = self == Family::Llama;
        let (gguf, change) = match (module, self) {
            ("input_layernorm", Family::Olmo2) => return Err(unknown()),
            ("input_layernorm", _) => ("attn_norm", norm_change),
            ("self_attn.q_proj", _) if llama => ("attn_q", Change::Permute { heads }),
            ("self_attn.k_proj", _) if llama => ("attn_k", Change::Permute { heads: heads_kv }),
            ("self_attn.q_proj", _) => ("attn_q", Change::None),
            ("self_attn.k_proj", _) => ("attn_k", Change::None),
            ("self_attn.v_proj", _) => ("attn_v", Change::None),
            ("self_attn.o_proj", _) => ("attn_output", Change::None),
            ("self_attn.qkv_proj", Family::Phi3) => ("attn_qkv", Change::None),
            ("self_attn.q_norm", Family::Qwen3 | Family::Gemma3 | Family::Olmo2) => {
                ("attn_q_norm", norm_change)
            }
            ("self_attn.k_norm", Family::Qwen3 | Family::Gemma3 | Family::Olmo2) => {
                ("attn_k_norm", norm_change)
            }
            ("post_attention_layernorm", Family::Gemma2 | Family::Gemma3 | Family::Olmo2) => {
                ("post_attention_norm", norm_change)
            }
            ("post_attention_layernorm", _) => ("ffn_norm", Change::None),
            ("pre_feedforward_layernorm", Family::Gemma2 | Family::Gemma3) => {
                ("ffn_norm", norm_change)
            }
            ("post_feedforward_layernorm", Family::Gemma2 | Family::Gemma3 | Family::Olmo2) => {
                ("post_ffw_norm", norm_change)
            }
            ("mlp.gate_proj", _) => ("ffn_gate", Change::None),
            ("mlp.up_proj", _) => ("ffn_up", Change::None),
            ("mlp.gate_up_proj", Family::Phi3) => ("ffn_up", Change::None),
            ("mlp.down_proj", _) => ("ffn_down", Change::None),
            _ => return Err(unknown()),
        };
        mapped(format!("blk.{layer}.{gguf}.{suffix}"), change)
    }
}

/// Llama's rotary permutation of a projection's rows (`[rows, cols]` row-major): within each of
/// `heads` heads, the rows `0, 2, 4, ..., 1, 3, 5, ...` of Hugging Face's half-split layout
/// become interleaved pairs, as llama.cpp's converter reorders them.
pub fn permute_rows(values: &[f32], rows: usize, cols: usize, heads: usize) -> Option<Vec<f32>> {
    if heads == 0 || !rows.is_multiple_of(heads * 2) || values.len() != rows * cols {
        return None;
    }
    let half = rows / heads / 2;
    let mut out = Vec::with_capacity(values.len());
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                // Source row of output row (h, i, j): reshape (heads, 2, half) swapped to
                // (heads, half, 2).
                let src = h * 2 * half + j * half + i;
                out.extend_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(json: &str) -> Config {
        Config::parse(Path::new("config.json"), json).unwrap()
    }

    #[test]
    fn permutation_interleaves_the_halves_of_each_head() {
        // 2 heads of 4 rows, 1 column: rows 0..8.
        let v: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let p = permute_rows(&v, 8, 1, 2).unwrap();
        assert_eq!(p, vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        assert!(permute_rows(&v, 8, 1, 3).is_none());
    }

    #[test]
    fn names_follow_llama_cpp() {
        let gemma = config(
            r#"{"architectures": ["Gemma3ForCausalLM"], "num_attention_heads": 4, "num_key_value_heads": 1}"#,
        );
        let place = |f: Family, c: &Config, n: &str| match f.place(c, n, 10).unwrap() {
            Placement::Tensor(m) => Some((m.name, m.change)),
            Placement::Skipped => None,
        };
        assert_eq!(
            place(
                Family::Gemma3,
                &gemma,
                "model.layers.3.pre_feedforward_layernorm.weight"
            ),
            Some(("blk.3.ffn_norm.weight".into(), Change::AddOne))
        );
        assert_eq!(
            place(Family::Gemma3, &gemma, "model.embed_tokens.weight"),
            Some(("token_embd.weight".into(), Change::FirstRows { rows: 10 }))
        );
        assert_eq!(place(Family::Gemma3, &gemma, "lm_head.weight"), None);
        let llama = config(
            r#"{"architectures": ["LlamaForCausalLM"], "num_attention_heads": 32, "num_key_value_heads": 8}"#,
        );
        assert_eq!(
            place(
                Family::Llama,
                &llama,
                "model.layers.0.self_attn.k_proj.weight"
            ),
            Some(("blk.0.attn_k.weight".into(), Change::Permute { heads: 8 }))
        );
        assert_eq!(
            place(Family::Llama, &llama, "lm_head.weight"),
            Some(("output.weight".into(), Change::None))
        );
        let err = Family::Llama
            .place(&llama, "model.layers.0.mlp.experts.0.w1.weight", 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no place"), "{err}");
        let err = Family::of(&config(r#"{"architectures": ["GPT2LMHeadModel"]}"#))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("architecture GPT2LMHeadModel is not supported"),
            "{err}"
        );
    }

    #[test]
    fn llama3_rope_factors() {
        let c = config(
            r#"{"architectures": ["LlamaForCausalLM"], "num_attention_heads": 32, "hidden_size": 2048,
                "head_dim": 64, "rope_theta": 500000.0,
                "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#,
        );
        let t = Family::Llama.extra_tensors(&c).unwrap();
        assert_eq!(t[0].0, "rope_freqs.weight");
        let f = &t[0].1;
        assert_eq!(f.len(), 32);
        assert_eq!(f[0], 1.0, "high frequencies unscaled");
        assert_eq!(
            *f.last().unwrap(),
            32.0,
            "low frequencies scaled by the factor"
        );
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
    }
}
