// Batches: the key's batches, newest first, filtered by status and provider, paged with the
// API's cursors, refreshing itself while any shown batch runs.
import { api, v1 } from "./api.js";
import { eta, progress, REFRESH_MS, STATUSES, TERMINAL } from "./batch_view.js";
import { errorBox, h, replace, time, usd } from "./dom.js";

const PAGE_SIZE = 20;

export async function renderBatches(main, page) {
  const state = { status: "", provider: "", cursors: [null] };
  const statusSelect = h(
    "select",
    { id: "filter-status" },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((status) => h("option", { value: status }, status)),
  );
  const providerInput = h("input", { id: "filter-provider", type: "text", placeholder: "any", size: 14 });
  const table = h("div", { id: "batches-table" });
  const pager = h("div", { class: "row" });
  const form = h(
    "form",
    { class: "row", "aria-label": "Filter batches" },
    h("label", { for: "filter-status" }, "Status", statusSelect),
    h("label", { for: "filter-provider" }, "Provider", providerInput),
    h("button", { type: "submit" }, "Apply"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state.status = statusSelect.value;
    state.provider = providerInput.value.trim();
    state.cursors = [null];
    load();
  });
  statusSelect.addEventListener("change", () => {
    state.status = statusSelect.value;
    state.cursors = [null];
    load();
  });
  replace(main, h("h1", {}, "Batches"), form, table, pager);

  async function load() {
    if (!page.current()) return;
    const after = state.cursors[state.cursors.length - 1];
    let listed;
    try {
      listed = await api(v1("batches", state.provider), { query: { limit: PAGE_SIZE, after } });
    } catch (error) {
      replace(table, errorBox(error));
      return;
    }
    if (!page.current()) return;
    const shown = listed.data.filter((batch) => !state.status || batch.status === state.status);
    replace(table, batchTable(shown, state.provider));
    replace(
      pager,
      h(
        "button",
        {
          type: "button",
          disabled: state.cursors.length === 1,
          onclick: () => {
            state.cursors.pop();
            load();
          },
        },
        "Newer",
      ),
      h(
        "button",
        {
          type: "button",
          disabled: !listed.has_more,
          onclick: () => {
            state.cursors.push(listed.last_id);
            load();
          },
        },
        "Older",
      ),
    );
    if (listed.data.some((batch) => !TERMINAL.has(batch.status))) page.later(REFRESH_MS, load);
  }
  await load();
}

function batchTable(batches, provider) {
  if (!batches.length) return h("p", { class: "muted" }, "No batches.");
  return h(
    "table",
    {},
    h("caption", { class: "muted" }, "Newest first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Batch", "Provider", "Model", "Status", "Created", "Progress", "Cost", "ETA"].map((name) =>
          h("th", { scope: "col", class: name === "Cost" ? "num" : null }, name),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      batches.map((batch) =>
        h(
          "tr",
          { "data-batch-id": batch.id, "data-status": batch.status },
          h("td", {}, h("a", { href: `#/batch/${encodeURIComponent(batch.id)}`, class: "id" }, batch.id)),
          h("td", { class: "batch-provider" }, batch.provider || provider || "—"),
          h("td", {}, batch.model || "—"),
          h("td", { class: "batch-status" }, batch.status),
          h("td", {}, time(batch.created_at)),
          h("td", {}, progress(batch)),
          h("td", { class: "num" }, batch.cost ? usd(batch.cost.total) : "—"),
          h("td", { class: "eta" }, eta(batch)),
        ),
      ),
    ),
  );
}
