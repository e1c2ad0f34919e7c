"""TransformerLens as an independent oracle for the sweep, on identical weights.

For each family we build one tiny random-weight model, hand a deep copy of it to
TransformerLens 4.x (``TransformerBridge.boot_transformers``), and compute classic activation
patching of ``blocks.{k}.hook_resid_pre`` (= our rows 0..L-1) with
``transformer_lens.patching.get_act_patch_resid_pre``:

* zero ablation: the "clean cache" handed to TL is an ActivationCache of zeros;
* patching: TL's usual setting, corrupted tokens = our ``prompt``, clean cache = the run of our
  ``source``.

Two metrics per cell, both computed by TL from the full logits of the intervened run:

* total KL: sum over positions of KL(base || new) of the next-token distributions (natural log),
  where "base" is the unintervened run of the prompt being intervened on;
* logit difference at the last position: logit[good] - logit[bad].

Our ``Session.sweep`` must agree within 1e-4 for ``method="cone"`` and ``method="loop"``.
GPT-2 and Llama are required to run; other families are skipped (with the reason) only if
TransformerLens cannot boot them offline.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import copy
import functools

import numpy as np
import pytest
import torch
import transformer_lens.model_bridge as tl_bridge  # a dev dependency: missing means a broken setup
from transformer_lens import ActivationCache, patching

import residual_widgets as rw
from residual_widgets.tiny import random_ids, tiny_model

# TL's patching loop draws a tqdm bar per sweep; TQDM_DISABLE would come too late (conftest
# imports tqdm first), so hand its module a tqdm that is off
patching.tqdm = functools.partial(patching.tqdm, disable=True)

TOL = 1e-4
N_LAYERS, D_MODEL, N_HEADS, N_CTX, N_TOK = 3, 64, 4, 64, 10
# A hub name per family. TL reads the architecture from the model it is given; the name only
# labels it (nothing is downloaded: HF_HUB_OFFLINE=1 and hf_model= is passed).
TL_NAMES = {
    "gpt2": "gpt2",
    "neox": "EleutherAI/pythia-70m",
    "llama": "meta-llama/Llama-3.2-1B",
    "qwen2": "Qwen/Qwen2-0.5B",
    "qwen3": "Qwen/Qwen3-0.6B",
    "gemma2": "google/gemma-2-2b",
    "gemma3": "google/gemma-3-270m",
    "mistral": "mistralai/Mistral-7B-v0.1",
    "phi3": "microsoft/Phi-3-mini-4k-instruct",
}
REQUIRED = ("gpt2", "llama")
FAMILIES = list(TL_NAMES)


# ---- metrics, as TransformerLens sees them (full logits [1, P, V] of one run) -----------------
def total_kl(base_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """sum_pos KL(base || new) of the next-token distributions, natural log. Inputs [1, P, V]."""
    base_lp = torch.log_softmax(base_logits[0].double(), dim=-1)
    new_lp = torch.log_softmax(new_logits[0].double(), dim=-1)
    return (base_lp.exp() * (base_lp - new_lp)).sum()


def last_logit_diff(logits: torch.Tensor, good: int, bad: int) -> torch.Tensor:
    """logit[good] - logit[bad] at the last position. Input [1, P, V]."""
    return logits[0, -1, good] - logits[0, -1, bad]


# ---- building the pair (our engine, TL bridge) on identical weights ---------------------------
def _tl_tokenizer(tok):
    """TL re-loads a tokenizer by ``init_kwargs['name_or_path']`` unless ``add_bos_token`` is set;
    our locally built tokenizer has neither, so mark it as already BOS-aware (we feed token ids)."""
    t = copy.deepcopy(tok)
    t.init_kwargs["name_or_path"] = "residual-widgets-local-word-tokenizer"
    t.init_kwargs["add_bos_token"] = True
    return t


@functools.cache
def _setup(family: str):
    hf, tok = tiny_model(family, n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, n_ctx=N_CTX)
    hf_copy = copy.deepcopy(hf)  # boot_transformers rewires the module it is given
    # Models built from a config carry no `architectures`; TL needs it to pick an adapter.
    hf_copy.config.architectures = [type(hf).__name__]
    try:
        bridge = tl_bridge.TransformerBridge.boot_transformers(
            TL_NAMES[family], hf_model=hf_copy, tokenizer=_tl_tokenizer(tok)
        )
    except Exception as e:  # noqa: BLE001 - reported precisely below
        return None, f"{type(e).__name__}: {e}"
    bridge.eval()
    return (hf, tok, bridge), None


def _get(family: str):
    got, err = _setup(family)
    if got is None:
        msg = (
            f"TransformerLens {family} bridge (boot_transformers({TL_NAMES[family]!r}, "
            f"hf_model=..., tokenizer=...)) failed offline: {err}"
        )
        if family in REQUIRED:
            pytest.fail(msg)
        pytest.skip(msg)
    return got


def _prompts(tok):
    vocab = len(tok)
    prompt = random_ids(N_TOK, vocab, seed=1)
    source = random_ids(N_TOK, vocab, seed=2)
    good, bad = tok.convert_tokens_to_ids(" Mary"), tok.convert_tokens_to_ids(" John")
    return prompt, source, good, bad


def _tl_sweep(bridge, prompt, cache: ActivationCache, good: int, bad: int):
    """TL activation patching of resid_pre: returns (total_kl [L, P], logit_diff [L, P])."""
    toks = torch.tensor([prompt])
    with torch.no_grad():
        base = bridge(toks)
        ld = []

        def metric(logits):  # TL calls this once per cell on the full patched logits
            ld.append(float(last_logit_diff(logits, good, bad)))
            return total_kl(base, logits)

        kl = patching.get_act_patch_resid_pre(bridge, toks, cache, metric)
    L, P = kl.shape
    return kl.double().numpy(), np.array(ld).reshape(L, P)  # TL iterates layer-major


@pytest.mark.parametrize("family", FAMILIES)
def test_tl_clean_logits_match(family):
    """First the models themselves: TL's bridge and our engine give the same clean logits."""
    hf, tok, bridge = _get(family)
    prompt, source, _, _ = _prompts(tok)
    sess = rw.Session(rw.load_model(hf, tok), prompt, source=source)
    with torch.no_grad():
        for ids, ours in ((prompt, sess.clean.logits), (source, sess.source.logits)):
            tl = bridge(torch.tensor([ids]))[0]
            err = (ours.float() - tl.float()).abs().max().item()
            assert err < TOL, f"{family}: clean logits differ from TL's by {err:.3g}"


