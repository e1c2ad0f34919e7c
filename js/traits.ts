/**
 * The synced traits (declared in `src/residual_widgets/widget.py`), typed, and the few derived
 * reads every part of the front end needs (rows, positions, site, the pinned selection).
 */

import type { AnyModel } from "@anywidget/types";
import type { Payload } from "./codec";
import type { Cell, Site } from "./heatmap";

export type Traits = {
  prompt: string;
  source_prompt: string;
  model_name: string;
  tokens: string[];
  n_rows: number;
  kind: string;
  site: string;
  /** strip metric: "kl" | "logprob" */
  metric: string;
  /** "linear" | "log" */
  scale: string;
  /** "logprob_delta" | "logit_diff" | "total_kl" (exact only; see estimate.ts) */
  overview_metric: string;
  /** [] or [good, bad] */
  logit_pair: string[];
  selection: number[][];
  effect: Payload | null;
  atlas: Payload | null;
  /** The instant overview: attribution-patching estimate of every source cell (estimate.ts). */
  estimate?: Payload | null;
  progress: { done?: number; total?: number; running?: boolean; cancelled?: boolean };
  status: string;
  remote_status: string;
  error: string;
  /** "map" | "first_reached" | "profile" | "similarity" | "heads" */
  view: string;
  /** -1: follow the hovered / pinned row */
  view_row: number;
  profile: Payload | null;
  similarity: Payload | null;
  /** The position-vs-content decomposition over corpus prompts (lecture.ts), or null. */
  position_content?: Payload | null;
  /** The transplant prompt (any length; "" none): its grid is shown beside the map to drag
   * source cells from. Separate from `source_prompt`, which must match the prompt's length. */
  transplant_prompt?: string;
  /** `{prompt, tokens, norm: f32[R, Ps]}` of the transplant prompt, or null (transplant.ts). */
  transplant_source?: Payload | null;
  /** The head sweep of the heads view (heads.ts), or null. */
  heads?: Payload | null;
  /** The heads view's layer: -1 every layer. */
  heads_layer?: number;
  /** The heads view's sweep: "by_pos" (each head at each position) | "all" (at every position). */
  heads_positions?: string;
  /** Presentation mode (projectors): larger fonts and cells. */
  presentation: boolean;
  /** "default" | "contrast" (high-contrast colors for projectors) */
  palette: string;
  /** Set only by the saved page's host (page.ts), never by the kernel: there is no kernel.
   * `note`: what the page holds; `kernel`: what would need one (the disabled controls say it). */
  page?: PageInfo | null;
};

export interface PageInfo {
  note: string;
  kernel: string;
}

export type Model = AnyModel<Traits>;

export interface Reads {
  rows(): number;
  cols(): number;
  tokens(): string[];
  site(): Site;
  view(): string;
  /** The pinned cells, as synced. */
  selection(): Cell[];
  /** The saved page's facts (no kernel), or null in a notebook. */
  page(): PageInfo | null;
}

export function reads(m: Model): Reads {
  const tokens = () => m.get("tokens") ?? [];
  return {
    rows: () => m.get("n_rows") || 0,
    cols: () => tokens().length,
    tokens,
    site: () => (m.get("site") || "resid") as Site,
    view: () => m.get("view") || "map",
    selection: () => (m.get("selection") ?? []).map((c) => [c[0], c[1]] as Cell),
    page: () => m.get("page") ?? null,
  };
}
