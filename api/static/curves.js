// Training curves: every numeric series of a training job's metrics.jsonl, drawn as SVG (redrawn as it
// grows). Each series is scaled to its own range (losses and accuracies share no axis); the legend beside
// the plot gives each one's latest value and range.

import { svg } from "./dom.js";

const COLOURS = ["#1f5fbf", "#b42318", "#17803d", "#f79009", "#6941c6", "#0e7090"];
const NOT_SERIES = new Set(["step", "epoch", "seconds", "time", "learning_rate"]);

export async function curves(url) {
  const text = await (await fetch(url, { cache: "no-store" })).text();
  const rows = text.split("\n").filter(Boolean).map((line) => { try { return JSON.parse(line); } catch (e) { return null; } }).filter(Boolean);
  const series = {};
  rows.forEach((row, i) => {
    for (const [k, v] of Object.entries(row)) if (typeof v === "number" && !NOT_SERIES.has(k)) (series[k] = series[k] || []).push([row.epoch ?? row.step ?? i + 1, v]);
  });
  const plotW = 560, legendW = 330, height = 240, pad = 28;
  const width = plotW + legendW;
  const chart = svg("svg", { class: "curves", id: "curves", width, height, viewBox: `0 0 ${width} ${height}`, "data-rows": rows.length });
  const xs = rows.map((row, i) => row.epoch ?? row.step ?? i + 1);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const sx = (x) => pad + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (plotW - 2 * pad);
  chart.append(svg("rect", { x: pad, y: pad / 2, width: plotW - 2 * pad, height: height - 1.5 * pad, class: "frame" }));
  const axis = svg("text", { x: plotW / 2, y: height - 6, "text-anchor": "middle" });
  axis.textContent = rows.length ? `epoch ${x0} … ${x1}` : "no epoch finished yet";
  chart.append(axis);
  Object.entries(series).slice(0, COLOURS.length).forEach(([name, points], n) => {
    const ys = points.map((p) => p[1]);
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const sy = (y) => height - pad - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (height - 2 * pad);
    chart.append(svg("polyline", { points: points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "), fill: "none", stroke: COLOURS[n], "stroke-width": 1.5 }));
    const top = pad / 2 + 6 + 20 * n;
    chart.append(svg("line", { x1: plotW, y1: top, x2: plotW + 18, y2: top, stroke: COLOURS[n], "stroke-width": 3 }));
    const label = svg("text", { x: plotW + 24, y: top + 4 });
    label.textContent = `${name}: ${ys[ys.length - 1].toPrecision(4)} (range ${y0.toPrecision(3)} – ${y1.toPrecision(3)})`;
    chart.append(label);
  });
  return chart;
}
