"""Write an F32 copy of a GGUF model: every tensor dequantised, all metadata kept.

Usage: python bench/dequantize_gguf.py IN.gguf OUT.gguf

Used by the reference check to separate the engine's own error from quantisation: the F32 copy
run by assay should match transformers (which dequantises the same way) far more closely than
the quantised model does.
"""

import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize


def main():
    src, dst = sys.argv[1], sys.argv[2]
    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(dst, arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        value = field.contents()
        if field.name == "general.file_type":
            value = 0  # all F32
        vtype = field.types[0]
        if vtype == GGUFValueType.ARRAY:
            writer.add_key_value(field.name, value, vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(field.name, value, vtype)
    for t in reader.tensors:
        shape = tuple(reversed([int(x) for x in t.shape]))
        data = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
