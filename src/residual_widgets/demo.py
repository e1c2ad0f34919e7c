"""Headless demo: sweep the bundled real model over an IOI prompt and write an explorable page.

    python -m residual_widgets.demo --out demo.html
    python -m residual_widgets.demo --out demo.html --plotly     # the plotly figures instead

Loads SmolLM2-135M (bundled; the first load converts its GGUF file and caches a float32 copy),
zero-ablates every residual cell of "When Mary and John went to the store, John gave a drink to"
one at a time, pins the cell that moves the logit difference " Mary" − " John" most, and writes
the widget as one self-contained HTML page (no kernel, network or CDN: hover any cell of the
overview for its map, switch the views, read the logit lens in the tooltips).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

PROMPT = "When Mary and John went to the store, John gave a drink to"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--out", default="demo.html")
    ap.add_argument(
        "--plotly",
        action="store_true",
        help="write the plotly figures of the overview and the map instead",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import residual_widgets as rw

    t0 = time.perf_counter()
    model = rw.load_model(args.model)
    t1 = time.perf_counter()
    pair = (" Mary", " John")
    sess = rw.Session(model, args.prompt, logit_diff=pair)
    atlas = sess.sweep(progress=lambda p: print(f"\rsweep {p.done}/{p.total}", end="", flush=True))
    t2 = time.perf_counter()
    print()
    drop = atlas.logit_diff_clean - atlas.logit_diff
    n, i = np.unravel_index(np.argmax(drop), drop.shape)
    eff = sess.ablate((int(n), int(i)))
    print(
        f"model {model} loaded in {t1 - t0:.1f} s; sweep of {atlas.done.sum()} cells in "
        f"{t2 - t1:.1f} s ({atlas.method})"
    )
    print(
        f"clean logit diff {atlas.logit_diff_clean:.3f}; ablating ({n}, {i}) "
        f"{sess.token_strings[i]!r} moves it most, to {atlas.logit_diff[n, i]:.3f}"
    )
    if args.plotly:
        with open(args.out, "w") as f:
            f.write(atlas.figure().to_html(full_html=True, include_plotlyjs=True))
            f.write(eff.figure().to_html(full_html=False, include_plotlyjs=False))
    else:
        from ._export import save_page

        save_page(
            args.out,
            sess,
            effect=eff,
            atlas=atlas,
            prompt=args.prompt,
            model_name=args.model,
            settings={"kind": "zero", "site": "resid", "logit_pair": list(pair)},
        )
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 2**20:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
