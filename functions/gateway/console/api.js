// The console's only way to the gateway: its public API, with the signed-in key as
// Authorization. The key lives in this tab's sessionStorage; it never goes into a URL.
const KEY_ITEM = "gateway-console-key";

export function currentKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function rememberKey(key) {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
}

export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = error ? error.code : null;
    this.param = error ? error.param : null;
  }
}

// The API sits beside the console: <base>/console/api.js -> <base>/v1/..., <base>/key/...
const API_BASE = new URL("../", import.meta.url);

function apiUrl(path, query) {
  const url = new URL(path.replace(/^\//, ""), API_BASE);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  return url;
}

// A provider's own path form (/{provider}/v1/...), or the bare /v1 one.
export function v1(path, provider) {
  const tail = path.replace(/^\//, "");
  return provider ? `${encodeURIComponent(provider)}/v1/${tail}` : `v1/${tail}`;
}

async function send(path, { method = "GET", query, json, body, redirect = "follow" } = {}) {
  const key = currentKey();
  if (!key) throw new ApiError(401, { message: "Not signed in." });
  const headers = { Authorization: `Bearer ${key}` };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(apiUrl(path, query), {
    method,
    headers,
    body,
    credentials: "omit",
    cache: "no-store",
    referrerPolicy: "no-referrer",
    redirect,
  });
  if (response.type === "opaqueredirect") {
    // Content too large for a function's response is handed out by a presigned S3 URL: another
    // origin, which this page's policy (connect-src 'self') does not reach.
    throw new ApiError(302, {
      message: "This file is too large to answer inline (over about 4.5 MB): download it with the SDK (client.files.content).",
      code: "content_redirected",
    });
  }
  if (!response.ok) {
    let error = null;
    try {
      error = (await response.json()).error;
    } catch {
      error = null;
    }
    throw new ApiError(response.status, error);
  }
  return response;
}

export async function api(path, options) {
  const response = await send(path, options);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// Saves a file's content through the browser's download, named `filename`.
export async function download(fileId, filename) {
  const response = await send(v1(`files/${encodeURIComponent(fileId)}/content`), { redirect: "manual" });
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename || `${fileId}.jsonl`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// Every virtual key (the master key's /key/list, oldest first, paged by number), newest first.
export async function allKeys() {
  const keys = [];
  for (let page = 1; ; page += 1) {
    const listed = await api("key/list", { query: { page, size: 100, return_full_object: true } });
    keys.push(...listed.keys);
    if (page >= listed.total_pages) return keys.reverse();
  }
}
