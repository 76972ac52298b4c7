// A horizontal bar chart in SVG, built element by element (no library, no inline style),
// with the same figures in a table beside it for screen readers and copying.
import { h, svg, usd } from "./dom.js";

const ROW = 22;
const LABEL = 150;
const WIDTH = 560;

export function barChart(id, title, rows) {
  const top = Math.max(...rows.map((row) => row.value), 0);
  const chart = svg(
    "svg",
    {
      id,
      class: "chart",
      role: "img",
      "aria-label": `${title}: ${rows.length} bars`,
      viewBox: `0 0 ${WIDTH} ${Math.max(1, rows.length) * ROW + 4}`,
      width: WIDTH,
      height: Math.max(1, rows.length) * ROW + 4,
    },
    rows.map((row, index) => {
      const width = top > 0 ? Math.max(1, ((WIDTH - LABEL - 90) * row.value) / top) : 1;
      const y = index * ROW + 2;
      return svg(
        "g",
        { "data-group": row.label },
        svg("text", { x: 0, y: y + 14 }, row.label.length > 22 ? `${row.label.slice(0, 21)}…` : row.label),
        svg("rect", { class: "bar", x: LABEL, y: y + 3, width, height: ROW - 8 }),
        svg("text", { x: LABEL + width + 6, y: y + 14 }, usd(row.value)),
      );
    }),
  );
  return h(
    "figure",
    {},
    h("figcaption", {}, title),
    rows.length ? chart : h("p", { class: "muted" }, "No settled spend in this period."),
  );
}

export function rowsTable(groupName, rows) {
  return h(
    "table",
    {},
    h(
      "thead",
      {},
      h("tr", {}, [groupName, "Spend", "Batches", "Input tokens", "Output tokens"].map((n) => h("th", { scope: "col" }, n))),
    ),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          {},
          h("td", {}, row.group),
          h("td", { class: "num" }, usd(row.spend)),
          h("td", { class: "num" }, row.batches),
          h("td", { class: "num" }, row.input_tokens),
          h("td", { class: "num" }, row.output_tokens),
        ),
      ),
    ),
  );
}
