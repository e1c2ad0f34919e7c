"""A Patchscope (Ghandeharioun et al. 2024) built on :meth:`Session.transplant`.

Question: *what does the last-token residual of an entity encode, row by row?* Decode it by
letting the model itself read it out. The **inspection prompt** is a few-shot identity task
whose last example is a placeholder::

    cat -> cat; 1135 -> 1135; hello -> hello; ? ->
                                              ↑ placeholder (position t), read at t + 1

Take the entity's residual at row ``r`` in a **source prompt** (``"I saw Paris"``, last token),
transplant it into the placeholder at the same row ``r``, and read the model's top-``k`` next
tokens at the position after the placeholder. If the entity's name (its first token) is among
them, row ``r`` of that position still carries the entity in a form later rows can copy out.

Controls, computed on the same rows and target:

* ``random``: a random direction with the same norm as the entity's vector (seeded per entity
  and row): does *any* vector of that size make the name appear? (It should not.)
* ``other``: another entity's residual (entity ``i + shift``, from another category): how often
  does the *original* entity's name appear? (Never, if the readout is specific.) These are the
  very runs of the main condition for the other entity, re-read for entity ``i``'s name, so the
  control costs no extra forward pass.
* ``clean``: the inspection prompt untouched: is the name in its top-``k`` anyway?

A same-row readout that fails can mean two things: the source row no longer carries the name,
or the placeholder sits too high in the target for the blocks above it to copy anything out.
:func:`cross_row_hits` tells them apart: every source row into one fixed, early target row
(Patchscopes' cross-layer case).

Every write (each entity at each row, and the random controls) is one independent transplant;
they all target the placeholder's position, so they run as one batch through the cone
(:func:`.transplant_batch.set_many`, equal to one :meth:`Session.transplant` at a time within
float rounding) and only each run's top-``k`` at the readout is kept.

Rates are fractions of entities with 95% Wilson score intervals (:func:`wilson`). Shapes:
``hits[condition]`` ``[entities, rows]`` bool.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .lecture import Interval, _norm_ppf
from .session import Session
from .transplant import source_run
from .transplant_batch import set_many

IDENTITY_PROMPT = "cat -> cat; 1135 -> 1135; hello -> hello; ? ->"
PLACEHOLDER = " ?"
SOURCE_TEMPLATE = "I saw {}"


def wilson(k, n: int, conf: float = 0.95) -> Interval:
    """Wilson score interval of the proportion ``k / n`` (``k`` a count or an array of counts)."""
    k = np.asarray(k, dtype=np.float64)
    z = _norm_ppf(0.5 + conf / 2)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(
        mean=p, lo=np.maximum(center - half, 0.0), hi=np.minimum(center + half, 1.0), n=n, conf=conf
    )


@dataclass
class PatchscopeResult:
    """Hits ``[entities, rows]`` per condition (``"entity"``, ``"other"``; ``"random"`` is
    ``[entities, random_rows]``), the clean baseline ``[entities]``, and the main condition's
    top-``k`` strings ``[entities][rows]``."""

    entities: list[str]
    rows: list[int]
    hits: dict[str, np.ndarray]
    clean: np.ndarray
    top: list[list[list[str]]] = field(repr=False)
    random_rows: list[int] = field(default_factory=list)
    other_of: list[int] = field(default_factory=list)  # the entity each 'other' run came from

    def rate(self, condition: str) -> Interval:
        """Fraction of entities hit at each row, with 95% Wilson intervals."""
        h = self.hits[condition]
        return wilson(h.sum(0), h.shape[0])

    def peak_row(self, condition: str = "entity") -> int:
        """The row with the highest hit rate (the lowest such row on ties)."""
        return self.rows[int(np.argmax(self.hits[condition].mean(0)))]


def first_token(model, word: str) -> int:
    """The first token id of ``word`` (as it appears after a space)."""
    return int(model.tokenizer(" " + word, add_special_tokens=False)["input_ids"][0])


def top_k_at(sess: Session, resid: torch.Tensor, pos: int, k: int) -> list[int]:
    """Top-``k`` next-token ids read at ``pos`` from a residual ``[L + 1, P, d]`` (final row)."""
    lm = sess.model
    with sess.lock, torch.no_grad():
        logits = lm.unembed(resid[lm.n_layers, pos].to(lm.device)).float()
    return [int(i) for i in torch.topk(logits, k).indices]


def _top_k_reader(pos: int, k: int):
    """``reduce`` for :func:`.transplant_batch.set_many`: a run's top-``k`` next-token ids at
    ``pos`` (from its logits ``[P, V]``); the run itself is not kept."""

    def read(j, run) -> list[int]:
        return [int(x) for x in torch.topk(run.logits[pos].float(), k).indices]

    return read


def inspection_session(model, target: str = IDENTITY_PROMPT, placeholder: str = PLACEHOLDER):
    """``(session, t, read)``: a Session on the inspection prompt, the placeholder's position
    ``t`` (its last occurrence) and the position read out, ``t + 1``."""
    sess = Session(model, target)
    ph = model.tokenizer(placeholder, add_special_tokens=False)["input_ids"]
    if len(ph) != 1 or ph[0] not in sess.ids:
        raise ValueError(f"the placeholder {placeholder!r} must be one token of the target prompt")
    t = len(sess.ids) - 1 - sess.ids[::-1].index(ph[0])
    if t + 1 >= sess.n_positions:
        raise ValueError("the target prompt must continue after the placeholder (e.g. ' ->')")
    return sess, t, t + 1


def cross_row_hits(
    model,
    entities: list[str],
    source_rows,
    target_row: int,
    *,
    target: str = IDENTITY_PROMPT,
    placeholder: str = PLACEHOLDER,
    template: str = SOURCE_TEMPLATE,
    k: int = 5,
) -> np.ndarray:
    """Patchscopes' cross-layer case: each entity's residual at every row in ``source_rows``,
    written into the placeholder at one fixed ``target_row``. Bool ``[entities, source_rows]``:
    the name in the top-``k``. Separates "the source no longer carries the name" from "the
    target has too few blocks left above the placeholder to copy it out"."""
    sess, t, read = inspection_session(model, target, placeholder)
    rows = list(source_rows)
    values = []
    for e in entities:  # each entity's last-token residual at every source row
        src_ids = sess._tokenize(template.format(e), "source prompt")
        resid = source_run(sess, src_ids).resid  # [L + 1, P_src, d], cached
        values += [resid[r, len(src_ids) - 1] for r in rows]
    cells = [(target_row, t)] * len(values)
    tops = set_many(sess, cells, torch.stack(values), reduce=_top_k_reader(read, k))
    names = [first_token(model, e) for e in entities]
    hit = [names[j // len(rows)] in top for j, top in enumerate(tops)]
    return np.array(hit, bool).reshape(len(entities), len(rows))


def run_patchscope(
    model,
    entities: list[str],
    *,
    rows=None,
    random_rows=None,
    target: str = IDENTITY_PROMPT,
    placeholder: str = PLACEHOLDER,
    template: str = SOURCE_TEMPLATE,
    k: int = 5,
    shift: int | None = None,
    seed: int = 0,
) -> PatchscopeResult:
    """Transplant each entity's last-token residual at every row in ``rows`` (default all) into
    the placeholder of ``target`` at the same row, and read the top-``k`` at the next position.
    The random-vector control runs on ``random_rows`` (default: ``rows``; a subset saves time).
    ``shift`` picks the ``other`` control's entity (``i + shift``; default half the list, so a
    list ordered by category pairs each entity with another category)."""
    sess, t, read = inspection_session(model, target, placeholder)
    rows = list(range(sess.n_rows)) if rows is None else list(rows)
    random_rows = rows if random_rows is None else list(random_rows)
    n = len(entities)
    shift = n // 2 if shift is None else shift
    names = [first_token(model, e) for e in entities]
    clean_top = set(top_k_at(sess, sess.clean.resid, read, k))
    hits = {c: np.zeros((n, len(rows)), bool) for c in ("entity", "other")}
    hits["random"] = np.zeros((n, len(random_rows)), bool)
    cells, values = [], []  # every write of every entity, stepped as one batch (all at t)
    for i, e in enumerate(entities):
        src_ids = sess._tokenize(template.format(e), "source prompt")
        s = len(src_ids) - 1
        resid = source_run(sess, src_ids).resid  # [L + 1, P_src, d], cached
        for r in rows:
            cells.append((r, t))
            values.append(resid[r, s])
        for r in random_rows:
            g = torch.Generator().manual_seed(int(seed) * 1_000_003 + i * 1009 + r)
            v = torch.randn(resid.shape[-1], generator=g)
            cells.append((r, t))
            values.append(v * (resid[r, s].norm() / v.norm()))  # a random direction, its norm
    top_all = set_many(sess, cells, torch.stack(values), reduce=_top_k_reader(read, k))
    per = len(rows) + len(random_rows)
    tops = [top_all[i * per : i * per + len(rows)] for i in range(n)]
    for i in range(n):
        hits["entity"][i] = [names[i] in top for top in tops[i]]
        rand = top_all[i * per + len(rows) : (i + 1) * per]
        hits["random"][i] = [names[i] in top for top in rand]
    other_of = [(i + shift) % n for i in range(n)]
    for i, j in enumerate(other_of):
        hits["other"][i] = [names[i] in tops[j][a] for a in range(len(rows))]
    decode = model.tokenizer.decode
    return PatchscopeResult(
        entities=list(entities),
        rows=rows,
        hits=hits,
        clean=np.array([nm in clean_top for nm in names]),
        top=[[[decode([x]) for x in row] for row in ent] for ent in tops],
        other_of=other_of,
        random_rows=random_rows,
    )


def describe(res: PatchscopeResult) -> str:
    """One line per row: each condition's rate with its 95% interval (``random`` where run)."""
    rates = {c: res.rate(c) for c in res.hits}
    at = {"entity": res.rows, "other": res.rows, "random": res.random_rows}
    lines = []
    for r in res.rows:
        cells = "  ".join(
            f"{c} {iv.mean[at[c].index(r)]:.2f} [{iv.lo[at[c].index(r)]:.2f}, "
            f"{iv.hi[at[c].index(r)]:.2f}]"
            for c, iv in rates.items()
            if r in at[c]
        )
        lines.append(f"row {r:>2}: {cells}")
    return "\n".join(lines)
