// What the batches table and a batch's page both show: progress, ETA, status.
import { duration, h } from "./dom.js";

export const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);
export const STATUSES = [
  "validating",
  "in_progress",
  "finalizing",
  "completed",
  "failed",
  "expired",
  "cancelling",
  "cancelled",
];
export const REFRESH_MS = 2000;

export function done(batch) {
  const counts = batch.request_counts;
  return counts ? counts.completed + counts.failed : 0;
}

export function percent(batch) {
  const counts = batch.request_counts;
  if (batch.status === "completed") return 100;
  if (!counts || !counts.total) return 0;
  return Math.floor((100 * done(batch)) / counts.total);
}

export function progress(batch) {
  const counts = batch.request_counts || { completed: 0, failed: 0, total: 0 };
  const value = percent(batch);
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: 100, value, "aria-label": `Progress of ${batch.id}`, "data-percent": value }),
    h("span", { class: "progress-text" }, `${value} % (${done(batch)} / ${counts.total})`),
  );
}

// From the rate so far: requests done since the batch started, per second, over what is left.
export function eta(batch, now = Date.now() / 1000) {
  if (TERMINAL.has(batch.status)) return "—";
  const counts = batch.request_counts;
  const started = batch.in_progress_at;
  if (!counts || !counts.total || !started || done(batch) === 0) return "—";
  const rate = done(batch) / Math.max(1, now - started);
  return duration((counts.total - done(batch)) / rate);
}
