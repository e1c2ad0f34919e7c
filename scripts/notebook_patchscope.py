"""The cells of examples/patchscope.ipynb (imported by make_notebooks.py, which writes it).

A Patchscope on SmolLM2-135M with :meth:`Session.transplant`: each entity's last-token residual,
row by row, into the placeholder of a few-shot identity prompt; how often the model then names
the entity, against a random vector of the same norm and another entity's residual.
"""

SETUP = """import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import residual_widgets as rw"""

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# A Patchscope: what does an entity's residual still say, row by row?

`Session.transplant(source, source_cell, target_cell)` copies one cell of *any* prompt's run into
*any* cell of this prompt (other length, other position, other row) and recomputes everything
downstream. A **Patchscope** (Ghandeharioun et al. 2024) uses that to decode a hidden state with
the model itself: put it where a prompt makes the model *repeat* whatever sits there.

* **Source:** `"I saw Paris"` — the residual of the last token (` Paris`) at row `r`.
* **Target (inspection prompt):** `"cat -> cat; 1135 -> 1135; hello -> hello; ? ->"` — the
  source vector replaces the placeholder ` ?` at the same row `r`; we read the model's top-5
  next tokens at the position after it (` ->`), where the pattern asks for a copy.
* **Hit:** the entity's name (its first token, ` Paris`) is among those 5.

**The skeptic:** (1) a vector of that *size* may be enough to derail the prompt into anything,
so a **random direction with the same norm** must not produce the name; (2) the readout may echo
something generic, so **another entity's residual** (from another category) must not produce the
*original* entity's name; (3) the clean inspection prompt must not say the name by itself;
(4) where the readout fails, is the name gone from the source, or is the placeholder simply too
high in the target for the blocks above it to copy it out? **Cross-row:** write each source row
into the placeholder at one early row (8) instead. 20 entities in 4 categories; rates are
fractions of entities with 95% Wilson intervals.""",
    ),
    (
        "code",
        SETUP
        + """
from residual_widgets import lecture_patchscope as ps
model = rw.load_model("smollm2-135m")
entities = ["cat", "dog", "horse", "lion", "tiger",                         # animals
            "Paris", "London", "Tokyo", "Berlin", "Rome",                     # cities
            "Einstein", "Newton", "Shakespeare", "Napoleon", "Mozart",        # people
            "apple", "banana", "guitar", "piano", "river"]                    # things
# each is one token after a space, so "the name" is unambiguous
assert all(len(model.tokenizer(" " + e, add_special_tokens=False)["input_ids"]) == 1
           for e in entities)
rows = list(range(31))                        # every row (0 = embeddings, 30 = top)
# 20 entities x (31 rows + 4 random rows) = 700 transplants, all into the placeholder's position:
# they run as one batch through the cone (the engine of Session.transplant_many), in seconds
res = ps.run_patchscope(model, entities, rows=rows, random_rows=[0, 8, 16, 24])
print(ps.describe(res))
print("clean inspection prompt names the entity:", int(res.clean.sum()), "of", len(entities))""",
    ),
    (
        "code",
        """one, t, read = ps.inspection_session(model)
print(one.token_strings, "placeholder at", t)
eff = one.transplant("I saw Paris", (8, 2), (8, t))     # row 8 of ' Paris' into ' ?' at row 8
print("kind", eff.kind, "cells", eff.cells, "| top-5 after the placeholder:",
      [w for w, _ in one.logit_lens((30, read), k=5, effect=eff)])
print("clean top-5:", [w for w, _ in one.logit_lens((30, read), k=5)])""",
    ),
    (
        "code",
        """cross_rows = [16, 20, 22, 24, 26, 30]
cross = ps.cross_row_hits(model, entities, cross_rows, target_row=8)   # [entities, rows]
cross_iv = ps.wilson(cross.sum(0), len(entities))
same = res.rate("entity")
for a, r in enumerate(cross_rows):
    print(f"source row {r:>2}: into row 8 {cross_iv.mean[a]:.2f} "
          f"[{cross_iv.lo[a]:.2f}, {cross_iv.hi[a]:.2f}]"
          f"   same row {same.mean[rows.index(r)]:.2f}")""",
    ),
    (
        "code",
        """from residual_widgets.lecture import interval_figure
