"""Makes a PEFT LoRA adapter for the default model with `peft` itself, as a user's training
would leave it (adapter_config.json + adapter_model.safetensors), B non-zero.

Usage: python bench/peft_make_adapter.py MODEL_DIR GGUF_FILE OUT_DIR [--rslora]
The base is the default GGUF loaded by transformers (dequantised to float32).
"""
import sys

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

model_dir, gguf_file, out = sys.argv[1:4]
model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=gguf_file, torch_dtype=torch.float32)
config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                    use_rslora="--rslora" in sys.argv,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
peft_model = get_peft_model(model, config)
torch.manual_seed(0)
with torch.no_grad():
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.normal_(0.0, 0.02)
peft_model.save_pretrained(out)
print(f"wrote {out}")
