"""Command-line quick checks, no notebook needed.

    residual-widgets ablate --model smollm2-135m --prompt "The capital of France is" \\
        --cell 5,3 --kind zero --out effect.html
    residual-widgets sweep --model induction-2l --prompt " t1 t2 t3 t1 t2" --out sweep.html
    NDIF_API_KEY=... residual-widgets ablate --model meta-llama/Llama-3.1-8B --remote ndif \
        --prompt "The capital of France is" --cell 16,4

Each prints a short text summary (the most affected cells and the output metric per position)
and, with ``--out``, writes an explorable HTML page: the widget itself with the results embedded,
no kernel, network or CDN needed (hover a swept cell for its map, switch the views, read the
logit lens; ``sweep`` also pins its most important cell). ``--plotly`` writes the plotly figure
instead. Exit codes: 0 success, 2 bad arguments
(argparse's convention, also used for invalid cells, kinds or prompts), 1 anything else
(including a failed remote run). The API key of ``--remote`` is read from ``NDIF_API_KEY`` only:
a key on the command line would land in shell history and process lists.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def _cell(text: str) -> tuple[int, int]:
    try:
        r, p = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a cell is ROW,POSITION (two integers), got {text!r}"
        ) from None
    return r, p


def _pair(text: str) -> tuple[str, str]:
    parts = text.split("|")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"a token pair is 'GOOD|BAD' (e.g. ' Mary| John'), got {text!r}"
        )
    return parts[0], parts[1]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="residual-widgets",
        description="Ablate or patch residual-stream cells of a causal LM and report the effect.",
        epilog="Rows: 0 = embeddings (input of block 0), k = output of block k-1. "
        "Cells are ROW,POSITION.",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="{ablate,sweep}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model",
        default="smollm2-135m",
        help="bundled name (smollm2-135m, induction-2l), HF name or local path",
    )
    common.add_argument("--prompt", required=True, help="the prompt to intervene on")
    common.add_argument("--source", help="source prompt for --kind patch (same token length)")
    common.add_argument(
        "--kind",
        default="zero",
        choices=["zero", "mean", "noise", "patch"],
        help="what to write into the cell (default: zero)",
    )
    common.add_argument(
        "--site",
        default="resid",
        choices=["resid", "attn_out", "mlp_out"],
        help="residual stream, or what a block's attention/MLP writes",
    )
    common.add_argument(
        "--logit-diff",
        type=_pair,
        metavar="'GOOD|BAD'",
        help="token pair for the logit difference at the last position",
    )
    common.add_argument("--out", help="write an explorable HTML page (the widget, offline) here")
    common.add_argument(
        "--plotly",
        action="store_true",
        help="with --out: write the plotly figure instead of the widget page",
    )
    common.add_argument("--seed", type=int, default=0, help="seed for --kind noise")
    common.add_argument(
        "--remote",
        metavar="ndif|local|URL",
        help="run on NDIF ('ndif'), through nnsight's in-process remote path "
        "('local'), or on the nnsight server at URL; key from NDIF_API_KEY",
    )
    common.add_argument("--timeout", type=float, help="seconds per remote request (default 600)")
    a = sub.add_parser("ablate", parents=[common], help="intervene on one or more cells")
    a.add_argument(
        "--cell",
        type=_cell,
        action="append",
        required=True,
        metavar="ROW,POS",
        help="cell to intervene on; repeat for a set",
    )
    s = sub.add_parser("sweep", parents=[common], help="intervene on every cell, one at a time")
    s.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    return ap


def _progress(p) -> None:
    width = 30
    fill = int(width * p.done / p.total)
    print(
        f"\r[{'#' * fill}{'.' * (width - fill)}] {p.done}/{p.total} cells",
        end="",
        file=sys.stderr,
        flush=True,
    )


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import residual_widgets as rw

    remote = {"ndif": True, None: None}.get(args.remote, args.remote)
    try:
        model = rw.load_model(args.model, remote=remote)
        sess = rw.Session(
            model,
            args.prompt,
            source=args.source,
            logit_diff=args.logit_diff,
            seed=args.seed,
            timeout=args.timeout,
        )
        if args.command == "ablate":
            eff = sess.intervene(args.cell, kind=args.kind, site=args.site)
            print(eff.summary())
            print("KL per position (nats):")
            for j, (t, v) in enumerate(zip(sess.token_strings, eff.kl, strict=True)):
                print(f"  {j:>4} {t!r:>16} {v:.4g}")
            fig, page = eff.figure(), {"effect": eff}
        else:
            atlas = sess.sweep(
                kind=args.kind, site=args.site, progress=None if args.no_progress else _progress
            )
            print(file=sys.stderr)
            if atlas.slow_path:
                print(atlas.slow_path, file=sys.stderr)
            vals, name = atlas.summary_values()
            print(f"{args.kind} sweep over {args.site}: {atlas.done.sum()} cells ({atlas.method})")
            if atlas.logit_diff is not None:
                print(f"clean logit diff {atlas.logit_diff_clean:.4g}")
            order = np.argsort(np.abs(vals - (atlas.logit_diff_clean or 0.0)), axis=None)[::-1]
            print(f"cells that matter most ({name}):")
            for f in order[:8]:
                n, i = np.unravel_index(f, vals.shape)
                print(f"  row {n:>3} pos {i:>4} {sess.token_strings[i]!r:>16} {vals[n, i]:.4g}")
            fig, page = atlas.figure(), {"atlas": atlas}
            if args.out and not args.plotly and atlas.done.any():
                n, i = np.unravel_index(order[0], vals.shape)
                page["effect"] = sess.intervene([(int(n), int(i))], kind=args.kind, site=args.site)
        if args.out and not args.plotly:
            from ._export import save_page

            save_page(
                args.out,
                sess,
                model_name=str(args.model),
                prompt=args.prompt,
                settings={
                    "kind": args.kind,
                    "site": args.site,
                    "logit_pair": list(args.logit_diff or []),
                },
                **page,
            )
    except rw.RemoteError as e:  # its message never holds the key
        print(f"residual-widgets: remote error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as e:
        print(f"residual-widgets: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"residual-widgets: error: {e}", file=sys.stderr)
        return 1
    if args.out:
        if args.plotly:
            fig.write_html(args.out, include_plotlyjs=True)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
