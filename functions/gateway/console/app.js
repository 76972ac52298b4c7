// The console's shell: sign-in, navigation between sections (the URL's hash, which never holds
// the key) and each page's timers, stopped when the person leaves the page.
import { api, ApiError, currentKey, forgetKey, rememberKey, v1 } from "./api.js";
import { errorBox, h, replace } from "./dom.js";
import { renderBatch } from "./batch_page.js";
import { renderBatches } from "./batches.js";
import { renderFiles } from "./files.js";
import { renderKeys } from "./keys.js";
import { renderSpend } from "./spend.js";
import { renderWebhooks } from "./webhooks.js";

const main = document.getElementById("main");
let session = null; // { master: boolean }
let timers = [];
let generation = 0;

const PAGES = {
  batches: renderBatches,
  batch: renderBatch,
  files: renderFiles,
  spend: renderSpend,
  webhooks: renderWebhooks,
  keys: renderKeys,
};

function stopTimers() {
  for (const timer of timers) clearTimeout(timer);
  timers = [];
}

// What a page gets: whether the key is the master key, and a way to run something again later
// for as long as the page is shown.
function pageContext() {
  const mine = generation;
  return {
    master: session.master,
    current: () => mine === generation,
    later(ms, fn) {
      if (mine !== generation) return;
      timers.push(setTimeout(() => mine === generation && fn(), ms));
    },
  };
}

function route() {
  const parts = window.location.hash.replace(/^#\/?/, "").split("/");
  const name = PAGES[parts[0]] ? parts[0] : "batches";
  return { name, arg: parts.slice(1).map(decodeURIComponent).join("/") };
}

// Shows the page the address names; resolves to its generation once the page has loaded.
async function show() {
  generation += 1;
  const mine = generation;
  stopTimers();
  if (!session) return renderSignIn();
  const { name, arg } = route();
  for (const link of document.querySelectorAll("#nav a")) {
    const here = link.dataset.section === (name === "batch" ? "batches" : name);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  replace(main, h("p", {}, "Loading…"));
  try {
    await PAGES[name](main, pageContext(), arg);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signOut("The key was refused (revoked or expired?).");
    replace(main, h("h1", {}, "Something went wrong"), errorBox(error));
  }
  return mine;
}

// The page takes the focus once loaded (a screen reader starts at its heading), unless another
// page was shown meanwhile or the user has already gone into it: a field being typed in keeps it.
function focusPage(shown) {
  if (shown === generation && !main.contains(document.activeElement)) main.focus();
}

function renderSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "api-key-help",
  });
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", {}, h("label", { for: "api-key" }, "API key (a virtual key or the master key)", input)),
    h(
      "p",
      { id: "api-key-help", class: "muted" },
      "Kept in this tab only (session storage) and sent as the Authorization header. " +
        "The console shows exactly what this key may see through the API.",
    ),
    message ? errorBox(message) : null,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    rememberKey(input.value.trim());
    await start();
  });
  replace(main, form);
  input.focus();
}

async function start() {
  try {
    await api(v1("batches"), { query: { limit: 1 } });
  } catch (error) {
    forgetKey();
    session = null;
    return renderSignIn(error instanceof ApiError && error.status === 401 ? "That key was refused." : error);
  }
  let master = false;
  try {
    await api("key/list", { query: { size: 1 } });
    master = true;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
  }
  session = { master };
  document.getElementById("nav").hidden = false;
  document.getElementById("nav-keys").hidden = !master;
  document.getElementById("sign-out").hidden = false;
  document.getElementById("who").textContent = master ? "Signed in with the master key" : "Signed in with a virtual key";
  focusPage(await show());
}

function signOut(message) {
  forgetKey();
  session = null;
  generation += 1;
  stopTimers();
  renderSignIn(message);
}

document.getElementById("sign-out").addEventListener("click", () => signOut());

window.addEventListener("hashchange", async () => focusPage(await show()));

if (currentKey()) start();
else renderSignIn();
