"""Writes tiny random-weight Hugging Face checkpoints, one per architecture assay converts, with
transformers itself (config class + from_config + save_pretrained, float32) and a tokenizer, for
bench/hf_arch_sweep.sh to score with lm-eval's hf backend and with assay.

Usage: python bench/hf_tiny_models.py OUT_ROOT GEMMA_TOKENIZER_DIR [NAME ...]
  OUT_ROOT/NAME/ gets config.json, model.safetensors, tokenizer.json, tokenizer_config.json;
  GEMMA_TOKENIZER_DIR is a folder with Gemma 3's tokenizer.json (bench/.work/gemma3-hf-f32);
  without NAMEs every model below is written (an existing complete folder is kept).

Every model: hidden 128, 2 layers (gemma3: 6, so that its fixed 5-sliding-1-full layer pattern
has a full layer), 4 heads, 2 KV heads, intermediate 256, head_dim 32 (qwen3 and gemma3: 64,
more than hidden/heads, as Qwen3-0.6B and Gemma 3 270m have); weights drawn with a fixed seed,
matrices ~ N(0, 0.15), biases ~ N(0, 0.1), norm weights = their default + N(0, 0.1), so that the
choices' log-likelihoods differ and every norm's offset convention matters. Gemma 2/3 get a
32-token sliding window, shorter than the prompts. Tokenizers: Gemma 3's (SentencePiece-style
BPE, 262,144 tokens) or a byte-level BPE of about 2,000 tokens trained here with `tokenizers` on
HellaSwag and ARC text from ../shared/data, in the style of Llama 3 (its split regex,
ignore_merges, <|begin_of_text|> added in front), Qwen 2 (\\p{N} digits, NFC, no BOS) or OLMo 2
(cl100k: Llama 3's regex without ignore_merges, <|endoftext|> as BOS). phi3 gets Gemma's plus
Phi-3's <|endoftext|> and <|end|>; phi3-gemma-vocab Gemma's alone (llama.cpp refuses that one when
general.name says phi3). config.json's vocab_size is the tokenizer's size.
"""
import json
import os
import shutil
import sys

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (AutoModelForCausalLM, AutoTokenizer, Gemma2Config, Gemma3TextConfig, LlamaConfig,
                          MistralConfig, Olmo2Config, Phi3Config, PreTrainedTokenizerFast, Qwen2Config, Qwen3Config)

LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")

SIZES = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=256, max_position_embeddings=4096)

# name: (config class, config overrides, tokenizer style)
MODELS = {
    "llama": (LlamaConfig, dict(head_dim=32), "gemma"),
    "llama3": (LlamaConfig, dict(head_dim=32, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        # Small, so that the scaled and smoothed frequency bands fall inside the prompts' positions.
        "original_max_position_embeddings": 64, "rope_theta": 500000.0}), "llama3"),
    "mistral": (MistralConfig, dict(head_dim=32, sliding_window=None), "gemma"),
    "qwen2": (Qwen2Config, dict(tie_word_embeddings=True), "qwen2"),
    "qwen3": (Qwen3Config, dict(head_dim=64, tie_word_embeddings=True), "gemma"),
    "gemma2": (Gemma2Config, dict(head_dim=32, query_pre_attn_scalar=32, sliding_window=32), "gemma"),
    "gemma3": (Gemma3TextConfig, dict(head_dim=64, query_pre_attn_scalar=64, sliding_window=32,
                                      num_hidden_layers=6), "gemma"),
    # llama.cpp sets Phi-3's token attributes by name when general.name says phi3 and then needs
    # Phi-3's <|endoftext|>: Gemma's vocabulary plus Phi-3's two special tokens, as a Phi-3
    # fine-tune would carry; and the plain Gemma vocabulary, which lacks it.
    "phi3": (Phi3Config, dict(), "gemma+phi3"),
    "phi3-gemma-vocab": (Phi3Config, dict(), "gemma"),
    "olmo2": (Olmo2Config, dict(), "olmo2"),
}

