/**
 * The control bar: kind, site, metric, color scale, overview metric, source prompt, transplant
 * prompt and token pair, the heads view's layer, plus sweep / cancel / clear / undo buttons. Each control writes one synced trait
 * (`model.set(name, value); model.save_changes()`); the kernel reacts to the change (new
 * intervention, new sweep). `sync()` pulls trait values back into the controls.
 *
 * All text goes through `textContent`/`value` — never HTML — so prompts and tokens cannot inject
 * markup.
 */

import { HEADS_POSITIONS, HEADS_VIEW } from "./heads";
import { ROW_VIEWS, VIEWS } from "./lecture";
import type { Model } from "./traits";

export interface ControlHandlers {
  sweep(): void;
  cancel(): void;
  clear(): void;
  /** Start or stop the row-by-row reveal of the pinned effect. */
  animate(): void;
  /** Restore the previous pinned effect (a transplant, a click, a head). */
  undo(): void;
}

export interface Controls {
  el: HTMLElement;
  /** Refresh every control from the model's traits. */
  sync(): void;
  /** The animation started or stopped: the button says which. */
  animating(on: boolean): void;
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export { h };

function select(
  label: string,
  options: [string, string][],
  title: string,
): { wrap: HTMLLabelElement; sel: HTMLSelectElement } {
  const wrap = h("label", undefined, label);
  wrap.title = title;
  const sel = h("select");
  for (const [value, text] of options) {
    const o = h("option", undefined, text);
    o.value = value;
    sel.append(o);
  }
  wrap.append(sel);
  return { wrap, sel };
}

export function makeControls(model: Model, on: ControlHandlers): Controls {
  const el = h("div", "rw-controls");
  // Keys typed in the bar are its fields' and selects' own: Lumino skips Jupyter's shortcuts for
  // events from inside it (Notebook 7's command mode would take the arrows of a focused select).
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const kind = select(
    "kind",
    [
      ["zero", "zero"],
      ["mean", "mean"],
      ["noise", "noise"],
      ["patch", "patch (from source)"],
      ["knockout", "knockout (attention edges)"],
    ],
    "What is written into the intervened cells; knockout instead stops later positions from reading the cell through attention (residual site, rows are blocks 0…L-1)",
  );
  const site = select(
    "site",
    [
      ["resid", "residual"],
      ["attn_out", "attn_out"],
      ["mlp_out", "mlp_out"],
    ],
    "Where: the residual stream itself, or what a block's attention / MLP writes into it",
  );
  const metric = select(
    "strip",
    [
      ["kl", "KL (nats)"],
      ["logprob", "Δlog p next token (nats)"],
    ],
    "Per-position metric in the output strip above the map",
  );
  const scale = select(
    "scale",
    [
      ["linear", "linear"],
      ["log", "log"],
    ],
    "Color scale of the maps",
  );
  const overview = select(
    "overview",
    [
      ["logprob_delta", "Σ Δlog p (estimate first)"],
      ["logit_diff", "logit diff (estimate first)"],
      ["total_kl", "total KL (exact only)"],
    ],
    "Summary per source cell in the overview. Σ Δlog p and logit diff show an instant first-order estimate until the sweep's exact values replace it; total KL has no estimate (its gradient at the clean run is 0)",
  );
  const view = select(
    "view",
    [...VIEWS, HEADS_VIEW],
    "Which picture: the downstream map, the first row reached per position, the future-effect profile by distance, cross-position similarity, or position vs content (corpus prompts: massive dims, energy split, cosine by distance)",
  );
  const row = h("input", "rw-row");
  row.type = "number";
  row.min = "-1";
  row.title = "Row for the profile / similarity / position-content views (-1: follow the hovered or pinned row)";
  const rowWrap = h("label", undefined, "row");
  rowWrap.title = row.title;
  rowWrap.append(row);
  row.addEventListener("change", () => {
    const v = parseInt(row.value, 10);
    model.set("view_row", Number.isFinite(v) ? v : -1);
    model.save_changes();
  });
  row.addEventListener("keydown", (ev) => ev.stopPropagation());
  const layer = h("input", "rw-heads-layer");
  layer.type = "number";
  layer.min = "-1";
  layer.title = "Layer of the heads view (-1: every layer)";
  const layerWrap = h("label", undefined, "layer");
  layerWrap.title = layer.title;
  layerWrap.append(layer);
  layer.addEventListener("change", () => {
    const v = parseInt(layer.value, 10);
    model.set("heads_layer", Number.isFinite(v) ? v : -1);
    model.save_changes();
  });
  layer.addEventListener("keydown", (ev) => ev.stopPropagation());
  const headsPos = select(
    "heads",
    HEADS_POSITIONS,
    "Heads view: each head at each position (head × position map), or each head at every position at once (one column; a click pins that head at all positions)",
  );
  headsPos.wrap.classList.add("rw-heads-positions");
  const tprompt = h("input", "rw-tprompt");
  tprompt.placeholder = "transplant from (any prompt)";
  tprompt.title =
    "A second prompt of any length to transplant cells from: its grid appears beside the map; drag a cell onto the map. Empty: transplant within this prompt. Enter to apply";
  tprompt.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      model.set("transplant_prompt", tprompt.value);
      model.save_changes();
    }
    ev.stopPropagation();
  });
  const undoBtn = h("button", "rw-undo", "↶ undo");
  undoBtn.title = "Back to the previous pinned effect (Ctrl+Z on the map)";
  undoBtn.addEventListener("click", () => on.undo());
  const source = h("input", "rw-source");
  source.placeholder = "source prompt (for patch)";
  source.title = "Source (clean) prompt whose residuals are patched in; press Enter to apply";
  const good = h("input", "rw-tok");
  good.placeholder = "good token";
  const bad = h("input", "rw-tok");
  bad.placeholder = "bad token";
  const pairWrap = h("label", undefined, "logit diff");
  pairWrap.title = "Token pair for logit(good) − logit(bad) at the last position; Enter to apply";
  pairWrap.append(good, bad);
  const sweepBtn = h("button", "rw-sweep", "Sweep");
  sweepBtn.title = "Intervene on every source cell (fills the overview progressively)";
  const cancelBtn = h("button", "rw-cancel", "Cancel");
  const clearBtn = h("button", "rw-clear", "Clear");
  clearBtn.title = "Clear the pinned selection";
  const present = h("input", "rw-present-toggle");
  present.type = "checkbox";
  const presentWrap = h("label", undefined, "present");
  presentWrap.title = "Presentation mode for projectors: larger fonts and cells";
  presentWrap.prepend(present);
  present.addEventListener("change", () => {
    model.set("presentation", present.checked);
    model.save_changes();
  });
  const palette = select(
    "colors",
    [
      ["default", "default"],
      ["contrast", "high contrast"],
    ],
    "Colors of the maps: default (viridis), or high contrast for projectors (black to pale yellow)",
  );
  const animBtn = h("button", "rw-animate", "▶ animate");
  animBtn.title = "Reveal the pinned effect row by row, from its row upward: one block at a time";
  animBtn.addEventListener("click", () => on.animate());

  const bind = (
    sel: HTMLSelectElement,
    name: "kind" | "site" | "metric" | "scale" | "overview_metric" | "view" | "palette" | "heads_positions",
  ) => {
    sel.addEventListener("change", () => {
      model.set(name, sel.value);
      model.save_changes();
    });
  };
  bind(kind.sel, "kind");
  bind(site.sel, "site");
  bind(metric.sel, "metric");
  bind(scale.sel, "scale");
  bind(overview.sel, "overview_metric");
  bind(view.sel, "view");
  bind(palette.sel, "palette");
  bind(headsPos.sel, "heads_positions");
  source.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      model.set("source_prompt", source.value);
      model.save_changes();
    }
    ev.stopPropagation(); // the field's key, no one else's
  });
  const setPair = () => {
    const pair = good.value && bad.value ? [good.value, bad.value] : [];
    model.set("logit_pair", pair);
    model.save_changes();
  };
  for (const inp of [good, bad]) {
    inp.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") setPair();
      ev.stopPropagation();
    });
  }
  sweepBtn.addEventListener("click", () => on.sweep());
  cancelBtn.addEventListener("click", () => on.cancel());
  clearBtn.addEventListener("click", () => on.clear());
  el.append(
    view.wrap,
    rowWrap,
    layerWrap,
    headsPos.wrap,
    kind.wrap,
    site.wrap,
    metric.wrap,
    scale.wrap,
    overview.wrap,
    source,
    tprompt,
    pairWrap,
    sweepBtn,
    cancelBtn,
    clearBtn,
    undoBtn,
    animBtn,
    presentWrap,
    palette.wrap,
  );

  // what needs a kernel: disabled on the saved page (its `page` trait), with the reason as title
  const needKernel: [HTMLElement & { disabled: boolean }, string][] = [
    kind.sel,
    site.sel,
    source,
    tprompt,
    undoBtn,
    good,
    bad,
    sweepBtn,
    cancelBtn,
    headsPos.sel,
  ].map((c) => [c, c.title || c.parentElement?.title || ""]);

  // A text field takes the trait's value only when the trait changed: what is being typed (in
  // this field or one not yet applied with Enter) survives the many syncs a running sweep causes.
  const synced = new Map<HTMLInputElement, string>();
  const pull = (input: HTMLInputElement, value: string) => {
    if (synced.get(input) === value) return;
    synced.set(input, value);
    input.value = value;
  };

  const sync = () => {
    const page = model.get("page") ?? null;
    el.classList.toggle("rw-nokernel", !!page);
    for (const [c, title] of needKernel) {
      c.disabled = !!page;
      c.title = page ? page.kernel : title;
    }
    kind.sel.value = model.get("kind");
    site.sel.value = model.get("site");
    metric.sel.value = model.get("metric");
    scale.sel.value = model.get("scale");
    overview.sel.value = model.get("overview_metric");
    view.sel.value = model.get("view") ?? "map";
    palette.sel.value = model.get("palette") || "default";
    present.checked = !!model.get("presentation");
    pull(row, String(model.get("view_row") ?? -1));
    const v = model.get("view");
    rowWrap.style.display = ROW_VIEWS.includes(v) ? "" : "none";
    pull(source, model.get("source_prompt") ?? "");
    pull(tprompt, model.get("transplant_prompt") ?? "");
    pull(layer, String(model.get("heads_layer") ?? -1));
    layerWrap.style.display = v === "heads" ? "" : "none";
    headsPos.sel.value = model.get("heads_positions") === "all" ? "all" : "by_pos";
    headsPos.wrap.style.display = v === "heads" ? "" : "none";
    const pair: string[] = model.get("logit_pair") ?? [];
    pull(good, pair[0] ?? "");
    pull(bad, pair[1] ?? "");
    const prog = model.get("progress") ?? {};
    const heads = model.get("heads") as { progress?: { running?: boolean } } | null | undefined;
    cancelBtn.disabled = !!page || !(prog.running || heads?.progress?.running);
    sweepBtn.disabled = !!page || !!prog.running;
  };
  const animating = (on: boolean) => {
    animBtn.textContent = on ? "■ stop" : "▶ animate";
    animBtn.classList.toggle("rw-on", on);
  };
  return { el, sync, animating };
}
