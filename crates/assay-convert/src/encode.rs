//! Tensor data in the GGUF types a conversion writes: F32, F16, BF16 and Q8_0, each as ggml
//! lays it out (Q8_0: blocks of 32 values, an F16 scale `max|x| / 127` and 32 signed bytes,
//! rounded half away from zero, as ggml's reference quantiser does).

/// An output type of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutType {
    /// 32-bit floats.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
    /// ggml's 8-bit blocks.
    Q8_0,
}

impl OutType {
    /// ggml's type id.
    pub fn ggml_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::F16 => 1,
            OutType::Q8_0 => 8,
            OutType::Bf16 => 30,
        }
    }

    /// llama.cpp's `general.file_type` for a model mostly of this type.
    pub fn file_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::F16 => 1,
            OutType::Q8_0 => 7,
            OutType::Bf16 => 32,
        }
    }

    /// The name users give it (`--dtype`).
    pub fn name(self) -> &'static str {
        match self {
            OutType::F32 => "float32",
            OutType::F16 => "float16",
            OutType::Bf16 => "bfloat16",
            OutType::Q8_0 => "q8_0",
        }
    }

    /// Parses `float32|float16|bfloat16|q8_0` (and lm-eval's and PyTorch's other spellings).
    pub fn parse(text: &str) -> Option<OutType> {
        Some(
            match text
                .trim()
                .trim_start_matches("torch.")
                .to_ascii_lowercase()
                .as_str()
            {
                "float32" | "f32" | "fp32" | "float" => OutType::F32,
                "float16" | "f16" | "fp16" | "half" => OutType::F16,
                "bfloat16" | "bf16" => OutType::Bf16,
                "q8_0" => OutType::Q8_0,
                _ => return None,
            },
        )
    }

    /// Whether a row of `row` values can be stored in this type.
    pub fn fits(self, row: usize) -> bool {
        self != OutType::Q8_0 || row.is_multiple_of(32)
    }

    /// The bytes of `values` in this type (`values.len()` a multiple of 32 for Q8_0).
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            OutType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            OutType::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
            OutType::Bf16 => values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                .collect(),
            OutType::Q8_0 => {
                let mut out = Vec::with_capacity(values.len() / 32 * 34);
                for block in values.chunks(32) {
                    let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let d = amax / 127.0;
                    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
                    out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
                    out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_blocks_are_ggmls() {
        let mut values: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
        values[5] = 0.25;
        let bytes = OutType::Q8_0.encode(&values);
        assert_eq!(bytes.len(), 34);
        let d = half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
        assert!((d - 16.0 / 127.0).abs() < 1e-4);
        assert_eq!(bytes[2] as i8, -127);
        // 0.25 * 127 / 16 = 1.98 -> 2; 15 -> 119.06 -> 119; -0.5 rounds away from zero.
        assert_eq!(bytes[2 + 5] as i8, 2);
        assert_eq!(bytes[2 + 31] as i8, 119);
        assert_eq!(OutType::Q8_0.encode(&[0.0; 32])[2..], [0u8; 32]);
        assert!(!OutType::Q8_0.fits(40) && OutType::F16.fits(40));
    }

    #[test]
    fn names_parse_back() {
        for t in [OutType::F32, OutType::F16, OutType::Bf16, OutType::Q8_0] {
            assert_eq!(OutType::parse(t.name()), Some(t));
        }
        assert_eq!(OutType::parse("torch.bfloat16"), Some(OutType::Bf16));
        assert_eq!(OutType::parse("auto"), None);
    }
}
