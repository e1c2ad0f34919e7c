/**
 * The tooltip: where it shows (beside the pointer, inside the widget) and what it says — cell
 * header, token (whitespace made visible), value, and the logit-lens top-k of that cell (clean and
 * under the pinned intervention, from lens.ts) as a small table, refilled when the lens arrives.
 * Built with `textContent` only: token strings come from the model and are never HTML.
 */

import { h } from "./controls";
import { type Cell, showToken } from "./heatmap";
import { type Lens, LensCache, lensKey } from "./lens";

/** What a tooltip says; `lensCell`: the cell whose logit lens to show (null: none). */
export interface TipText {
  head: string;
  token: string;
  value: string;
  lensCell: Cell | null;
}

export interface Tooltip {
  /** Show `text` beside the pointer; `effectId`: the effect shown (its lens is asked). */
  show(ev: MouseEvent, text: TipText, effectId: string | null): void;
  hide(): void;
  /** A lens reply from the kernel: refill the tooltip if it waits for it. */
  lensReply(msg: Record<string, unknown>): void;
}

/** The tooltip `tip` inside `root`; `ask` sends a lens request for a cell to the kernel. */
export function makeTooltip(tip: HTMLElement, root: HTMLElement, ask: (cell: Cell, key: string) => void): Tooltip {
  const lens = new LensCache(ask);
  let showing: { key: string; fill: () => void } | null = null;
  return {
    show(ev, text, effectId) {
      const rr = root.getBoundingClientRect();
      const x = ev.clientX - rr.left + 14;
      const y = ev.clientY - rr.top + 14;
      const cell = text.lensCell;
      const key = cell ? lensKey(effectId, cell) : "";
      const fill = () => {
        fillTooltip(tip, text.head, text.token, text.value, cell ? (lens.get(key) ?? "pending") : null);
        tip.style.display = "block";
        tip.style.left = `${Math.min(x, (root.clientWidth || 600) - 200)}px`;
        tip.style.top = `${y}px`;
      };
      showing = { key, fill };
      fill();
      if (cell) lens.want(key, cell);
    },
    hide() {
      tip.style.display = "none";
      showing = null;
      lens.cancel();
    },
    lensReply(msg) {
      const key = lens.store(msg);
      if (showing && showing.key === key) showing.fill();
    },
  };
}

/** Replace `tip`'s content. `lens`: the lens reply, "pending" while asked, null for none. */
export function fillTooltip(
  tip: HTMLElement,
  head: string,
  token: string,
  value: string,
  lens: Lens | "pending" | null,
): void {
  tip.replaceChildren();
  tip.append(
    h("div", "rw-tt-head", head),
    h("div", "rw-tt-tok", `token ${JSON.stringify(showToken(token))}`),
    h("div", undefined, value),
  );
  if (lens === null) return;
  if (lens === "pending") {
    tip.append(h("div", "rw-sub", "logit lens: asking the kernel…"));
    return;
  }
  if (!lens.clean.length) {
    tip.append(h("div", "rw-sub", lens.note ?? "logit lens: none"));
    return;
  }
  const t = h("table");
  const hr = h("tr");
  hr.append(
    h("th", undefined, "lens clean"),
    h("th", undefined, ""),
    h("th", undefined, lens.intervened ? "intervened" : ""),
    h("th", undefined, ""),
  );
  t.append(hr);
  for (let k = 0; k < lens.clean.length; k++) {
    const tr = h("tr");
    const a = lens.clean[k];
    const b = lens.intervened?.[k];
    tr.append(
      h("td", undefined, JSON.stringify(showToken(a[0]))),
      h("td", undefined, a[1].toFixed(3)),
      h("td", undefined, b ? JSON.stringify(showToken(b[0])) : ""),
      h("td", undefined, b ? b[1].toFixed(3) : ""),
    );
    t.append(tr);
  }
  tip.append(t);
  if (lens.note) tip.append(h("div", "rw-sub", lens.note));
}
