"""Helpers the lecture notebooks use to make claims that survive a skeptic.

Every real-model claim in ``examples/`` is an average over many prompts with an interval, next
to a control that would fail if the claim were false. The corpus and its batched runs live in
:mod:`.lecture_corpus`, the intervals in :mod:`.lecture_stats`; this module holds the
per-lecture computations and controls, and re-exports the others (``lecture.t_interval``,
``lecture.residuals``, … keep working):

* :func:`untrained_twin` — a bundled model's architecture with fresh random weights (the model
  where a learned claim should *not* hold);
* :func:`write_effects` / :func:`lookahead_terms` — what block ``k`` writes at position ``i``,
  read later: next-token term, mean far-future term per later position, far-future share;
* :func:`zero_ablation_kl` — many single-cell zero-ablations of many prompts in a few batched
  forward passes;
* :func:`knockout_blocks` — attention-edge knockout restricted to chosen blocks (for hop-by-hop
  tests of a circuit);
* :class:`bidirectional` — the model attending both ways (the control for causal claims);
* :func:`ffn_hidden_ablation` — zero the MLP's hidden activation at one cell (with a mixing
  control).

The functions that hook a model's modules register their hooks only while the thread holds the
model's lock (``lm.lock``): a widget's sweep steps the same blocks on another thread and must
neither see the hooks nor be recorded.
"""

from __future__ import annotations

import numpy as np
import torch

from .lecture_corpus import (  # noqa: F401 - re-exported: lecture.<name> is the notebooks' API
    PROMPTS_FILE,
    SOURCES,
    load_prompts,
    position_content_for,
    prompt_ids,
    residuals,
    shuffled,
)
from .lecture_stats import (  # noqa: F401 - re-exported
    Interval,
    _norm_ppf,
    bootstrap_interval,
    interval_figure,
    t_interval,
    t_quantile,
)


# ---- models where the claim should not hold ------------------------------------------------
def untrained_twin(name: str = "induction-2l", seed: int = 0):
    """A bundled model's architecture and tokenizer with freshly initialised random weights
    (``from_config``, seeded): the same shapes and code path, nothing learned."""
    from transformers import AutoModelForCausalLM

    from .bundled import load_bundled
    from .models import load_model

    hf, tok = load_bundled(name)
    torch.manual_seed(seed)
    twin = AutoModelForCausalLM.from_config(hf.config, dtype=torch.float32).eval()
    lm = load_model(twin, tokenizer=tok)
    lm.name = f"{name} (untrained twin, seed {seed})"
    return lm


# ---- what a block writes at i, read later ----------------------------------------------------
def write_effects(
    sess, position: int, sites=("attn_out", "mlp_out"), blocks=None, row0: bool = True
) -> dict[str, np.ndarray]:
    """Zero what block ``k`` writes at ``position`` (for each of ``blocks``, each site) and the
    token itself (row 0); KL of the next-token distribution at every position.

    Returns ``{site: [len(blocks), P]}`` plus ``"resid0"``: ``[1, P]`` (row 0, the token) and
    ``"blocks"``. Entry ``[k, j]`` for ``j > position`` is the effect read later through
    attention (position ``j`` sees position ``i`` only through attention); ``j == position`` is
    the next-token term. Uses the cone sweep restricted to one position (cheap)."""
    L = sess.n_layers
    blocks = list(range(L)) if blocks is None else [int(b) for b in blocks]
    out: dict[str, np.ndarray] = {"blocks": np.array(blocks)}
    for site in sites:
        a = sess.sweep(site=site, rows=blocks, positions=[position], keep_maps=False)
        out[site] = a.kl[blocks, position].astype(np.float64)
    if row0:
        a = sess.sweep(site="resid", rows=[0], positions=[position], keep_maps=False)
        out["resid0"] = a.kl[[0], position].astype(np.float64)
    return out


def lookahead_terms(
    kl: np.ndarray, position: int, window: int | None = None, skip: int = 0
) -> dict[str, np.ndarray]:
    """Split ``kl`` ``[..., P]`` (effects of intervening at ``position``) into

    * ``next``: the next-token term, ``kl[..., i]`` (the prediction position ``i`` makes);
    * ``far_mean``: the mean over later positions ``j = i+1+skip .. i+window`` (per later
      position, so it does not grow with the number of later positions);
    * ``far_sum``: their sum; ``share``: ``far_sum / (far_sum + next)`` over that fixed window.
    """
    kl = np.asarray(kl, dtype=np.float64)
    P = kl.shape[-1]
    i = int(position)
    window = P - 1 - i if window is None else int(window)
    if i + window >= P:
        raise ValueError(f"window {window} after position {i} runs past the prompt ({P})")
    far = kl[..., i + 1 + skip : i + 1 + window]
    nxt = kl[..., i]
    fs = far.sum(-1)
    tot = fs + nxt
    share = np.divide(fs, tot, out=np.zeros_like(tot), where=tot > 0)
    return {"next": nxt, "far_mean": far.mean(-1), "far_sum": fs, "share": share}


