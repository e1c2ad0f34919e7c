"""Far-future use, measured with the engine on the bundled induction model.

In [prefix, x, x] the model predicts x[k+1] in the second repeat by reading the position right
after x[k]'s first occurrence. Zero-ablating the embedding (row 0) of that position, one repeat
earlier, must wreck that prediction; ablating a prefix position must not.
"""

import numpy as np
import torch

import residual_widgets as rw
from residual_widgets import views


def _sequences(n, m=10, a=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        prefix = torch.randint(4, 512, (a,), generator=g).tolist()
        x = torch.randint(4, 512, (m,), generator=g).tolist()
        yield prefix + x + x, a, m


def test_ablating_the_first_repeat_changes_the_prediction_one_repeat_later():
    model = rw.load_model("induction-2l")
    drops, controls = [], []
    for ids, a, m in _sequences(8):
        sess = rw.Session(model, ids)
        k = m // 2
        target = a + m + k  # predicts x[k+1] in the second repeat
        eff = sess.ablate((0, a + k + 1))  # x[k+1]'s first occurrence, m - 1 tokens earlier
        ctrl = sess.ablate((0, 0))  # a prefix token nothing copies from
        drops.append(eff.logprob_delta[target])
        controls.append(ctrl.logprob_delta[target])
        assert np.all(eff.logprob_delta[: a + k + 1] == 0.0)
    assert np.mean(drops) < -2.0, drops  # log p of the copy falls by > 2 nats
    assert abs(np.mean(controls)) < 0.25 * abs(np.mean(drops)), (drops, controls)


def test_future_profile_peaks_one_repeat_ahead():
    model = rw.load_model("induction-2l")
    ids, a, m = next(_sequences(1, seed=3))
    atlas = rw.Session(model, ids).sweep(rows=[0])
    prof = views.future_profile(atlas.kl, [(0, i) for i in range(a, a + m)], agg="mean")
    peak = 1 + int(np.nanargmax(prof.value[1:]))
    assert peak in (m - 1, m), prof.value
    assert prof.far_future > 0
