"""A session's interventions: what each kind writes (:func:`values_for`), running it
(:func:`intervene`: the cone, a trace, a knockout or a head) and measuring the result against
the clean run (:func:`effect_of` → :class:`~.effects.Effect`).

:meth:`Session.intervene` is the public face; the engine's other paths (the sweep, heads,
transplants) build their effects with :func:`effect_of` too, so every effect is measured the
same way.
"""

from __future__ import annotations

import numpy as np
import torch

from . import grid, metrics
from .effects import Effect
from .interventions import replacement_values
from .runs import RunRecord


def values_for(sess, cells, kind: str, site: str, value=None) -> torch.Tensor:
    """The vectors ``[n_cells, d]`` an intervention of ``kind`` writes into ``cells``
    (``[n_cells, d_head]`` for ``site="head"``)."""
    if site == grid.HEAD_SITE:
        from . import heads

        return heads.values_for(sess, cells, kind, value)
    return replacement_values(
        kind,
        site,
        cells,
        sess.site_acts(site),
        source=sess.site_acts(site, "source"),
        mean=sess._mean(site) if kind == "mean" else None,
        sigma=sess.noise_scale * sess.sigma,
        seed=sess.seed,
        value=value,
    )


def intervene(
    sess,
    cells,
    kind: str = "zero",
    site: str = "resid",
    *,
    value=None,
    logit_diff=None,
    blocks=None,
    method: str = "auto",
) -> Effect:
    """:meth:`Session.intervene` (its docstring says what each argument does)."""
    if site == grid.HEAD_SITE:
        if blocks is not None:
            raise ValueError("blocks= applies to kind='knockout' only")
        from . import head_click

        return head_click.intervene(
            sess, cells, kind, value=value, logit_diff=logit_diff, method=method
        )
    cells = sess.check(cells, kind, site)
    if blocks is not None and kind != "knockout":
        raise ValueError("blocks= applies to kind='knockout' only")
    pair = sess.token_pair(logit_diff) if logit_diff is not None else sess.default_pair
    if kind == "knockout":
        if sess.remote is not None:
            raise ValueError("kind='knockout' steps blocks locally; use a local session")
        from .knockout import acting_cells, knockout_run

        with sess.lock:
            run = knockout_run(sess, cells, blocks=blocks)
        eff = effect_of(sess, cells, kind, site, run, pair)
        if blocks is not None:  # what can change starts at the first knocked-out block
            eff.reachable = grid.reachable_mask(
                acting_cells(cells, sess.n_layers, blocks),
                sess.n_layers,
                sess.n_positions,
                kind="knockout",
            )
        return eff
    from .click import click_run

    vals = sess.values_for(cells, kind, site, value)
    run = click_run(sess, cells, vals, site, method)
    return effect_of(sess, cells, kind, site, run, pair)


def effect_of(sess, cells, kind, site, run: RunRecord, pair) -> Effect:
    new_lp = torch.log_softmax(run.logits, dim=-1)
    ld = ld_clean = None
    if pair is not None:
        ld = float(metrics.logit_diff(new_lp[-1], pair))
        ld_clean = float(metrics.logit_diff(sess.clean_logprobs[-1], pair))
    return Effect(
        cells=cells,
        kind=kind,
        site=site,
        tokens=sess.token_strings,
        resid_delta=metrics.resid_delta(run.resid, sess.clean.resid).numpy().astype(np.float32),
        kl=metrics.kl_from_logprobs(sess.clean_logprobs, new_lp).numpy().astype(np.float32),
        logprob_delta=metrics.logprob_delta(sess.clean_logprobs, new_lp, sess.ids)
        .numpy()
        .astype(np.float32),
        reachable=grid.reachable_mask(cells, sess.n_layers, sess.n_positions, site, kind),
        logit_diff=ld,
        logit_diff_clean=ld_clean,
        resid=run.resid,
    )
