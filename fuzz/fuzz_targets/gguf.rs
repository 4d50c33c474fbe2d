//! Model files: the input as a GGUF file, checked as `--model` is before llama.cpp sees it,
//! then read by the GGUF container reader (metadata and tensor table, as the LoRA merge does).
#![no_main]

use assay_gguf::{check_header, container::Gguf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, data).unwrap();
    let _ = check_header(&path);
    if let Ok(gguf) = Gguf::open(&path) {
        let _ = gguf.get("general.architecture");
        let _ = gguf.tensor("token_embd.weight");
    }
});
