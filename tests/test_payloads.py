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
    atlas = SimpleNamespace(kind="zero", site="resid", complete=True, storage="float16",
                            resid_delta=np.ones((S, P, R, P), np.float16),
                            kl=np.ones((S, P, P), np.float32), logit_diff=None,
                            done=np.ones((S, P), bool), logit_diff_clean=None,
                            method="cone", slow_path="")
    small = _payloads.atlas_payload(atlas)
    assert small["storage"] == "float16" and small["resid_delta"]["dtype"] == "float16"
    monkeypatch.setattr(_payloads, "SEND_LIMIT_BYTES", atlas.kl.nbytes - 1)
    big = _payloads.atlas_payload(atlas)
    assert big["storage"] == "summary" and big["resid_delta"] is None and big["kl"] is None
    assert _codec.decode(big["total_kl"]).shape == (S, P)
