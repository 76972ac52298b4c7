// Webhooks: the key's endpoints, each with its recent deliveries (status, latency), retry a
// delivery, rotate the secret, send a test event; add and delete endpoints.
import { api, v1 } from "./api.js";
import { announce, errorBox, h, replace, time } from "./dom.js";

export async function renderWebhooks(main, page) {
  const list = h("div", { id: "webhook-endpoints" });
  const secret = h("div", { id: "webhook-secret", "aria-live": "polite" });
  let eventTypes = [];
  try {
    eventTypes = (await api(v1("webhook_event_types"))).data;
  } catch (error) {
    replace(main, h("h1", {}, "Webhooks"), errorBox(error));
    return;
  }
  replace(main, h("h1", {}, "Webhooks"), createForm(eventTypes, secret, () => refresh()), secret, list);

  async function refresh() {
    if (!page.current()) return;
    try {
      const endpoints = (await api(v1("webhook_endpoints"), { query: { limit: 100 } })).data;
      const sections = await Promise.all(endpoints.map((endpoint) => endpointSection(endpoint, eventTypes, secret, refresh)));
      if (page.current()) replace(list, endpoints.length ? sections : h("p", { class: "muted" }, "No webhook endpoints."));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await refresh();
}

function showSecret(container, endpoint) {
  replace(
    container,
    h(
      "p",
      { class: "secret" },
      `Signing secret of ${endpoint.name} (shown once, copy it now): `,
      h("code", {}, endpoint.signing_secret),
    ),
  );
}

function createForm(eventTypes, secret, refresh) {
  const url = h("input", { id: "webhook-url", type: "url", required: true, size: 40 });
  const name = h("input", { id: "webhook-name", type: "text", required: true });
  const boxes = eventTypes.map((type) => h("input", { type: "checkbox", value: type, id: `event-${type}` }));
  const form = h(
    "form",
    { "aria-label": "Add a webhook endpoint" },
    h(
      "fieldset",
      {},
      h("legend", {}, "Add an endpoint"),
      h("div", { class: "row" }, h("label", { for: "webhook-url" }, "URL", url), h("label", { for: "webhook-name" }, "Name", name)),
      h(
        "fieldset",
        {},
        h("legend", {}, "Events"),
        eventTypes.map((type, index) => h("label", { class: "inline", for: `event-${type}` }, boxes[index], type)),
      ),
      h("button", { type: "submit", class: "primary" }, "Add endpoint"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = boxes.filter((box) => box.checked).map((box) => box.value);
    try {
      const created = await api(v1("webhook_endpoints"), {
        method: "POST",
        json: { url: url.value, name: name.value, event_types: chosen },
      });
      showSecret(secret, created);
      form.reset();
    } catch (error) {
      replace(secret, errorBox(error));
    }
    refresh();
  });
  return form;
}

async function endpointSection(endpoint, eventTypes, secret, refresh) {
  const path = `webhook_endpoints/${encodeURIComponent(endpoint.id)}`;
  let deliveries = [];
  let problem = null;
  try {
    deliveries = (await api(v1(`${path}/deliveries`), { query: { limit: 20 } })).data;
  } catch (error) {
    problem = errorBox(error);
  }
  const testType = h(
    "select",
    { id: `test-type-${endpoint.id}`, "aria-label": `Event type to send to ${endpoint.name}` },
    eventTypes.map((type) => h("option", { value: type, selected: type === endpoint.event_types[0] }, type)),
  );
  const act = (label, fn, attributes = {}) =>
    h(
      "button",
      {
        type: "button",
        ...attributes,
        onclick: async () => {
          try {
            await fn();
          } catch (error) {
            announce(error.message);
          }
          refresh();
        },
      },
      label,
    );
  return h(
    "section",
    { class: "panel", "data-endpoint-id": endpoint.id, "aria-label": `Endpoint ${endpoint.name}` },
    h("h2", {}, endpoint.name),
    h("p", {}, h("code", {}, endpoint.url), " · ", endpoint.event_types.join(", "), " · secret ", endpoint.signing_secret_hint || "—"),
    h(
      "div",
      { class: "row" },
      testType,
      act("Send test event", async () => {
        const result = await api(v1(`${path}/test`), { method: "POST", json: { event_type: testType.value } });
        announce(`Test event answered ${result.status_code}`);
      }, { class: "send-test" }),
      act("Rotate secret", async () => showSecret(secret, await api(v1(`${path}/rotate_secret`), { method: "POST", json: {} })), {
        class: "rotate",
      }),
      act("Delete", async () => {
        await api(v1(path), { method: "DELETE" });
        announce(`Deleted ${endpoint.name}`);
      }, { class: "danger" }),
    ),
    problem,
    deliveries.length
      ? h(
          "table",
          { class: "deliveries" },
          h("caption", {}, "Recent deliveries"),
          h(
            "thead",
            {},
            h("tr", {}, ["Event", "Attempt", "Sent", "Status", "Latency", "Result", ""].map((n) => h("th", { scope: "col" }, n))),
          ),
          h(
            "tbody",
            {},
            deliveries.map((delivery) =>
              h(
                "tr",
                { "data-delivery-id": delivery.id },
                h("td", {}, delivery.event_type),
                h("td", { class: "num" }, delivery.attempt),
                h("td", {}, time(delivery.created_at)),
                h("td", { class: "num delivery-status" }, delivery.status_code ?? "no answer"),
                h("td", { class: "num" }, delivery.latency_ms === null ? "—" : `${delivery.latency_ms} ms`),
                h("td", { class: delivery.success ? "ok" : "error" }, delivery.success ? "delivered" : delivery.error || "failed"),
                h(
                  "td",
                  {},
                  act("Retry", async () => {
                    await api(v1(`${path}/deliveries/${encodeURIComponent(delivery.id)}/retry`), { method: "POST" });
                    announce("Delivery sent again");
                  }, { "aria-label": `Retry delivery ${delivery.id}`, class: "retry" }),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No deliveries yet."),
  );
}
