//! What every part of the embedded engine shares with llama.cpp: its process-wide backend and
//! the application of a LoRA adapter to a context. The engine, the generator and the tokenizer
//! depend on this module and never on one another's internals.

use std::path::PathBuf;
use std::sync::OnceLock;

use assay_backend::AdapterInfo;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaLoraAdapter;

use crate::LlamaError;

/// llama.cpp's process-wide backend, initialised once.
pub fn llama_backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        // llama.cpp's own log lines go to tracing (shown with RUST_LOG=debug), not to stderr.
        llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
        LlamaBackend::init().expect("llama.cpp backend initialises once per process")
    })
}

/// Applies `adapter` to `ctx` with its scale.
pub fn apply_adapter(
    ctx: &mut LlamaContext<'static>,
    adapter: &mut LlamaLoraAdapter,
    info: &AdapterInfo,
) -> Result<(), LlamaError> {
    ctx.lora_adapter_set(adapter, info.scale)
        .map_err(|e| LlamaError::Adapter {
            path: PathBuf::from(&info.path),
            reason: e.to_string(),
        })
}
