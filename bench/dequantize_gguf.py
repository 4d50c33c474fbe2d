"""Write a copy of a GGUF model with tensors dequantised, all metadata kept.

Usage: python bench/dequantize_gguf.py IN.gguf OUT.gguf [--tensor NAME] [--type f32|f16]

Without --tensor every tensor becomes --type (F32 by default): the reference check uses that copy to separate the
engine's own error from quantisation (it should match transformers, which dequantises the same
way, far more closely than the quantised model does). With --tensor only that tensor is
converted (to --type) and the others are copied as they are: bench/engine_choices.sh measures the
output projection (`token_embd.weight`, tied) in other formats. An F16 copy keeps one-dimensional
tensors (the norms) in F32, as llama.cpp's own converter does: ggml's CPU kernels multiply F32
activations by F32 norm weights only, and abort on F16 ones.
"""

import argparse

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--tensor", help="convert only this tensor")
    parser.add_argument("--type", choices=["f32", "f16"], default="f32")
    args = parser.parse_args()
    src, dst = args.src, args.dst
    dtype = np.float32 if args.type == "f32" else np.float16
    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(dst, arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        value = field.contents()
        if field.name == "general.file_type" and not args.tensor:
            value = 0 if args.type == "f32" else 1  # LLAMA_FTYPE_ALL_F32 / MOSTLY_F16
        vtype = field.types[0]
        if vtype == GGUFValueType.ARRAY:
            writer.add_key_value(field.name, value, vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(field.name, value, vtype)
    for t in reader.tensors:
        if args.tensor and t.name != args.tensor:
            writer.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
            continue
        shape = tuple(reversed([int(x) for x in t.shape]))
        one_dim = len(shape) == 1
        data = dequantize(t.data, t.tensor_type).reshape(shape)
        data = data.astype(np.float32 if one_dim and not args.tensor else dtype)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
