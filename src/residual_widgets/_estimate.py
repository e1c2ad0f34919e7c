"""The widget's instant overview: the attribution estimate for its current settings, or why not.

The exact sweep takes tens of seconds (27 s on SmolLM2 at 33 tokens) and grows as L²·P²;
attribution patching (:mod:`.attribution`) estimates every source cell from one forward and
one backward pass (≈ 0.5 s). The widget computes it on its job worker before the sweep starts
(the sweep waits for it: :class:`ResidualExplorer` ``_estimate_ready``) and paints it in the
overview, marked as an estimate, until each cell's exact value arrives.

What has an estimate: the logit difference (with a token pair) and the summed Δ log p of the
prompt's actual next tokens, for the kinds that write a value (zero, mean, noise, patch,
resample) on every site. Total KL has none — its gradient at the clean run is 0, so its
first-order estimate is identically 0 — and neither have ``set`` and ``knockout``: the overview
then says why (:func:`estimate_for`'s note) and fills in from the sweep alone.
"""

from __future__ import annotations

#: where the first-order estimate is known to be poor (bench/bench_attribution.py, SmolLM2, 20
#: prompts: Pearson/Spearman ≈ 0.0–0.1 for zero/mean on whole residual vectors)
POOR = {
    ("zero", "resid"): "zeroing a whole residual vector is far from linear: on SmolLM2 this "
    "estimate correlates ≈ 0 with the exact sweep — read the ranking with care",
    ("mean", "resid"): "mean-ablating a whole residual vector is far from linear: on SmolLM2 "
    "this estimate correlates ≈ 0 with the exact sweep — read the ranking with care",
}


def estimate_for(session, kind: str, site: str, pair) -> tuple[object | None, str, str]:
    """``(attribution, note, caveat)``: :meth:`Session.attribute` for these settings (first
    order: one request for a remote session), or ``None`` and a note saying why there is none;
    ``caveat`` says where an estimate is known to be poor (else "")."""
    from .attribution import ATTRIBUTABLE_KINDS  # torch and nnsight: only when needed

    if kind not in ATTRIBUTABLE_KINDS:
        why = {
            "knockout": "knockout removes attention edges and writes no value",
            "set": "set writes one given vector into chosen cells",
        }.get(kind, f"kind {kind!r} writes no value")
        return None, f"no estimate for {kind}: {why}; the exact sweep fills the overview", ""
    attribute = getattr(session, "attribute", None)
    if attribute is None:
        return None, "no estimate: this session offers no attribution", ""
    try:
        attr = attribute(kind, site, logit_diff=pair) if pair else attribute(kind, site)
    except Exception as exc:  # noqa: BLE001 - the overview says why, in words
        from .remote import in_words

        return None, f"no estimate: {in_words(exc)}", ""
    return attr, "", POOR.get((kind, site), "")
