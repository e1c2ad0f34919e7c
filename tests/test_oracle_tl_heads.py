"""TransformerLens as an independent oracle for head patching (``site="head"``).

The same tiny models and TL bridges as ``test_oracle_tl.py`` (identical weights), and TL's own
head patching of ``blocks.{k}.attn.hook_z``:

* ``patching.get_act_patch_attn_head_out_by_pos`` (``[L, P, H]``) against
  ``Session.sweep(site="head")`` (``[L, H, P]``);
* ``patching.get_act_patch_attn_head_out_all_pos`` (``[L, H]``) against
  ``Session.sweep_heads(positions="all")``;

for patching (TL's usual setting: corrupted tokens = our prompt, clean cache = our source's run)
and zero ablation (a cache of zeros). The metric is the logit difference at the last position,
with the total KL over positions read off the same logits. Both must agree within 1e-4, with
``method="cone"`` and ``method="loop"``. GPT-2 (multi-head) and Llama (grouped-query: 4 query
heads share 2 key/value heads) are required; Qwen2 and Mistral (also GQA) run when TL boots them.
"""

import numpy as np
import pytest
import torch
from test_oracle_tl import N_LAYERS, N_TOK, TOL, _get, _prompts, last_logit_diff, total_kl
from transformer_lens import ActivationCache, patching

import residual_widgets as rw

FAMILIES = ["gpt2", "llama", "qwen2", "mistral"]


def _tl_head_sweep(bridge, prompt, cache, good, bad, all_pos):
    """TL's head patching: (logit diff, total KL), ours' axis order ([L, H, P] or [L, H])."""
    toks = torch.tensor([prompt])
    with torch.no_grad():
        base = bridge(toks)
        kls = []

        def metric(logits):  # TL calls this once per cell on the full patched logits
            kls.append(float(total_kl(base, logits)))
            return last_logit_diff(logits, good, bad)

        fn = (
            patching.get_act_patch_attn_head_out_all_pos
            if all_pos
            else patching.get_act_patch_attn_head_out_by_pos
        )
        ld = fn(bridge, toks, cache, metric).double().numpy()
    kl = np.array(kls).reshape(ld.shape)  # TL iterates in its output's (row-major) order
    if not all_pos:  # [L, P, H] -> [L, H, P]
        ld, kl = ld.transpose(0, 2, 1), kl.transpose(0, 2, 1)
    return ld, kl


@pytest.mark.parametrize("all_pos", [False, True], ids=["by_pos", "all_pos"])
@pytest.mark.parametrize("kind", ["patch", "zero"])
@pytest.mark.parametrize("family", FAMILIES)
def test_head_patching_matches_transformerlens(family, kind, all_pos):
    hf, tok, bridge = _get(family)
    prompt, source, good, bad = _prompts(tok)
    names = [f"blocks.{k}.attn.hook_z" for k in range(N_LAYERS)]
    with torch.no_grad():
        _, cache = bridge.run_with_cache(
            torch.tensor([source if kind == "patch" else prompt]), names_filter=names
        )
    if kind == "zero":
        cache = ActivationCache({n: torch.zeros_like(cache[n]) for n in names}, bridge)
    tl_ld, tl_kl = _tl_head_sweep(bridge, prompt, cache, good, bad, all_pos)
    H = bridge.cfg.n_heads
    assert tl_ld.shape == ((N_LAYERS, H) if all_pos else (N_LAYERS, H, N_TOK))
    assert np.ptp(tl_ld) > 1e-3, "TL's patches had no effect: the oracle is not intervening"

    sess = rw.Session(rw.load_model(hf, tok), prompt, source=source if kind == "patch" else None)
    assert sess.n_heads == H
    for method in ("cone", "loop"):
        atlas = sess.sweep_heads(
            kind=kind,
            positions="all" if all_pos else None,
            logit_diff=(good, bad),
            method=method,
        )
        assert atlas.method == method and atlas.complete
        ld_err = np.abs(atlas.logit_diff.astype(np.float64) - tl_ld)
        kl_err = np.abs(atlas.total_kl.astype(np.float64) - tl_kl)
        assert ld_err.max() < TOL, (
            f"{family} {kind} {method}: logit diff differs from TL by {ld_err.max():.3g} "
            f"at (layer, head{'' if all_pos else ', pos'}) "
            f"{np.unravel_index(ld_err.argmax(), ld_err.shape)}"
        )
        assert kl_err.max() < TOL, (
            f"{family} {kind} {method}: total KL differs from TL by {kl_err.max():.3g} "
            f"at {np.unravel_index(kl_err.argmax(), kl_err.shape)}"
        )


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_head_z_matches_transformerlens(family):
    """The activation itself: our z of every head equals TL's ``hook_z`` (query heads)."""
    hf, tok, bridge = _get(family)
    prompt, _, _, _ = _prompts(tok)
    sess = rw.Session(rw.load_model(hf, tok), prompt)
    from residual_widgets.heads import head_acts

    ours = head_acts(sess)  # [L, P, H, dh]
    with torch.no_grad():
        _, cache = bridge.run_with_cache(torch.tensor([prompt]))
    for k in range(N_LAYERS):
        tl = cache[f"blocks.{k}.attn.hook_z"][0].float()
        err = (ours[k] - tl).abs().max().item()
        assert tl.shape == ours[k].shape and err < TOL, f"{family} block {k}: z differs by {err}"