@torch.no_grad()
def zero_ablation_kl(model, ids_list, specs, chunk: int = 64) -> dict[str, np.ndarray]:
    """Many single-cell zero-ablations of many prompts in a few batched forward passes.

    ``specs``: a list of ``(site, row, position)`` (``site`` ``"resid"``: residual row
    ``0..L-1``; ``"attn_out"``/``"mlp_out"``: block ``row``'s write). Every prompt is run once
    clean and once per spec, each run its own batch element (``chunk`` elements per forward).
    Returns ``{"kl": [N, S, P], "logprob_delta": [N, S, P - 1]}`` against each prompt's clean
    run — the same numbers as ``Session(model, ids).ablate((row, position), site=site)``, at
    the cost of plain forward passes (no per-cell tracing), which is what lets the lecture
    notebooks average over many prompts."""
    from . import metrics
    from .models import _get, load_model

    lm = load_model(model)
    L = lm.n_layers
    specs = [(str(s), int(r), int(p)) for s, r, p in specs]
    for s, r, p in specs:
        if s not in ("resid", "attn_out", "mlp_out") or not 0 <= r < L:
            raise ValueError(f"bad spec {(s, r, p)}: site resid/attn_out/mlp_out, row 0..{L - 1}")
    lengths = {len(x) for x in ids_list}
    if len(lengths) != 1:
        raise ValueError(f"prompts must have equal token lengths, got {sorted(lengths)}")
    P = lengths.pop()
    S = len(specs)
    group = max(1, chunk // (S + 1))  # prompts per forward pass
    edits: dict[tuple[str, int], list[tuple[int, int]]] = {}

    def zero(h, key):
        for b, p in edits.get(key, ()):
            h[b, p] = 0.0

    def pre_hook(k):
        def f(mod, args, kwargs):
            h = args[0] if args else next(v for n, v in kwargs.items() if "hidden" in n)
            zero(h, ("resid", k))

        return f

    def out_hook(site, k):
        def f(mod, args, out):
            zero(out[0] if isinstance(out, (tuple, list)) else out, (site, k))

        return f

    def hook_all() -> list:
        handles = []
        for site, k in {(s, r) for s, r, _ in specs}:
            if site == "resid":
                pre = pre_hook(k)
                handles.append(lm.blocks[k].register_forward_pre_hook(pre, with_kwargs=True))
            else:
                mod = _get(lm.hf, lm.write_path(site, k))
                handles.append(mod.register_forward_hook(out_hook(site, k)))
        return handles

    kls, dlps = [], []
    pos = torch.arange(P - 1)
    for g0 in range(0, len(ids_list), group):
        prompts = [list(x) for x in ids_list[g0 : g0 + group]]
        x = torch.tensor([ids for ids in prompts for _ in range(S + 1)], device=lm.input_device)
        # the hooks live only while this thread holds the model: a widget's sweep steps the
        # same blocks between our forwards, and must not be zeroed
        with lm.lock:
            edits.clear()
            for n in range(len(prompts)):
                for k, (s, r, p) in enumerate(specs):
                    edits.setdefault((s, r), []).append((n * (S + 1) + 1 + k, p))
            handles = hook_all()
            try:
                logits = lm.hf(input_ids=x, use_cache=False).logits.float().cpu()
            finally:
                for h in handles:
                    h.remove()
        lp = torch.log_softmax(logits, -1).view(len(prompts), S + 1, P, -1)
        clean, new = lp[:, :1], lp[:, 1:]
        kls.append(metrics.kl_from_logprobs(clean, new))
        nxt = torch.tensor(prompts)[:, 1:]
        idx = nxt[:, None, :, None]
        dlps.append(
            (
                new[:, :, pos].gather(-1, idx.expand(-1, S, -1, 1))
                - clean[:, :, pos].gather(-1, idx)
            )[..., 0]
        )
    return {"kl": torch.cat(kls).numpy(), "logprob_delta": torch.cat(dlps).numpy()}


def knockout_blocks(sess, position: int, blocks) -> dict[str, np.ndarray]:
    """Stop every later position reading ``position`` through attention **in ``blocks`` only**
    (``Session.intervene((min(blocks), position), kind="knockout", blocks=blocks)``; without
    ``blocks`` the engine removes the edges in every block from a row up). Position
    ``position`` itself is untouched. Returns ``{"kl": [P], "logprob_delta": [P - 1],
    "resid": [R, P, d]}`` against the clean run."""
    blocks = sorted({int(b) for b in blocks})
    if not blocks:
        raise ValueError("blocks must name at least one block")
    eff = sess.intervene((blocks[0], int(position)), kind="knockout", blocks=blocks)
    return {"kl": eff.kl, "logprob_delta": eff.logprob_delta, "resid": eff.resid}


# ---- controls: models where a structural claim must fail ---------------------------------------
class bidirectional:
    """Context manager: inside it, ``model`` attends **bidirectionally** (every position reads
    every other; an all-True 4-D attention mask is passed to each forward). The control for the
    causal claims: under it, cells outside the cone *do* change and appending tokens *does*
    change earlier cells. Sessions must be created inside the block (their clean run too)::

        with lec.bidirectional(model):
            eff = rw.Session(model, prompt).ablate((n, i))     # outside the cone: not zero
    """

    def __init__(self, model):
        from .models import load_model

        self.lm = load_model(model)
        self._handle = None

    def _hook(self, mod, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return None
        P = ids.shape[-1]
        kwargs = dict(kwargs)
        kwargs["attention_mask"] = torch.ones(
            ids.shape[0], 1, P, P, dtype=torch.bool, device=ids.device
        )
        return args, kwargs

    def __enter__(self):
        self._handle = self.lm.hf.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self.lm

    def __exit__(self, *exc):
        self._handle.remove()
        return False


_DOWN_NAMES = ("down_proj", "c_proj", "fc2", "dense_4h_to_h", "fc_out", "w2")


@torch.no_grad()
def ffn_hidden_ablation(model, ids_list, cells, mix: float = 0.0) -> np.ndarray:
    """Zero the MLP's *hidden* activation (the input of its output projection) of block ``k`` at
    position ``i``, one ``(k, i)`` of ``cells`` per prompt of ``ids_list`` (equal lengths), and
    return ``||Δh|| / ||h||`` at every residual cell ``[N, R, P]`` (two batched forwards).

    ``mix > 0`` is the control: a hypothetical MLP whose hidden layer mixes neighbouring
    positions (``hidden[j] += mix * hidden[j - 1]``, in the clean and the ablated run alike).
    A private hidden state changes only ``(k + 1, i)`` in the row above; the mixing one also
    changes ``(k + 1, i + 1)``."""
    from . import metrics
    from .models import _get, load_model

    lm = load_model(model)
    cells = [(int(k), int(i)) for k, i in cells]
    if len(cells) != len(ids_list):
        raise ValueError("give one (block, position) cell per prompt")
    downs = {}
    for k in {k for k, _ in cells} | (set(range(lm.n_layers)) if mix else set()):
        mlp = _get(lm.hf, lm.mlp_write[k])
        down = next((getattr(mlp, n) for n in _DOWN_NAMES if hasattr(mlp, n)), None)
        if down is None:
            raise ValueError(
                f"cannot find the output projection of {lm.mlp_write[k]} "
                f"(looked for {', '.join(_DOWN_NAMES)})"
            )
        downs[k] = down
    ablate = {"on": False}

    def pre_for(k):
        rows = [n for n, (kk, _) in enumerate(cells) if kk == k]

        def pre(mod, args):
            h = args[0].clone()
            if ablate["on"]:
                for n in rows:
                    h[n, cells[n][1]] = 0.0
            if mix:
                h[:, 1:] = h[:, 1:] + mix * h[:, :-1]
            return (h,) + tuple(args[1:])

        return pre

    # the hooks live only while this thread holds the model (a reentrant lock: residuals()
    # takes it again): a widget's sweep steps the same MLPs, and must not be ablated or mixed
    with lm.lock:
        handles = [d.register_forward_pre_hook(pre_for(k)) for k, d in downs.items()]
        try:
            clean = residuals(lm, ids_list, batch=len(ids_list))
            ablate["on"] = True
            new = residuals(lm, ids_list, batch=len(ids_list))
        finally:
            for h in handles:
                h.remove()
    return metrics.resid_delta(new, clean).numpy()