curves = {"own residual, same row": res.rate("entity"),
          "another entity's residual (original name shown)": res.rate("other")}
fig = interval_figure(rows, curves, title="Patchscope on SmolLM2-135M: entity name in top-5",
                      xaxis="source row", yaxis="fraction of 20 entities")
extra = [("own residual, into target row 8", cross_rows, cross_iv, "lines+markers"),
         ("random vector, same norm", res.random_rows, res.rate("random"), "markers")]
for name, x, iv, mode in extra:
    fig.add_scatter(x=x, y=iv.mean, mode=mode, name=name,
                    error_y=dict(type="data", symmetric=False, array=iv.hi - iv.mean,
                                 arrayminus=iv.mean - iv.lo))
fig.update_layout(height=420, width=780)""",
    ),
    (
        "code",
        """own, other, rnd = res.rate("entity"), res.rate("other"), res.rate("random")
peak = res.peak_row()
plateau = [r for a, r in enumerate(rows) if own.mean[a] == own.mean.max()]
print("peak rate", own.mean.max(), "at rows", plateau, "| first peak row:", peak,
      "| last row with >= half named:", max(r for a, r in enumerate(rows) if own.mean[a] >= 0.5))
print("controls: random max", rnd.mean.max(), "upper bound", round(float(rnd.hi.max()), 3),
      "| other entity max", other.mean.max(), "upper bound", round(float(other.hi.max()), 3))
a = rows.index(16)
print("row 16, top-3:", {entities[i]: res.top[i][a][:3] for i in range(0, len(entities), 5)})""",
    ),
    (
        "md",
        """**Reading it.** Row 0 is the token embedding, so naming it is a lookup, not a finding.
What matters is how long the name stays readable as the rows add context. With the same row in
source and target, every entity is named through row 16 of 30; then the rate collapses within
a few rows (19 of 20 at row 17, 18 at rows 18–19, about half at row 20, 3 at rows 21–22, one at
row 23, none from row 24). Neither control ever produces the name:
not a random direction of the same size, and not another entity's state (which makes the model
name *that* entity instead). The cross-row readout shows the collapse is mostly **the
target's**, not the source's: the states of rows 20–24, which fail at their own row, are named
for every entity when written into row 8 of the placeholder. The name is still there; a
placeholder high in the network just has too few blocks above it to be copied to the next
position. Only the last rows (26–30) lose it for both readouts: there the last-token state of
`"I saw Paris"` is turning into a prediction of what comes *after* it.

## What this does not show

* *What* about the entity is encoded (attributes, relations): the identity prompt decodes the
  name only, and only its first token; top-5 is coarse and says nothing of confidence.
* That the name is absent where both readouts fail: a third readout (another target row or
  prompt, or a learned mapping) might still find it. A late state written into row 8 is also
  off its usual distribution; it is read out anyway, which is the point, not a guarantee.
* Generality: 20 single-token entities in one source frame (`"I saw {}"`), one inspection
  prompt, one model. A source at position 0 (the entity alone) fails above row 0 here: SmolLM2's
  first position is an attention sink with outsized activations, not a word.""",
    ),
    (
        "code",
        """# the claims, checked on 95% Wilson intervals over 20 entities
assert res.clean.sum() == 0                                  # the prompt alone never names them
early = [a for a, r in enumerate(rows) if r <= 16]
late = [a for a, r in enumerate(rows) if r >= 24]
assert (own.lo[early] > 0.75).all()                          # rows 0-16: named reliably
assert own.mean[late].max() < 0.2                            # the same-row readout fades at the top
assert rnd.hi.max() < 0.25 and other.hi.max() < 0.25         # controls: ~0 at every row
assert (own.lo[early] > max(rnd.hi.max(), other.hi.max())).all()  # separated, not overlapping
at24 = cross_rows.index(24)
assert cross_iv.lo[at24] > own.hi[rows.index(24)]            # row 24 still carries the name
assert cross_iv.mean[cross_rows.index(30)] < cross_iv.mean[at24]   # and the top row less so""",
    ),
]
