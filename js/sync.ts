/**
 * The synced model → this view: the header and progress line, the decoded payloads (a stale
 * intervene reply is dropped: see `Requests` in protocol.ts), kernel errors, the kernel's custom
 * messages (acks, request errors, logit-lens replies) and disconnection, in words.
 */

import { decodeMaybe } from "./codec";
import type { Controls } from "./controls";
import { type Dom, HELP, PAGE_HELP, type Say, showing } from "./dom";
import { decodeEstimate } from "./estimate";
import { decodeHeads, headCells } from "./heads";
import { decodeFirstReached, decodePositionContent, decodeProfile, decodeSimilarity } from "./lecture";
import { decodeAtlas, decodeEffect, slowPathNote, storageNote } from "./mapstate";
import type { Local, Painter } from "./painter";
import { type Requests, watchKernel } from "./protocol";
import type { Tooltip } from "./tooltip";
import type { Model, Reads } from "./traits";
import { decodeSource, pinInfo } from "./transplant";

export interface SyncDeps {
  m: Model;
  t: Reads;
  dom: Dom;
  local: Local;
  painter: Painter;
  req: Requests;
  say: Say;
  controls: Controls;
  tip: Tooltip;
}

type Msg = { type?: string; id?: string; [k: string]: unknown };

const HEADER = [
  "status",
  "remote_status",
  "progress",
  "prompt",
  "model_name",
  "kind",
  "source_prompt",
  "logit_pair",
  "page",
  "transplant_prompt",
];
const REDRAW = [
  "metric",
  "scale",
  "overview_metric",
  "tokens",
  "n_rows",
  "site",
  "view",
  "view_row",
  "presentation",
  "palette",
  "heads_layer",
  "heads_positions",
];

/** Load the model's current state, paint, and follow its changes; `dispose` stops following. */
export function syncModel({ m, t, dom, local, painter, req, say, controls, tip }: SyncDeps) {
  const { header, progress, message } = dom;
  function syncHeader() {
    header.prompt.textContent = m.get("prompt") ?? "";
    const st = m.get("remote_status") || m.get("status") || "idle";
    const slow = slowPathNote(local.atlas);
    header.status.textContent = `${m.get("model_name") ?? ""} · ${t.rows()} rows × ${t.cols()} positions · ${st}${slow}`;
    header.status.classList.toggle("rw-slow", slow !== "");
    const p = m.get("progress") ?? {};
    const total = p.total || 0;
    progress.bar.max = Math.max(1, total);
    progress.bar.value = p.done || 0;
    const state = p.running ? "" : p.cancelled ? " (cancelled)" : "";
    const page = t.page();
    const kept = page ? "" : storageNote(local.atlas); // the saved page says it in its note
    progress.text.textContent = total ? `sweep ${p.done}/${total}${state}${kept}` : "";
    dom.note.style.display = page ? "" : "none";
    dom.note.textContent = page ? `Saved page, no kernel. ${page.note} ${page.kernel}` : "";
    dom.help.textContent = page ? PAGE_HELP : HELP;
    controls.sync();
  }
  const onEffect = () => {
    const raw = m.get("effect");
    const id = raw?.id;
    if (raw && !req.accept("intervene", id)) return; // stale reply: a newer click is pending
    req.settle("intervene", id);
    local.effect = decodeEffect(raw);
    local.firstReached = decodeFirstReached(raw);
    local.hand.pin = pinInfo(raw);
    local.hand.undo = Number(raw?.undo) || 0;
    local.heads.pinned = headCells(raw) ?? [];
    if (showing(message, "warn")) say("", "");
    painter.draw();
  };
  const onAtlas = () => {
    local.atlas = decodeAtlas(m.get("atlas"));
    syncHeader();
    painter.layout();
    painter.draw();
  };
  const onError = () => {
    const e = m.get("error");
    if (e) say("error", e);
    else if (showing(message, "error")) say("", "");
  };
  const onMsg = (msg: Msg) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "ack" && msg.id) {
      req.ack(msg.id);
      if (showing(message, "warn")) say("", "");
    } else if (msg.type === "error") {
      const type = (msg.request as string) || "intervene";
      if (msg.id && !req.accept(type, msg.id)) return;
      req.settle(type, msg.id);
      say("error", String(msg.message ?? "error in the kernel"));
    } else if (msg.type === "lens") {
      req.settle("lens", msg.id);
      tip.lensReply(msg);
    }
  };
  const onDead = () =>
    say(
      "error",
      "The kernel connection is closed (kernel dead or restarted). The view is frozen; re-run the cell to reconnect.",
    );
  const look = () => {
    dom.root.classList.toggle("rw-present", !!m.get("presentation"));
    dom.root.classList.toggle("rw-contrast", m.get("palette") === "contrast");
  };
  const onRedraw = () => {
    look();
    syncHeader();
    painter.draw();
  };
  const onProfile = () => {
    local.profile = decodeProfile(m.get("profile"));
    painter.draw();
  };
  const onSimil = () => {
    local.simil = decodeSimilarity(m.get("similarity"));
    painter.draw();
  };
  const onPosCon = () => {
    local.poscon = decodePositionContent(m.get("position_content"));
    painter.draw();
  };
  const onEstimate = () => {
    local.estimate = decodeEstimate(m.get("estimate"));
    painter.draw();
  };
  const onHeads = () => {
    local.heads.data = decodeHeads(m.get("heads"));
    controls.sync(); // Cancel also stops the head sweep
    painter.draw();
  };
  const onSource = () => {
    local.hand.source = decodeSource(m.get("transplant_source"), decodeMaybe);
    painter.draw();
  };
  const kernel = watchKernel(m, (text) => say("error", text));

  const listeners: [string, (msg: Msg) => void][] = [
    ["change:effect", onEffect],
    ["change:atlas", onAtlas],
    ["change:error", onError],
    ["msg:custom", onMsg],
    ["comm_live_update", onDead],
    ["change:profile", onProfile],
    ["change:similarity", onSimil],
    ["change:position_content", onPosCon],
    ["change:estimate", onEstimate],
    ["change:heads", onHeads],
    ["change:transplant_source", onSource],
    ...HEADER.map((name): [string, () => void] => [`change:${name}`, syncHeader]),
    ...REDRAW.map((name): [string, () => void] => [`change:${name}`, onRedraw]),
  ];
  for (const [name, fn] of listeners) m.on(name, fn);

  local.effect = decodeEffect(m.get("effect"));
  local.firstReached = decodeFirstReached(m.get("effect"));
  local.profile = decodeProfile(m.get("profile"));
  local.simil = decodeSimilarity(m.get("similarity"));
  local.poscon = decodePositionContent(m.get("position_content"));
  local.atlas = decodeAtlas(m.get("atlas"));
  local.estimate = decodeEstimate(m.get("estimate"));
  local.hand.pin = pinInfo(m.get("effect"));
  local.heads.pinned = headCells(m.get("effect")) ?? [];
  local.heads.data = decodeHeads(m.get("heads"));
  local.hand.source = decodeSource(m.get("transplant_source"), decodeMaybe);
  look();
  syncHeader();
  onError();
  painter.layout();
  painter.draw();

  return {
    kernelStatus: kernel.status,
    dispose() {
      for (const [name, fn] of listeners) m.off(name, fn);
      kernel.dispose();
    },
  };
}
