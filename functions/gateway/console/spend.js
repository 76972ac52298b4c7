// Spend: per day and per model from /spend/report, and a key's budget and holds from
// /key/info (both the master key's: a virtual key is told so, by the API's own 403).
import { allKeys, api } from "./api.js";
import { barChart, rowsTable } from "./charts.js";
import { errorBox, facts, h, replace, usd } from "./dom.js";

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

export async function renderSpend(main, page) {
  const today = new Date();
  const start = h("input", { id: "spend-start", type: "date", value: isoDay(new Date(today.getTime() - 29 * 86400_000)) });
  const end = h("input", { id: "spend-end", type: "date", value: isoDay(today) });
  const charts = h("div", { id: "spend-charts" });
  const budget = h("section", { id: "key-budget", "aria-labelledby": "budget-title" });
  const form = h(
    "form",
    { class: "row", "aria-label": "Spend period" },
    h("label", { for: "spend-start" }, "From", start),
    h("label", { for: "spend-end" }, "To (inclusive)", end),
    h("button", { type: "submit" }, "Show"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  replace(main, h("h1", {}, "Spend"), form, charts, budget);

  async function load() {
    const query = { start_date: start.value, end_date: end.value };
    try {
      const [byDay, byModel] = await Promise.all([
        api("spend/report", { query: { ...query, group_by: "day" } }),
        api("spend/report", { query: { ...query, group_by: "model" } }),
      ]);
      if (!page.current()) return;
      const rows = (report) => report.data.map((row) => ({ label: row.group, value: row.spend }));
      replace(
        charts,
        h("p", {}, "Total: ", h("strong", { id: "spend-total" }, usd(byDay.total_spend))),
        barChart("chart-by-day", "Spend per day (USD)", rows(byDay)),
        rowsTable("Day", byDay.data),
        barChart("chart-by-model", "Spend per model (USD)", rows(byModel)),
        rowsTable("Model", byModel.data),
      );
    } catch (error) {
      replace(charts, errorBox(error));
    }
  }
  await load();
  if (page.master) await renderBudgets(budget, page);
}

async function renderBudgets(section, page) {
  let keys;
  try {
    keys = await allKeys();
  } catch (error) {
    replace(section, errorBox(error));
    return;
  }
  const select = h(
    "select",
    { id: "budget-key" },
    h("option", { value: "" }, "Choose a key"),
    keys.map((key) => h("option", { value: key.key_id }, key.key_alias ? `${key.key_alias} (${key.key_id})` : key.key_id)),
  );
  const detail = h("div", { id: "budget-detail" });
  select.addEventListener("change", async () => {
    if (!select.value) return replace(detail);
    try {
      const { info } = await api("key/info", { query: { key: select.value } });
      if (!page.current()) return;
      replace(
        detail,
        facts([
          ["Budget", info.max_budget === null ? "none" : usd(info.max_budget)],
          ["Period", info.budget_duration || "never resets"],
          ["Spent this period", usd(info.spend)],
          ["Held for running batches", usd(info.holds)],
          ["Resets", info.budget_reset_at || "—"],
          ["Providers", info.providers ? info.providers.join(", ") : "all"],
        ]),
      );
    } catch (error) {
      replace(detail, errorBox(error));
    }
  });
  replace(
    section,
    h("h2", { id: "budget-title" }, "A key's budget and holds"),
    h("label", { for: "budget-key" }, "Key", select),
    detail,
  );
}