@pytest.mark.parametrize("kind", ["zero", "patch"])
@pytest.mark.parametrize("family", FAMILIES)
def test_sweep_matches_transformerlens(family, kind):
    hf, tok, bridge = _get(family)
    prompt, source, good, bad = _prompts(tok)
    L = N_LAYERS
    with torch.no_grad():
        if kind == "zero":
            _, src_cache = bridge.run_with_cache(torch.tensor([prompt]))
            cache = ActivationCache(
                {
                    f"blocks.{k}.hook_resid_pre": torch.zeros_like(
                        src_cache[f"blocks.{k}.hook_resid_pre"]
                    )
                    for k in range(L)
                },
                bridge,
            )
        else:
            _, cache = bridge.run_with_cache(torch.tensor([source]))
    tl_kl, tl_ld = _tl_sweep(bridge, prompt, cache, good, bad)
    assert tl_kl.shape == (L, N_TOK)
    assert tl_kl.max() > 1e-3, "TL's interventions had no effect: the oracle is not intervening"

    lm = rw.load_model(hf, tok)
    sess = rw.Session(lm, prompt, source=source if kind == "patch" else None)
    for method in ("cone", "loop"):
        atlas = sess.sweep(
            kind=kind, site="resid", logit_diff=(good, bad), rows=range(L), method=method
        )
        ours_kl = atlas.total_kl[:L].astype(np.float64)
        ours_ld = atlas.logit_diff[:L].astype(np.float64)
        kl_err = np.abs(ours_kl - tl_kl).max()
        ld_err = np.abs(ours_ld - tl_ld).max()
        assert kl_err < TOL, (
            f"{family} {kind} {method}: total KL differs from TL by {kl_err:.3g} "
            f"at cell {np.unravel_index(np.abs(ours_kl - tl_kl).argmax(), tl_kl.shape)}"
        )
        assert ld_err < TOL, (
            f"{family} {kind} {method}: logit diff differs from TL by {ld_err:.3g} "
            f"at cell {np.unravel_index(np.abs(ours_ld - tl_ld).argmax(), tl_ld.shape)}"
        )


@pytest.mark.parametrize("kind", ["zero", "patch"])
@pytest.mark.parametrize("family", ["gpt2", "llama", "gemma2"])
def test_top_row_matches_transformerlens(family, kind):
    """Row L (the final residual, TL's ``blocks.{L-1}.hook_resid_post``), which
    ``get_act_patch_resid_pre`` does not cover: TL's own hook writes zeros (or the source run's
    value) at one position, and both metrics must agree with our sweep's top row."""
    hf, tok, bridge = _get(family)
    prompt, source, good, bad = _prompts(tok)
    L, name = N_LAYERS, f"blocks.{N_LAYERS - 1}.hook_resid_post"
    toks = torch.tensor([prompt])
    with torch.no_grad():
        base = bridge(toks)
        _, src_cache = bridge.run_with_cache(torch.tensor([source]), names_filter=name)
        tl_kl, tl_ld = [], []
        for i in range(N_TOK):

            def write(act, hook, i=i):
                act = act.clone()
                act[:, i] = 0.0 if kind == "zero" else src_cache[name][:, i]
                return act

            new = bridge.run_with_hooks(toks, fwd_hooks=[(name, write)])
            tl_kl.append(float(total_kl(base, new)))
            tl_ld.append(float(last_logit_diff(new, good, bad)))
    assert max(tl_kl) > 1e-3, "TL's hook had no effect: the oracle is not intervening"
    sess = rw.Session(rw.load_model(hf, tok), prompt, source=source if kind == "patch" else None)
    for method in ("cone", "loop"):
        atlas = sess.sweep(kind=kind, logit_diff=(good, bad), rows=[L], method=method)
        assert atlas.complete and atlas.done[L].all()
        np.testing.assert_allclose(atlas.total_kl[L], tl_kl, atol=TOL, rtol=0)
        np.testing.assert_allclose(atlas.logit_diff[L], tl_ld, atol=TOL, rtol=0)
