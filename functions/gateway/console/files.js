// Files: the key's files; upload a JSONL (drag and drop, or choose), see what
// POST /v1/batches/check answers (errors by line, the estimate), then create the batch.
import { api, download, v1 } from "./api.js";
import { announce, bytes, errorBox, facts, h, replace, time, usd } from "./dom.js";

const ENDPOINTS = ["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions"];

export async function renderFiles(main, page) {
  const providerInput = h("input", { id: "upload-provider", type: "text", placeholder: "default", size: 14 });
  const endpointSelect = h("select", { id: "upload-endpoint" }, ENDPOINTS.map((e) => h("option", { value: e }, e)));
  const fileInput = h("input", { id: "upload-file", type: "file", accept: ".jsonl,application/jsonl,application/json,text/plain" });
  const drop = h(
    "div",
    { class: "drop", id: "drop-zone" },
    h("p", {}, "Drop a JSONL file here, or choose one:"),
    h("label", { for: "upload-file" }, "Batch input file (JSONL)", fileInput),
  );
  const result = h("section", { id: "check-result", "aria-live": "polite" });
  const list = h("div", { id: "files-table" });
  replace(
    main,
    h("h1", {}, "Files"),
    h(
      "fieldset",
      {},
      h("legend", {}, "Upload a batch input file"),
      h(
        "div",
        { class: "row" },
        h("label", { for: "upload-provider" }, "Provider (optional)", providerInput),
        h("label", { for: "upload-endpoint" }, "Endpoint", endpointSelect),
      ),
      drop,
    ),
    result,
    h("h2", {}, "Your files"),
    list,
  );

  const options = () => ({ provider: providerInput.value.trim(), endpoint: endpointSelect.value });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    await upload(file, options(), result, refresh);
    fileInput.value = ""; // the same file chosen again uploads again
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) upload(file, options(), result, refresh);
  });

  async function refresh() {
    if (!page.current()) return;
    try {
      const listed = await api(v1("files"), { query: { limit: 100 } });
      if (page.current()) replace(list, filesTable(listed.data, refresh));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await refresh();
}

async function upload(file, { provider, endpoint }, result, refresh) {
  replace(result, h("p", {}, `Uploading ${file.name}…`));
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", file, file.name);
  let uploaded;
  try {
    uploaded = await api(v1("files", provider), { method: "POST", body: form });
  } catch (error) {
    replace(result, h("h2", {}, "Upload refused"), errorBox(error));
    return;
  }
  refresh();
  const request = { input_file_id: uploaded.id, endpoint, completion_window: "24h" };
  let check;
  try {
    check = await api(v1("batches/check", provider), { method: "POST", json: request });
  } catch (error) {
    replace(result, h("h2", {}, "Check refused"), errorBox(error));
    return;
  }
  replace(result, ...checkView(uploaded, check, provider, request));
}

function checkView(uploaded, check, provider, request) {
  const errors = (check.errors && check.errors.data) || [];
  const create = h(
    "button",
    {
      type: "button",
      class: "primary",
      id: "create-batch",
      disabled: !check.valid,
      onclick: async () => {
        create.disabled = true;
        try {
          const batch = await api(v1("batches", provider), { method: "POST", json: request });
          window.location.hash = `#/batch/${encodeURIComponent(batch.id)}`;
        } catch (error) {
          create.after(errorBox(error));
        }
      },
    },
    "Create batch",
  );
  return [
    h("h2", {}, "Check of ", h("span", { class: "id" }, uploaded.filename)),
    h(
      "p",
      { id: "check-verdict", class: check.valid ? "ok" : "error" },
      check.valid ? "A create would accept this file." : `A create would fail this batch: ${check.error_count} problem(s).`,
    ),
    errors.length
      ? h(
          "ul",
          { id: "check-errors" },
          errors.map((error) =>
            h(
              "li",
              { "data-line": error.line ?? "" },
              error.line ? h("strong", {}, `Line ${error.line}: `) : "",
              error.message || "",
              error.code ? ` (${error.code})` : "",
            ),
          ),
        )
      : null,
    facts([
      ["File", h("span", { class: "id" }, uploaded.id)],
      ["Provider", check.provider],
      ["Requests", check.requests],
      ["Size", bytes(check.bytes)],
      ["Provider batches", check.parts],
      ["Model", check.estimate.model || "—"],
      ["Estimated tokens", `${check.estimate.input_tokens} in, ${check.estimate.output_tokens} out (at most)`],
      ["Estimated cost", check.estimate.cost === null ? "no price for this model" : `at most ${usd(check.estimate.cost)}`],
      ["Provider limits", `${check.limits.max_requests} requests, ${bytes(check.limits.max_bytes)}`],
    ]),
    h("div", { class: "row" }, create),
  ];
}

function filesTable(files, refresh) {
  if (!files.length) return h("p", { class: "muted" }, "No files.");
  return h(
    "table",
    {},
    h(
      "thead",
      {},
      h("tr", {}, ["File", "Name", "Purpose", "Size", "Status", "Created", "Actions"].map((n) => h("th", { scope: "col" }, n))),
    ),
    h(
      "tbody",
      {},
      files.map((file) =>
        h(
          "tr",
          { "data-file-id": file.id },
          h("td", { class: "id" }, file.id),
          h("td", { class: "filename" }, file.filename),
          h("td", {}, file.purpose),
          h("td", { class: "num" }, bytes(file.bytes)),
          h("td", {}, file.status || "—"),
          h("td", {}, time(file.created_at)),
          h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                "aria-label": `Download ${file.filename}`,
                onclick: () => download(file.id, file.filename).catch((e) => announce(e.message)),
              },
              "Download",
            ),
            " ",
            h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Delete ${file.filename}`,
                onclick: async () => {
                  try {
                    await api(v1(`files/${encodeURIComponent(file.id)}`), { method: "DELETE" });
                    announce(`Deleted ${file.id}`);
                  } catch (error) {
                    announce(error.message);
                  }
                  refresh();
                },
              },
              "Delete",
            ),
          ),
        ),
      ),
    ),
  );
}
