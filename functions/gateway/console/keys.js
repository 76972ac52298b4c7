// Keys (the master key only): list (newest first), create with a budget and provider limits, revoke.
import { allKeys, api } from "./api.js";
import { announce, errorBox, h, replace, time, usd } from "./dom.js";

export async function renderKeys(main, page) {
  if (!page.master) {
    replace(main, h("h1", {}, "Keys"), h("p", {}, "Key management needs the master key."));
    return;
  }
  const created = h("div", { id: "created-key", "aria-live": "polite" });
  const list = h("div", { id: "keys-table" });
  replace(main, h("h1", {}, "Keys"), createForm(created, () => refresh()), created, list);

  async function refresh() {
    if (!page.current()) return;
    try {
      const keys = await allKeys();
      if (page.current()) replace(list, keysTable(keys, refresh));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await refresh();
}

function field(id, label, attributes = {}) {
  const input = h("input", { id, name: id, type: "text", ...attributes });
  return [input, h("label", { for: id }, label, input)];
}

function createForm(created, refresh) {
  const [alias, aliasLabel] = field("key-alias", "Alias");
  const [budget, budgetLabel] = field("key-budget", "Budget (USD)", { type: "number", min: 0, step: "0.01" });
  const [period, periodLabel] = field("key-budget-duration", "Budget period (30d, 1mo…)", { size: 8 });
  const [lifetime, lifetimeLabel] = field("key-duration", "Expires after (30d…)", { size: 8 });
  const [providers, providersLabel] = field("key-providers", "Providers (comma-separated, empty: all)");
  const form = h(
    "form",
    { "aria-label": "Create a key" },
    h(
      "fieldset",
      {},
      h("legend", {}, "Create a key"),
      h("div", { class: "row" }, aliasLabel, budgetLabel, periodLabel, lifetimeLabel, providersLabel),
      h("button", { type: "submit", class: "primary" }, "Create key"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    if (alias.value.trim()) body.key_alias = alias.value.trim();
    if (budget.value !== "") body.max_budget = Number(budget.value);
    if (period.value.trim()) body.budget_duration = period.value.trim();
    if (lifetime.value.trim()) body.duration = lifetime.value.trim();
    const names = providers.value.split(",").map((name) => name.trim()).filter(Boolean);
    if (names.length) body.providers = names;
    try {
      const key = await api("key/generate", { method: "POST", json: body });
      replace(
        created,
        h("p", { class: "secret" }, `New key ${key.key_alias || key.key_id} (shown once, copy it now): `, h("code", { id: "new-key" }, key.key)),
      );
      form.reset();
    } catch (error) {
      replace(created, errorBox(error));
    }
    refresh();
  });
  return form;
}

function keysTable(keys, refresh) {
  if (!keys.length) return h("p", { class: "muted" }, "No keys.");
  return h(
    "table",
    {},
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Key", "Alias", "Hint", "Providers", "Budget", "Spent", "Held", "Created", "Expires", ""].map((n) => h("th", { scope: "col" }, n)),
      ),
    ),
    h(
      "tbody",
      {},
      keys.map((key) =>
        h(
          "tr",
          { "data-key-id": key.key_id },
          h("td", { class: "id" }, key.key_id),
          h("td", {}, key.key_alias || "—"),
          h("td", { class: "id" }, key.key_name),
          h("td", {}, key.providers ? key.providers.join(", ") : "all"),
          h("td", { class: "num" }, key.max_budget === null ? "none" : usd(key.max_budget)),
          h("td", { class: "num" }, usd(key.spend)),
          h("td", { class: "num" }, usd(key.holds)),
          h("td", {}, time(key.created_at)),
          h("td", {}, key.expires || "never"),
          h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Revoke ${key.key_alias || key.key_id}`,
                onclick: async () => {
                  try {
                    await api("key/delete", { method: "POST", json: { keys: [key.key_id] } });
                    announce(`Revoked ${key.key_id}`);
                  } catch (error) {
                    announce(error.message);
                  }
                  refresh();
                },
              },
              "Revoke",
            ),
          ),
        ),
      ),
    ),
  );
}
