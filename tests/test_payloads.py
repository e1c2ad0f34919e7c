"""What the widget's traits carry (``_payloads``): when arrays go as float16, and when they stay
in the kernel."""

from types import SimpleNamespace

import numpy as np

from residual_widgets import _codec, _payloads


def test_float16_above_a_size():
    assert _payloads.wants_half((13, 24, 13, 24)) is False
    assert _payloads.wants_half((31, 60, 31, 60)) is True


def test_atlas_payload_keeps_big_arrays_in_the_kernel(monkeypatch):
    """Maps or per-position KL beyond the send limit stay in the kernel; the payload says
    'summary' so the widget explains that clicks compute maps."""
    S, P, R = 3, 8, 3
    atlas = SimpleNamespace(
        kind="zero",
        site="resid",
        complete=True,
        storage="float16",
        resid_delta=np.ones((S, P, R, P), np.float16),
        kl=np.ones((S, P, P), np.float32),
        logit_diff=None,
        done=np.ones((S, P), bool),
        logit_diff_clean=None,
        method="cone",
        slow_path="",
    )
    small = _payloads.atlas_payload(atlas)
    assert small["storage"] == "float16" and small["resid_delta"]["dtype"] == "float16"
    monkeypatch.setattr(_payloads, "SEND_LIMIT_BYTES", atlas.kl.nbytes - 1)
    big = _payloads.atlas_payload(atlas)
    assert big["storage"] == "summary" and big["resid_delta"] is None and big["kl"] is None
    assert _codec.decode(big["total_kl"]).shape == (S, P)


def _atlas(S=4, P=5, R=4, pair=True):
    rng = np.random.default_rng(0)
    ld = rng.normal(size=(S, P)).astype(np.float32)
    return SimpleNamespace(
        kind="zero",
        site="resid",
        complete=True,
        storage="float32",
        resid_delta=rng.random((S, P, R, P)).astype(np.float32),
        kl=rng.random((S, P, P)).astype(np.float32),
        logprob_delta=rng.random((S, P, P - 1)).astype(np.float32),
        logit_diff=ld if pair else None,
        logit_diff_clean=0.0 if pair else None,
        done=np.ones((S, P), bool),
        method="cone",
        slow_path="",
    )


def test_page_atlas_keeps_every_map_as_float16_when_it_fits():
    a = _atlas()
    out, words = _payloads.page_atlas_payload(a)
    maps = _codec.decode(out["resid_delta"])
    assert out["storage"] == "float16" and maps.dtype == np.float16 and out["map_index"] is None
    np.testing.assert_array_equal(maps, a.resid_delta.astype(np.float16))
    np.testing.assert_array_equal(_codec.decode(out["logprob_delta"]), a.logprob_delta)
    assert "all 20 swept source cells as float16" in words


def test_page_atlas_keeps_the_most_important_maps_within_the_budget():
    """Past the budget: the pinned cells first, then the largest |Δ logit diff|; map_index says
    which map is whose; the words say what was kept and why."""
    a = _atlas()
    R, P = 4, 5
    small = a.kl.nbytes + a.logprob_delta.nbytes
    out, words = _payloads.page_atlas_payload(a, budget=small + 6 * R * P * 2, keep=[(3, 4)])
    assert out["storage"] == "subset"
    index, maps = _codec.decode(out["map_index"]), _codec.decode(out["resid_delta"])
    K = maps.shape[0]
    assert K >= 6 and int((index >= 0).sum()) == K < 20
    order = np.argsort(-np.abs(a.logit_diff), axis=None, kind="stable")
    want = [(3, 4)] + [
        c for c in (tuple(np.unravel_index(f, (4, 5))) for f in order) if c != (3, 4)
    ][: K - 1]
    assert {tuple(map(int, c)) for c in zip(*np.nonzero(index >= 0), strict=True)} == set(want)
    for c in want:
        np.testing.assert_array_equal(maps[index[c]], a.resid_delta[c].astype(np.float16))
    assert f"{K} of the 20 swept source cells" in words and "logit difference" in words
    counted = ("resid_delta", "map_index", "kl", "logprob_delta")  # summaries are not
    assert sum(len(out[k]["buffer"]) for k in counted if out[k]) <= small + 6 * R * P * 2


def test_page_atlas_without_maps_says_so():
    a = _atlas(pair=False)
    a.resid_delta = None
    out, words = _payloads.page_atlas_payload(a)
    assert out["storage"] == "summary" and out["resid_delta"] is None and "no maps" in words
