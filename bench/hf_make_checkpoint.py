"""Writes a Hugging Face checkpoint folder of the default model with transformers itself, as a
fine-tune would leave it: transformers reads the GGUF (dequantising to float32) and
save_pretrained writes config.json, model.safetensors, tokenizer.json and tokenizer_config.json.

Usage: python bench/hf_make_checkpoint.py MODEL_DIR GGUF_FILE OUT_DIR [--dtype float32|bfloat16|float16]
"""
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, gguf_file, out = sys.argv[1:4]
dtype = sys.argv[sys.argv.index("--dtype") + 1] if "--dtype" in sys.argv else "float32"
model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=gguf_file, torch_dtype=getattr(torch, dtype))
tokenizer = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf_file)
# A model read from GGUF counts as quantised and refuses save_pretrained: copy its weights into a
# plain model of the same config.
config = model.config
if hasattr(config, "quantization_config"):
    del config.quantization_config
plain = AutoModelForCausalLM.from_config(config, torch_dtype=getattr(torch, dtype))
plain.load_state_dict(model.state_dict())
plain.save_pretrained(out, safe_serialization=True)
tokenizer.save_pretrained(out)
print(f"wrote {out}")
