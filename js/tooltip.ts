/**
 * Tooltip content: cell header, token (whitespace made visible), value, and the logit-lens
 * top-k of that cell — clean and under the pinned intervention — as a small table.
 * Built with `textContent` only: token strings come from the model and are never HTML.
 */

import { h } from "./controls";
import { showToken } from "./heatmap";

export interface Lens {
  clean: [string, number][];
  intervened: [string, number][] | null;
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
}
