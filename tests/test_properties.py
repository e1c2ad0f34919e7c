"""Property-based checks (hypothesis) over random tiny configs, prompts and cells."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import residual_widgets as rw
from residual_widgets.grid import reachable_mask
from residual_widgets.tiny import random_ids

from helpers import tiny_lm

FAMS = ["gpt2", "neox", "llama", "gemma3", "mistral", "phi3"]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def scenario(draw):
    family = draw(st.sampled_from(FAMS))
    n_layers = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2))
    P = draw(st.integers(1, 12))
    ids = random_ids(P, 300, seed=draw(st.integers(0, 10_000)))
    site = draw(st.sampled_from(rw.SITES))
    rows = n_layers + 1 if site == "resid" else n_layers
    all_cells = [(r, p) for r in range(rows) for p in range(P)]
    cells = draw(st.lists(st.sampled_from(all_cells), min_size=1, max_size=4, unique=True))
    kind = draw(st.sampled_from(["zero", "mean", "noise", "patch"]))
    return family, n_layers, seed, ids, site, cells, kind


@SETTINGS
@given(scenario())
def test_nothing_outside_the_cone_changes(sc):
    family, n_layers, seed, ids, site, cells, kind = sc
    lm = tiny_lm(family, n_layers, seed)
    source = list(reversed(ids))
    sess = rw.Session(lm, ids, source=source)
    eff = sess.intervene(cells, kind=kind, site=site)
    reach = reachable_mask(cells, n_layers, len(ids), site)
    assert np.all(eff.resid_delta[~reach] == 0.0)
    out_reach = reach[-1]
    assert np.all(eff.kl[~out_reach] == 0.0)
    assert np.all(eff.logprob_delta[~out_reach[:-1]] == 0.0)
    assert np.all(np.isfinite(eff.resid_delta)) and np.all(eff.kl >= 0)


@SETTINGS
@given(scenario())
def test_cone_sweep_agrees_with_single_interventions(sc):
    family, n_layers, seed, ids, site, cells, kind = sc
    lm = tiny_lm(family, n_layers, seed)
    sess = rw.Session(lm, ids, source=list(reversed(ids)))
    rows = sorted({r for r, _ in cells})
    positions = sorted({p for _, p in cells})
    atlas = sess.sweep(kind=kind, site=site, rows=rows, positions=positions, method="cone")
    for r in rows:
        for p in positions:
            eff = sess.intervene((r, p), kind=kind, site=site)
            np.testing.assert_allclose(
                atlas.resid_delta[r, p], eff.resid_delta, atol=2e-5, rtol=1e-4
            )
            np.testing.assert_allclose(atlas.kl[r, p], eff.kl, atol=2e-5)
            reach = reachable_mask([(r, p)], n_layers, len(ids), site)
            assert np.all(atlas.resid_delta[r, p][~reach] == 0.0)
