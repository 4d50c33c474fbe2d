"""Writes random-weight Hugging Face checkpoints with the exact shapes of real models, for speed
benchmarks only (no hub is reachable here, and random weights score at chance: never use them
for scores). Each folder is named NAME-synthetic-speed-only, carries SPEED_ONLY.txt and
"assay_synthetic": "speed only" in config.json, and holds bfloat16 safetensors shards (as the
real checkpoints ship), config.json and a tokenizer.json of the real vocabulary size.

Usage: python bench/synth_models.py [--out DIR] NAME [NAME ...]
  NAME: llama-3.2-1b, qwen2.5-3b, llama-3.1-8b (or "all"); DIR: $ASSAY_SYNTH_DIR, else
  ~/.cache/assay/synthetic (outside the repository). A complete folder is kept as it is.
  SYNTH_DEVICE=cuda initialises the weights on the GPU.

Shapes are those of the models' published config.json files (hidden size, layers, heads, KV
heads, head dim, FFN size, vocabulary, tied embeddings, RoPE settings, Qwen 2's QKV biases).
The tokenizer is a byte-level BPE trained here on HellaSwag and ARC text with Llama 3's (or
Qwen 2's) split regex, its vocabulary filled up with never-produced tokens to the real size,
then the real number of special tokens (Llama 3: 256 from 128,000; Qwen 2.5: 22 up to 151,665,
config's 151,936 rows padded as Qwen's are). Prompts tokenise to about as many tokens as the
real tokenizers give for English; the embedding and output matrices have the real sizes.
"""
import argparse
import json
import os
import shutil
import sys

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_tiny_models import LLAMA3_REGEX, QWEN2_REGEX, training_text  # noqa: E402

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192, "rope_theta": 500000.0}

# name: (config class, config, tokenizer style)
SHAPES = {
    "llama-3.2-1b": (LlamaConfig, dict(
        hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
        intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True, rms_norm_eps=1e-5,
        max_position_embeddings=131072, rope_theta=500000.0, rope_scaling=LLAMA3_ROPE,
        bos_token_id=128000, eos_token_id=128001), "llama3"),
    "qwen2.5-3b": (Qwen2Config, dict(
        hidden_size=2048, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
        intermediate_size=11008, vocab_size=151936, tie_word_embeddings=True, rms_norm_eps=1e-6,
        max_position_embeddings=32768, rope_theta=1000000.0, use_sliding_window=False,
        bos_token_id=None, eos_token_id=151643), "qwen2"),
    "llama-3.1-8b": (LlamaConfig, dict(
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
        intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False, rms_norm_eps=1e-5,
        max_position_embeddings=131072, rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE, factor=8.0),
        bos_token_id=128000, eos_token_id=128001), "llama3"),
}

# style: (regex, NFC, first special id, special tokens, bos, eos, tokenizer size)
STYLES = {
    "llama3": (LLAMA3_REGEX, False, 128000,
               ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(254)],
               "<|begin_of_text|>", "<|end_of_text|>", 128256),
    "qwen2": (QWEN2_REGEX, True, 151643,
              ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|qwen_reserved_{i}|>" for i in range(19)],
              None, "<|endoftext|>", 151665),
}


def tokenizer_for(style):
    regex, nfc, first_special, specials, bos, eos, size = STYLES[style]
    assert first_special + len(specials) == size
    tok = Tokenizer(models.BPE(ignore_merges=style == "llama3", fuse_unk=False, byte_fallback=False))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=first_special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(training_text(), trainer=trainer)
    # Fill the vocabulary to the real size with tokens no merge produces.
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    filler = 0
    while len(vocab) < first_special:
        vocab[f"<unused{filler}>"] = len(vocab)
        filler += 1
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.add_special_tokens(specials)
    assert tok.get_vocab_size() == size, tok.get_vocab_size()
    byte_level = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    if bos:
        tok.post_processor = processors.Sequence([byte_level, processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])])
    else:
        tok.post_processor = byte_level
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos)


def make(name, root):
    out = os.path.join(root, f"{name}-synthetic-speed-only")
    if os.path.isfile(os.path.join(out, "SPEED_ONLY.txt")):
        print(f"kept {out}")
        return out
    cls, shape, style = SHAPES[name]
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    tokenizer_for(style).save_pretrained(partial)
    config = cls(**shape)
    torch.manual_seed(sorted(SHAPES).index(name))
    # transformers' own initialisation (normal, std = initializer_range), in bfloat16; on the GPU
    # where SYNTH_DEVICE=cuda says so (an 8B model initialises in seconds there).
    with torch.device(os.environ.get("SYNTH_DEVICE", "cpu")):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    assert model.get_input_embeddings().weight.shape[0] == shape["vocab_size"]
    model.save_pretrained(partial, safe_serialization=True, max_shard_size="2GB")
    n = sum(p.numel() for p in model.parameters())
    del model
    path = os.path.join(partial, "config.json")
    with open(path) as f:
        written = json.load(f)
    written["assay_synthetic"] = "speed only"
    with open(path, "w") as f:
        json.dump(written, f, indent=2)
    with open(os.path.join(partial, "SPEED_ONLY.txt"), "w") as f:
        f.write(f"Random weights in the shape of {name} ({n / 1e9:.2f}B parameters), written by "
                "bench/synth_models.py for speed benchmarks. Its scores mean nothing.\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(partial, out)
    print(f"wrote {out}: {n / 1e9:.2f}B parameters, vocabulary {shape['vocab_size']}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("ASSAY_SYNTH_DIR",
                                                      os.path.expanduser("~/.cache/assay/synthetic")))
    parser.add_argument("names", nargs="+", choices=list(SHAPES) + ["all"])
    args = parser.parse_args()
    names = list(SHAPES) if "all" in args.names else args.names
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        make(name, args.out)


if __name__ == "__main__":
    main()
