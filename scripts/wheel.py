"""Writes assay's wheel from a built release folder (scripts/dist.sh calls it).

    python3 scripts/wheel.py ROOT VERSION OUT_DIR

ROOT holds bin/assay and lib/assay/*.so (the tarball's layout). The wheel installs the binary as a
script (`<prefix>/bin/assay`) and the libraries as data (`<prefix>/lib/assay/`), which is where
the binary's run path ($ORIGIN/../lib/assay) finds them, in a venv, a --user install or a system
prefix alike. The platform tag is manylinux_2_<N>_x86_64, N the highest glibc symbol version any
file needs, so pip refuses the wheel where it cannot run. Prints the wheel's path.
"""

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile

NAME = "assay_eval"


def glibc_minor(paths):
    """The highest GLIBC_2.N symbol version the files need."""
    minor = 17
    for path in paths:
        out = subprocess.run(["objdump", "-T", path], capture_output=True, text=True, check=True).stdout
        for m in re.finditer(r"GLIBC_2\.(\d+)", out):
            minor = max(minor, int(m.group(1)))
    return minor


def record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def main():
    root, version, out_dir = sys.argv[1:4]
    binary = os.path.join(root, "bin", "assay")
    libdir = os.path.join(root, "lib", "assay")
    libs = sorted(os.listdir(libdir))
    tag = f"py3-none-manylinux_2_{glibc_minor([binary] + [os.path.join(libdir, l) for l in libs])}_x86_64"
    data = f"{NAME}-{version}.data"
    info = f"{NAME}-{version}.dist-info"
    wheel = os.path.join(out_dir, f"{NAME}-{version}-{tag}.whl")
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: assay-eval\nVersion: {version}\n"
        "Summary: assay: evaluate and validate fine-tuned LLMs (lm-eval compatible, llama.cpp inside)\n"
        "License: MIT OR Apache-2.0\n"
        "Requires-Python: >=3.8\n"
        "Description-Content-Type: text/markdown\n\n" + readme
    )
    wheel_meta = f"Wheel-Version: 1.0\nGenerator: assay scripts/wheel.py\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files = [(f"{data}/scripts/assay", open(binary, "rb").read(), 0o755)]
    files += [(f"{data}/data/lib/assay/{l}", open(os.path.join(libdir, l), "rb").read(), 0o755) for l in libs]
    files += [(f"{info}/METADATA", metadata.encode(), 0o644), (f"{info}/WHEEL", wheel_meta.encode(), 0o644)]
    records = [record_line(name, content) for name, content, _ in files] + [f"{info}/RECORD,,"]
    files.append((f"{info}/RECORD", ("\n".join(records) + "\n").encode(), 0o644))
    tmp = wheel + ".partial"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content, mode in files:
            entry = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, content)
    os.replace(tmp, wheel)
    print(wheel)


if __name__ == "__main__":
    main()
