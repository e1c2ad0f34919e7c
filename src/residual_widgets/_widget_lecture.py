"""The widget's lecture views: what changing ``view`` computes, and when (routing only).

==================== ==========================================================================
``view``             what fills in (computed by the engine, sent by :mod:`._payloads`)
==================== ==========================================================================
``map``              nothing more (the pinned map and the overview are always there)
``first_reached``    nothing more: ``effect["first_reached"]`` travels with every pinned effect
``profile``          ``profile``: :func:`views.future_profile` of the atlas, again whenever the
                     atlas changes while the view shows (:func:`send_profile`)
``similarity``       ``similarity``: :func:`views.similarity` of the clean run, once a session
``position_content`` ``position_content``: :func:`lecture.position_content_for` the session,
                     on the job worker (≈ 13 s on SmolLM2), once a session
``heads``            the head sweep (:mod:`._widget_heads`), on its own thread
==================== ==========================================================================

An unknown view or palette is refused in words (``error`` trait); a bad palette is put back.
"""

from __future__ import annotations

from . import _payloads

VIEWS = ("map", "first_reached", "profile", "similarity", "position_content", "heads")
#: color palettes: "default" (viridis / RdBu), "contrast" (inferno / strong RdBu, black on white)
PALETTES = ("default", "contrast")


def on_view(w, change) -> None:
    """``view`` changed (from either side): start what the new view needs."""
    if change["new"] not in VIEWS:
        w._fail(
            "view",
            None,
            ValueError(f"unknown view {change['new']!r}; choose one of {', '.join(VIEWS)}"),
        )
        return
    try:
        if change["new"] == "similarity" and w.similarity is None:
            send_similarity(w)
        elif change["new"] == "position_content" and w.position_content is None:
            w._submit("position_content", w._next_py_id(), None)  # on the worker
        elif change["new"] == "profile":
            send_profile(w)
        elif change["new"] == "heads":
            w._heads.show()
    except Exception as exc:  # noqa: BLE001 - a failed view is reported to the user in words
        w._fail("view", None, exc)


def on_palette(w, change) -> None:
    if change["new"] not in PALETTES:
        w._fail(
            "palette",
            None,
            ValueError(f"unknown palette {change['new']!r}; choose one of {', '.join(PALETTES)}"),
        )
        w.palette = change["old"] if change["old"] in PALETTES else "default"


def send_similarity(w) -> None:
    w.similarity = _payloads.similarity_payload(w.session)


def do_position_content(w) -> None:
    """Job worker: the position/content decomposition of ``w``'s session (once: a second
    request while the first computes finds it done)."""
    from . import lecture

    sess = w.session
    if w.current_position_content is not None:  # asked twice while computing: done
        return
    pc = lecture.position_content_for(sess)
    if sess is w.session:  # not rebuilt meanwhile
        w.current_position_content = pc
        w.position_content = _payloads.position_content_payload(pc)


def send_profile(w) -> None:
    atlas = w.current_atlas
    w.profile = None if atlas is None else _payloads.profile_payload(atlas)
