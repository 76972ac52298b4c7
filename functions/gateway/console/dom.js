// Building the page from API values: every value goes in as a text node or an attribute,
// never as markup, so a filename holding <script> shows as those characters.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.setAttribute("class", value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(container, ...children) {
  container.replaceChildren();
  append(container, children);
}

export function time(seconds) {
  if (seconds === undefined || seconds === null) return "—";
  const date = new Date(seconds * 1000);
  return h("time", { datetime: date.toISOString() }, date.toISOString().replace("T", " ").slice(0, 19) + " UTC");
}

export function usd(amount) {
  if (amount === undefined || amount === null) return "—";
  const digits = Math.abs(amount) > 0 && Math.abs(amount) < 0.01 ? 6 : 2;
  return `$${Number(amount).toFixed(digits)}`;
}

export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function bytes(count) {
  if (count === undefined || count === null) return "—";
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  return `${(count / 1024 / 1024).toFixed(1)} MiB`;
}

let statusTimer = null;

// A short message in the polite live region (screen readers read it out).
export function announce(message) {
  const region = document.getElementById("status");
  region.textContent = message;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (region.textContent = ""), 6000);
}

export function errorBox(error) {
  const detail = error && error.status ? ` (HTTP ${error.status}${error.code ? `, ${error.code}` : ""})` : "";
  return h("p", { class: "error", role: "alert" }, `${error && error.message ? error.message : error}${detail}`);
}

export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, value]) => value !== undefined).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "—")]),
  );
}
