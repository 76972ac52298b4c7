// A batch's page: timeline, counts, usage and cost, metadata, errors, parts; cancel and
// downloads. Refreshes itself until the batch has ended.
import { api, download, v1 } from "./api.js";
import { eta, progress, REFRESH_MS, TERMINAL } from "./batch_view.js";
import { announce, errorBox, facts, h, replace, time, usd } from "./dom.js";

const TIMELINE = [
  ["Created", "created_at"],
  ["In progress", "in_progress_at"],
  ["Finalizing", "finalizing_at"],
  ["Cancelling", "cancelling_at"],
  ["Completed", "completed_at"],
  ["Failed", "failed_at"],
  ["Expired", "expired_at"],
  ["Cancelled", "cancelled_at"],
];
const OPTIONAL_STEPS = new Set(["cancelling_at", "failed_at", "expired_at", "cancelled_at", "completed_at"]);

export async function renderBatch(main, page, batchId) {
  const body = h("div", { id: "batch-page" });
  replace(main, h("p", {}, h("a", { href: "#/batches" }, "← All batches")), h("h1", { class: "id" }, batchId), body);

  async function load() {
    if (!page.current()) return;
    let batch;
    try {
      batch = await api(v1(`batches/${encodeURIComponent(batchId)}`));
    } catch (error) {
      replace(body, errorBox(error));
      return;
    }
    if (!page.current()) return;
    replace(body, ...view(batch, load));
    if (!TERMINAL.has(batch.status)) page.later(REFRESH_MS, load);
  }
  await load();
}

function view(batch, reload) {
  const counts = batch.request_counts || { total: 0, completed: 0, failed: 0 };
  return [
    h("p", {}, "Status: ", h("strong", { id: "batch-status" }, batch.status), " ", progress(batch)),
    actions(batch, reload),
    h("h2", {}, "Timeline"),
    h(
      "ol",
      { class: "timeline" },
      TIMELINE.filter(([, field]) => batch[field] || !OPTIONAL_STEPS.has(field)).map(([label, field]) =>
        h("li", { class: batch[field] ? "reached" : "pending" }, h("span", {}, label), ": ", time(batch[field])),
      ),
    ),
    h("h2", {}, "Requests"),
    facts([
      ["Total", counts.total],
      ["Completed", counts.completed],
      ["Failed", counts.failed],
      ["ETA", eta(batch)],
      ["Endpoint", batch.endpoint],
      ["Provider", batch.provider || "—"],
      ["Model", batch.model || "—"],
      ["Input file", h("span", { class: "id" }, batch.input_file_id)],
      ["Expires", time(batch.expires_at)],
    ]),
    h("h2", {}, "Usage and cost"),
    facts([
      ["Input tokens", batch.usage ? batch.usage.input_tokens ?? "—" : "—"],
      ["Output tokens", batch.usage ? batch.usage.output_tokens ?? "—" : "—"],
      ["Cost", batch.cost ? `${usd(batch.cost.total)} (input ${usd(batch.cost.input)}, output ${usd(batch.cost.output)})` : "not settled yet"],
    ]),
    h("h2", {}, "Metadata"),
    metadataTable(batch.metadata),
    errorsSection(batch),
    partsSection(batch),
  ];
}

function actions(batch, reload) {
  const buttons = [];
  if (!TERMINAL.has(batch.status) && batch.status !== "cancelling") {
    buttons.push(
      h(
        "button",
        {
          type: "button",
          class: "danger",
          id: "cancel-batch",
          onclick: async (event) => {
            event.target.disabled = true;
            try {
              await api(v1(`batches/${encodeURIComponent(batch.id)}/cancel`), { method: "POST" });
              announce(`Cancelling ${batch.id}`);
            } catch (error) {
              announce(error.message);
            }
            reload();
          },
        },
        "Cancel batch",
      ),
    );
  }
  for (const [label, field, id] of [
    ["Download output", "output_file_id", "download-output"],
    ["Download errors", "error_file_id", "download-errors"],
    ["Download partial output", "partial_output_file_id", "download-partial"],
  ]) {
    if (batch[field]) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            id,
            "data-file-id": batch[field],
            onclick: () => download(batch[field], `${batch.id}_${field.replace(/_file_id$/, "")}.jsonl`).catch((e) => announce(e.message)),
          },
          label,
        ),
      );
    }
  }
  return h("div", { class: "row" }, buttons);
}

function metadataTable(metadata) {
  const entries = Object.entries(metadata || {});
  if (!entries.length) return h("p", { class: "muted" }, "None.");
  return h(
    "table",
    { id: "batch-metadata" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"))),
    h("tbody", {}, entries.map(([key, value]) => h("tr", {}, h("td", {}, key), h("td", {}, value)))),
  );
}

function errorsSection(batch) {
  const errors = (batch.errors && batch.errors.data) || [];
  if (!errors.length) return null;
  return [
    h("h2", {}, "Errors"),
    h(
      "ul",
      { id: "batch-errors" },
      errors.map((error) =>
        h("li", {}, error.line ? `Line ${error.line}: ` : "", error.message || "", error.code ? ` (${error.code})` : ""),
      ),
    ),
  ];
}

// "Batches of any size": a batch run as a plan lists its provider batches as `parts` (index,
// status, the provider batch and its status, counts, when a refused part is tried again).
function partsSection(batch) {
  const parts = Array.isArray(batch.parts) ? batch.parts : null;
  if (!parts || !parts.length) return null;
  return [
    h("h2", {}, `Parts (${parts.length})`),
    h(
      "table",
      { id: "batch-parts" },
      h(
        "thead",
        {},
        h("tr", {}, ["Part", "Status", "Provider batch", "Progress", "Next attempt"].map((n) => h("th", { scope: "col" }, n))),
      ),
      h(
        "tbody",
        {},
        parts.map((part, position) =>
          h(
            "tr",
            { "data-part": part.index ?? position },
            h("td", { class: "num" }, String((part.index ?? position) + 1)),
            h("td", {}, part.status ?? "—"),
            h("td", {}, h("span", { class: "id" }, part.provider_batch_id ?? "—"), part.upstream_status ? ` (${part.upstream_status})` : ""),
            h("td", {}, progress({ id: `part ${(part.index ?? position) + 1}`, status: part.upstream_status, request_counts: part.request_counts })),
            h("td", {}, part.next_attempt_at ? time(part.next_attempt_at) : "—"),
          ),
        ),
      ),
    ),
  ];
}
