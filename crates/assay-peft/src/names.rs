//! PEFT module names (`base_model.model.model.layers.3.self_attn.q_proj`) to the names
//! llama.cpp gives the same weights in GGUF (`blk.3.attn_q`), per architecture.

/// Architectures whose attention and MLP projections map one to one.
const ARCHITECTURES: &[&str] = &["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3"];

/// The GGUF name (without `.weight`) of a PEFT module of a model of `arch`.
pub(crate) fn gguf_name(arch: &str, module: &str) -> Option<String> {
    if !ARCHITECTURES.contains(&arch) {
        return None;
    }
    let rest = module.strip_prefix("base_model.model.").unwrap_or(module);
    // CausalLM checkpoints hold `model.layers`; multimodal Gemma 3 `model.language_model.layers`.
    let rest = rest
        .strip_prefix("model.language_model.")
        .or_else(|| rest.strip_prefix("language_model.model."))
        .or_else(|| rest.strip_prefix("model."))?;
    let rest = rest.strip_prefix("layers.")?;
    let (layer, projection) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let gguf = match projection {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{gguf}"))
}

/// Whether llama.cpp permutes the rows of this weight when it converts the base model (Llama's
/// and Mistral's Q and K, for its rotary layout): `Some(true)` for K (grouped by the KV heads),
/// `Some(false)` for Q, `None` otherwise.
pub(crate) fn permutes_rows(arch: &str, target: &str) -> Option<bool> {
    if !matches!(arch, "llama" | "mistral") {
        return None;
    }
    if target.ends_with(".attn_q") {
        Some(false)
    } else if target.ends_with(".attn_k") {
        Some(true)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peft_names_map_to_llama_cpp_names() {
        let m = "base_model.model.model.layers.3.self_attn.q_proj";
        assert_eq!(gguf_name("gemma3", m).as_deref(), Some("blk.3.attn_q"));
        assert_eq!(
            gguf_name(
                "gemma3",
                "base_model.model.model.language_model.layers.0.mlp.down_proj"
            )
            .as_deref(),
            Some("blk.0.ffn_down")
        );
        assert_eq!(gguf_name("gemma3", "base_model.model.lm_head"), None);
        assert_eq!(gguf_name("phi3", m), None);
        assert_eq!(permutes_rows("llama", "blk.0.attn_k"), Some(true));
        assert_eq!(permutes_rows("gemma3", "blk.0.attn_q"), None);
    }
}
