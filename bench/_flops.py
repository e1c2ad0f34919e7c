"""How much arithmetic a cone sweep does, and how fast this machine can do arithmetic at all.

The exact sweep is bounded by matrix multiplies, so its honest speed figure is the fraction of
the machine's own matmul peak it reaches, both measured in the same process and run:

* :func:`cone_sweep_flops` counts the multiply-adds (×2 = FLOPs) the cone sweep must do for a
  set of residual cells ``(n, i)``: each of blocks ``n..L-1`` runs on positions ``i..P-1``
  (every 2-D weight of the block once per position: Q/K/V/O and the MLP), its attention reads
  ``p + 1`` keys from query position ``p`` (scores and the weighted sum: ``4 · H · d_head`` per
  key), and the positions ``i..P-1`` of the final residual are unembedded (``2 · d · V`` each).
  Norms, softmaxes and the KL are memory-bound extras and are not counted, so the fraction is a
  slight underestimate of how busy the arithmetic units are.
* :func:`matmul_peak` times square float32 ``torch.mm`` for a couple of seconds with the current
  torch thread count: the best this machine does on the operation the sweep is made of.
"""

from __future__ import annotations

import time

import torch


def _block_weight_elems(block: torch.nn.Module) -> int:
    """Multiply-adds per token of one block's projections: every 2-D weight, used once."""
    return sum(p.numel() for name, p in block.named_parameters() if p.dim() == 2)


def cone_sweep_flops(lm, n_positions: int, cells) -> float:
    """FLOPs the cone sweep needs for residual ``cells`` ``[(row, pos), …]`` of ``lm`` (a
    :class:`residual_widgets.models.LoadedModel`) on a ``n_positions``-token prompt."""
    cfg = lm.hf.config
    n_heads = int(cfg.num_attention_heads)
    d_head = int(getattr(cfg, "head_dim", None) or lm.d_model // n_heads)
    per_block = [2 * _block_weight_elems(b) for b in lm.blocks]
    unembed = 2 * lm.d_model * lm.vocab_size
    P, total = n_positions, 0.0
    for n, i in cells:
        q = P - i
        keys = sum(p + 1 for p in range(i, P))
        for k in range(n, lm.n_layers):
            total += per_block[k] * q + 4 * n_heads * d_head * keys
        total += unembed * q
    return total


def matmul_peak(seconds: float = 2.0, size: int = 1024) -> float:
    """Measured float32 matmul throughput in GFLOP/s (best of short bursts over ``seconds``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        dt = time.perf_counter() - t0
        best = max(best, 4 * 2 * size**3 / dt / 1e9)
    return best
