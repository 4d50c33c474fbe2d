//! llama.cpp's own quantiser (`llama_model_quantize`, what `llama-quantize` runs): a GGUF of
//! 16- or 32-bit weights to one of the k-quant mixes users run, such as Q4_K_M.

use std::ffi::CString;
use std::path::Path;

use crate::runtime::llama_backend;
use crate::LlamaError;

/// A quantisation mix of llama.cpp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quant {
    /// Q4_K_M: the default model's own, and llama.cpp's usual choice.
    Q4KM,
    /// Q5_K_M.
    Q5KM,
    /// Q6_K.
    Q6K,
}

impl Quant {
    /// Every mix, for help texts.
    pub const ALL: [Quant; 3] = [Quant::Q4KM, Quant::Q5KM, Quant::Q6K];

    /// The name users type (`q4_k_m`).
    pub fn name(self) -> &'static str {
        match self {
            Quant::Q4KM => "q4_k_m",
            Quant::Q5KM => "q5_k_m",
            Quant::Q6K => "q6_k",
        }
    }

    /// The mix named `text` (any case).
    pub fn parse(text: &str) -> Option<Quant> {
        Quant::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(text))
    }

    fn ftype(self) -> llama_cpp_sys_2::llama_ftype {
        match self {
            Quant::Q4KM => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_M,
            Quant::Q5KM => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q5_K_M,
            Quant::Q6K => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q6_K,
        }
    }
}

/// Quantises the GGUF at `input` into `output` with `threads` threads.
pub fn quantize(
    input: &Path,
    output: &Path,
    quant: Quant,
    threads: usize,
) -> Result<(), LlamaError> {
    assay_gguf::check_header(input)?;
    let c_path = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| LlamaError::Quantize {
            path: p.to_path_buf(),
            reason: "the path holds a NUL byte".into(),
        })
    };
    let (from, to) = (c_path(input)?, c_path(output)?);
    llama_backend();
    // SAFETY: default parameters from llama.cpp itself with plain fields set; both paths are
    // NUL-terminated strings that outlive the call.
    let status = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.nthread = threads.max(1) as i32;
        params.ftype = quant.ftype();
        llama_cpp_sys_2::llama_model_quantize(from.as_ptr(), to.as_ptr(), &params)
    };
    if status != 0 {
        let _ = std::fs::remove_file(output);
        return Err(LlamaError::Quantize {
            path: input.to_path_buf(),
            reason: format!(
                "llama.cpp's quantiser failed (status {status}; RUST_LOG=debug shows its messages)"
            ),
        });
    }
    Ok(())
}