BPE_STYLES = {
    # regex, ignore_merges, NFC, special tokens (appended after the learned vocabulary), bos, eos
    "llama3": (LLAMA3_REGEX, True, False,
               ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
               "<|begin_of_text|>", "<|end_of_text|>"),
    "qwen2": (QWEN2_REGEX, False, True, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|endoftext|>"),
    "olmo2": (LLAMA3_REGEX, False, False, ["<|endoftext|>", "<|pad|>"], "<|endoftext|>", "<|endoftext|>"),
}


def training_text():
    lines = []
    with open(os.path.join(DATA, "hellaswag", "validation.jsonl")) as f:
        for i, line in enumerate(f):
            if i >= 4000:
                break
            d = json.loads(line)
            lines.append(d["query"] + " " + " ".join(d["choices"]))
    with open(os.path.join(DATA, "arc", "arc_easy_test.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            lines.append(d["query"] + " " + " ".join(d["choices"]))
    return lines


def byte_level_bpe(style, vocab_size=2000):
    regex, ignore_merges, nfc, specials, bos, eos = BPE_STYLES[style]
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges, fuse_unk=False, byte_fallback=False))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(training_text(), trainer=trainer)
    tok.model.ignore_merges = ignore_merges
    tok.add_special_tokens(specials)
    byte_level = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    if bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence([byte_level, processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)])])
    else:
        tok.post_processor = byte_level
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos)
    return wrapped


def write_tokenizer(style, out, gemma_dir):
    if style == "gemma":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(gemma_dir, name), os.path.join(out, name))
    elif style == "gemma+phi3":
        tokenizer = AutoTokenizer.from_pretrained(gemma_dir)
        tokenizer.add_tokens(["<|endoftext|>", "<|end|>"], special_tokens=True)
        tokenizer.save_pretrained(out)
    else:
        byte_level_bpe(style).save_pretrained(out)
        # The class names checkpoints written before transformers 5 carry (Llama 3, OLMo 2: the
        # generic fast tokenizer; Qwen 2: its own).
        path = os.path.join(out, "tokenizer_config.json")
        with open(path) as f:
            config = json.load(f)
        config["tokenizer_class"] = "Qwen2Tokenizer" if style == "qwen2" else "PreTrainedTokenizerFast"
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
    tokenizer = AutoTokenizer.from_pretrained(out)
    # transformers must tokenize as tokenizer.json says (assay reads tokenizer.json).
    raw = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    for text in ["Roof shingle removal: A man is sitting on a roof. He", " 12345 don't  stop\n\nit's 3.14!"]:
        a, b = tokenizer(text).input_ids, raw.encode(text).ids
        assert a == b, (style, text, a, b)
    return tokenizer


def init_weights(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.15)
            elif "norm" in name:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def make(name, root, gemma_dir):
    out = os.path.join(root, name)
    if os.path.isfile(os.path.join(out, "model.safetensors")) and os.path.isfile(os.path.join(out, "tokenizer.json")):
        print(f"kept {out}")
        return
    cls, overrides, style = MODELS[name]
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    tokenizer = write_tokenizer(style, partial, gemma_dir)
    ids = {k: getattr(tokenizer, f"{k}_token_id") for k in ("bos", "eos", "pad")}
    ids = {f"{k}_token_id": v for k, v in ids.items() if v is not None}
    kwargs = dict(SIZES, **overrides, vocab_size=len(tokenizer), **ids)
    if name == "qwen2":
        kwargs["bos_token_id"] = None
    config = cls(**kwargs)
    torch.manual_seed(list(MODELS).index(name))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    init_weights(model, 1000 + list(MODELS).index(name))
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    model.save_pretrained(partial, safe_serialization=True)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(partial, out)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: {type(model).__name__}, {n / 1e6:.1f}M parameters, vocab {len(tokenizer)} ({style})")


def main():
    root, gemma_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:] or list(MODELS)
    os.makedirs(root, exist_ok=True)
    for name in names:
        make(name, root, gemma_dir)


if __name__ == "__main__":
    main()
