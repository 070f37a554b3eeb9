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
