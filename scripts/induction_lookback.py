"""Measure what the bundled ``induction-2l`` model's attention heads look at (no training).

Run from the repository root::

    python scripts/induction_lookback.py

Prints, over 20 random ``[prefix (0-32 tokens), x (8-16), x]`` rows (seeded):

* for every layer-0 query position, the look-back (query minus argmax key) of heads 0 and 2,
  with the share of rows that agree — one number per position in every row means the head
  attends by absolute position, not by content;
* the mean attention weight on each layer-0 head's top key (positions 4-16 and 17+);
* where layer 1 (mean over heads) attends from the second ``x[k]``, as the offset of its argmax
  key from the first ``x[k]`` (1 would be the textbook induction target ``x[k+1]``);
* copy accuracy of short and long copies after short and long prefixes (256 rows each).

The figures quoted in ``bundled.py`` and ``train_induction.py`` come from this script.
"""

from __future__ import annotations

import collections

import numpy as np
import torch

from residual_widgets.bundled import load_bundled

LO, HI = 4, 512  # content token ids


def rows(n: int = 20, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        pre = int(torch.randint(0, 33, (), generator=g))
        xl = int(torch.randint(8, 17, (), generator=g))
        x = torch.randint(LO, HI, (xl,), generator=g)
        yield torch.cat([torch.randint(LO, HI, (pre,), generator=g), x, x]), pre, xl


@torch.no_grad()
def main() -> None:
    torch.set_num_threads(1)
    hf, _ = load_bundled("induction-2l")
    hf.set_attn_implementation("eager")
    H = hf.config.n_head
    back = collections.defaultdict(lambda: [collections.Counter() for _ in range(H)])
    peak = {h: {"4-16": [], "17+": []} for h in range(H)}
    l1 = collections.defaultdict(collections.Counter)
    for ids, pre, xl in rows():
        att = hf(ids[None], output_attentions=True).attentions
        a0, a1 = att[0][0], att[1][0]
        for q in range(1, len(ids)):
            for h in range(H):
                w = a0[h, q, : q + 1]
                back[q][h][q - int(w.argmax())] += 1
                if q >= 4:
                    peak[h]["4-16" if q <= 16 else "17+"].append(float(w.max()))
        for k in range(xl - 1):
            q = pre + xl + k
            l1[q // 8 * 8][int(a1[:, q, : q + 1].mean(0).argmax()) - (pre + k)] += 1
    print("layer 0, position: look-back of head 0 / head 2 (share of rows agreeing, rows)")
    out = []
    for q in sorted(back):
        (m0, n0), tot = back[q][0].most_common(1)[0], sum(back[q][0].values())
        m2 = back[q][2].most_common(1)[0][0]
        out.append(f"{q}:{m0}/{m2} ({n0 / tot:.2f}, {tot})")
    print("  " + "  ".join(out))
    for h in range(H):
        p = peak[h]
        print(
            f"layer 0 head {h}: mean weight on the top key, positions 4-16 "
            f"{np.mean(p['4-16']):.2f}, 17+ {np.mean(p['17+']):.2f}"
        )
    print("layer 1 from the second x[k]: argmax key minus the first x[k]'s position")
    for b in sorted(l1):
        print(f"  queries {b}-{b + 7}: {sorted(l1[b].items())}")
    g = torch.Generator().manual_seed(1)
    print("copy accuracy (x length, prefix length: accuracy)")
    for xl in (4, 6, 8, 12):
        acc = []
        for pre in (2, 10, 20, 30):
            x = torch.randint(LO, HI, (256, xl), generator=g)
            ids = torch.cat([torch.randint(LO, HI, (256, pre), generator=g), x, x], 1)
            pred = hf(ids).logits.argmax(-1)
            q = torch.arange(pre + xl, pre + 2 * xl - 1)
            acc.append(f"{pre}: {(pred[:, q] == ids[:, q + 1]).float().mean().item():.3f}")
        print(f"  x of {xl}: " + ", ".join(acc))


if __name__ == "__main__":
    main()
