// A small hand-written SVG line chart: one metric's values over the training's reports.

import { formatNumber, h } from "./dom.js";

const W = 320;
const H = 150;
const PAD = { left: 46, right: 10, top: 10, bottom: 26 };

function niceRange(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  return [lo, hi];
}

// A <figure> with the chart of `values` (numbers, in report order) named `name`.
export function lineChart(name, values) {
  const n = values.length;
  const last = values[n - 1];
  const [lo, hi] = niceRange(values);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (n === 1 ? plotW / 2 : (i * plotW) / (n - 1));
  const y = (v) => PAD.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const label =
    `${name}: ${n} report${n === 1 ? "" : "s"}, last ${formatNumber(last)}, ` +
    `lowest ${formatNumber(Math.min(...values))}, highest ${formatNumber(Math.max(...values))}`;

  const grid = [0, 0.5, 1].map((f) => {
    const v = lo + (hi - lo) * f;
    const gy = y(v);
    return [
      h("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: gy, y2: gy, class: "grid" }),
      h("svg:text", { x: PAD.left - 6, y: gy + 4, class: "tick", "text-anchor": "end" }, formatNumber(Number(v.toPrecision(3)))),
    ];
  });
  const svg = h(
    "svg:svg",
    { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart", preserveAspectRatio: "xMidYMid meet" },
    h("svg:title", {}, label),
    grid,
    h("svg:line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotH, class: "axis" }),
    h("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH, class: "axis" }),
    h("svg:text", { x: PAD.left, y: H - 6, class: "tick", "text-anchor": "start" }, "1"),
    h("svg:text", { x: W - PAD.right, y: H - 6, class: "tick", "text-anchor": "end" }, `report ${n}`),
    n > 1 ? h("svg:polyline", { points, class: "line" }) : null,
    h("svg:circle", { cx: x(n - 1), cy: y(last), r: 3.5, class: "dot" }),
  );
  return h(
    "figure",
    { class: "metric-chart", dataset: { metric: name, points: String(n) } },
    h("figcaption", {}, h("strong", { text: name }), ` ${formatNumber(last)}`),
    svg,
  );
}

const SERIES = 6; // colours in ui.css (.series-0 ... .series-5), reused beyond

// A <figure> with the metrics of several versions side by side: a bar chart, one group of
// bars per version (oldest first) and one series (colour) per metric, on one shared axis.
// `versions` is [{version, metrics}], metrics mapping names to values (non-numbers left out).
export function versionsChart(versions) {
  const names = [];
  for (const v of versions) {
    for (const [name, value] of Object.entries(v.metrics || {})) {
      if (typeof value === "number" && Number.isFinite(value) && !names.includes(name)) names.push(name);
    }
  }
  if (!names.length || !versions.length) return null;
  const values = versions.flatMap((v) => names.map((n) => v.metrics[n]).filter((x) => typeof x === "number" && Number.isFinite(x)));
  let [lo, hi] = niceRange([0, ...values]);
  if (lo > 0) lo = 0;
  if (hi < 0) hi = 0;
  const width = Math.max(W, PAD.left + PAD.right + versions.length * (names.length * 14 + 18));
  const height = 180;
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  const group = plotW / versions.length;
  const bar = Math.min(24, (group * 0.8) / names.length);
  const x = (i, j) => PAD.left + i * group + (group - bar * names.length) / 2 + j * bar;

  const grid = [0, 0.5, 1].map((f) => {
    const v = lo + (hi - lo) * f;
    return [
      h("svg:line", { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), class: "grid" }),
      h("svg:text", { x: PAD.left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, formatNumber(Number(v.toPrecision(3)))),
    ];
  });
  const series = names.map((name, j) =>
    h(
      "svg:g",
      { class: `series series-${j % SERIES}`, dataset: { metric: name } },
      versions.map((v, i) => {
        const value = v.metrics[name];
        if (typeof value !== "number" || !Number.isFinite(value)) return null;
        const top = Math.min(y(value), y(0));
        return h(
          "svg:rect",
          { x: x(i, j).toFixed(1), y: top.toFixed(1), width: Math.max(1, bar - 2).toFixed(1), height: Math.max(1, Math.abs(y(value) - y(0))).toFixed(1), dataset: { version: String(v.version) } },
          h("svg:title", {}, `version ${v.version}, ${name}: ${formatNumber(value)}`),
        );
      }),
    ),
  );
  const labels = versions.map((v, i) =>
    h("svg:text", { x: (PAD.left + (i + 0.5) * group).toFixed(1), y: height - 8, class: "tick", "text-anchor": "middle" }, `v${v.version}`),
  );
  const label = `Metrics of ${versions.length} version${versions.length === 1 ? "" : "s"}: ${names.join(", ")}`;
  const svg = h(
    "svg:svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart versions-chart", preserveAspectRatio: "xMinYMid meet" },
    h("svg:title", {}, label),
    grid,
    h("svg:line", { x1: PAD.left, x2: width - PAD.right, y1: y(0), y2: y(0), class: "axis" }),
    series,
    labels,
  );
  const legend = h(
    "ul",
    { class: "legend" },
    names.map((name, j) => h("li", {}, h("span", { class: `swatch series-${j % SERIES}`, "aria-hidden": "true" }), name)),
  );
  return h("figure", { class: "metric-chart versions-metrics", dataset: { series: String(names.length) } }, h("figcaption", {}, "Metrics by version"), svg, legend);
}
