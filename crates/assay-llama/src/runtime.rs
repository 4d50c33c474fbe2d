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
        #[cfg(feature = "portable")]
        load_cpu_backends();
        LlamaBackend::init().expect("llama.cpp backend initialises once per process")
    })
}

/// In a portable build (`--features portable`, `scripts/dist.sh`) llama.cpp's CPU backend is
/// one library per x86-64 level (baseline to AVX-512), and ggml loads the best one this CPU
/// runs. They are looked for in `lib/assay` beside the binary's folder (the layout of the
/// wheel and the tarball), then beside the binary, then where the build put them.
#[cfg(feature = "portable")]
fn load_cpu_backends() {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf));
    let candidates = exe_dir
        .iter()
        .flat_map(|dir| [dir.join("../lib/assay"), dir.clone()]);
    for dir in candidates {
        let has_backend = std::fs::read_dir(&dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("libggml-cpu") && name.ends_with(".so")
            })
        });
        if has_backend {
            llama_cpp_2::llama_backend::load_backends_from_path(&dir);
            return;
        }
    }
    llama_cpp_2::llama_backend::load_backends();
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
