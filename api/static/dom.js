// Building the page: elements, and the figures of a job as text. Every piece of text that comes from a
// user or a job (file names, captions, class names, errors) is set with textContent, never parsed as HTML.

export const LIVE = new Set(["queued", "running"]);
export const IMAGE_URL = /\.(png|jpe?g|gif|webp)(?:[?&#]|$)/i;

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// replaceChildren would write "null" for an absent part: leave those out.
export function fill(node, ...children) { node.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false)); }

export function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  return node;
}

export function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
export function fixed(value, digits) { return typeof value === "number" ? value.toFixed(digits) : "—"; }

export function progressBar(job) {
  const p = job.progress || {};
  const finished = (p.done || 0) + (p.failed || 0);
  const share = p.total ? Math.min(1, finished / p.total) : (job.status === "succeeded" ? 1 : 0);
  const fill = el("span");
  fill.style.width = (share * 100).toFixed(1) + "%";
  const bar = el("span", { class: "bar" + (share >= 1 ? " done" : ""), role: "progressbar", "aria-valuenow": Math.round(share * 100), "aria-valuemin": 0, "aria-valuemax": 100 }, fill);
  const label = p.total ? `${finished} / ${p.total} (${Math.round(share * 100)}%)` : `${finished} / ?`;
  return el("span", { class: "progress" }, bar, " ", el("span", { class: "pct", text: label }));
}

export function statusTag(status) { return el("span", { class: "status " + status, text: status }); }
