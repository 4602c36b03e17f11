import { api } from "./api.js";
import { curves } from "./curves.js";
import { IMAGE_URL, LIVE, duration, el, fill, fixed, progressBar, statusTag, when } from "./dom.js";
import { POLL_MS, every, showError, thisView } from "./page.js";

const PAGE_SIZE = 48;

// A job: its record (live), its summary and pictures, its gallery over the whole manifest.
export async function jobView(main, jobId, status) {
  const mine = thisView();
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  const head = el("div", { id: "job-head" });
  const summary = el("div", { id: "job-summary" });
  const gallery = el("div", { id: "job-gallery" });
  main.append(head, summary, gallery);
  let job = await api("GET", path);
  const training = job.kind.endsWith("_train"); // training kinds leave a model and files, not items
  const state = { offset: 0, status: status || "", label: "", sort: "", fields: new Set() };
  let wasLive = LIVE.has(job.status);

  function renderHead() {
    const cancel = LIVE.has(job.status) ? el("button", { id: "cancel-job", text: "Cancel", onclick: async () => { await api("POST", `${path}/cancel`).catch(showError); await refresh(); } }) : null;
    fill(head,
      el("h1", {}, job.name || `${job.kind} job`, " ", el("span", { class: "muted", text: job.id })),
      el("div", { class: "toolbar" }, statusTag(job.status), progressBar(job),
        el("span", { text: `${fixed(job.items_per_second, 2)} ${training ? "epochs" : "items"}/s` }),  // a training job counts epochs
        LIVE.has(job.status) ? el("span", { text: `ETA ${duration(job.eta_seconds)}` }) : null,
        el("span", { class: "muted", text: `created ${when(job.created_at)} · finished ${when(job.finished_at)}` }), cancel),
      job.error ? el("p", { class: "error", text: job.error }) : null);
  }

  async function renderSummary() {
    const results = await api("GET", `${path}/results?limit=1`);
    const parts = [];
    const s = results.summary;
    if (s) {
      parts.push(el("div", { class: "cards" }, ...[["items", s.total], ["ok", s.ok], ["failed", s.failed], ["seconds", s.seconds], ["items/s", s.items_per_second]]
        .filter(([, v]) => v !== undefined).map(([k, v]) => el("div", { class: "card" }, el("b", { text: v }), el("span", { class: "muted", text: k })))));
      const reasons = Object.entries(s.failure_reasons || {});
      if (reasons.length) parts.push(el("h2", { text: "Failure reasons" }), el("table", { id: "reasons" }, ...reasons.map(([r, n]) => el("tr", {}, el("td", { text: r }), el("td", { class: "num", text: n })))));
      const figures = flatFigures(s);
      if (figures.length) parts.push(el("h2", { text: "Figures" }), el("dl", { class: "kv", id: "figures" }, ...figures.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])));
    }
    const pictures = Object.entries(results.files || {}).filter(([, url]) => IMAGE_URL.test(url));
    if (pictures.length) parts.push(el("h2", { text: "Pictures of the whole job" }), el("div", { class: "pictures" }, ...pictures.map(([name, url]) => el("figure", {}, el("img", { src: url, alt: name }), el("figcaption", { class: "muted", text: name })))));
    if (training && results.files && results.files["metrics.jsonl"]) parts.push(el("h2", { text: "Training curves" }), await curves(results.files["metrics.jsonl"]));
    if (results.report) parts.push(el("p", {}, el("a", { href: results.report, text: "Static report" }), " · ", el("a", { href: results.manifest, text: "manifest.json" })));
    summary.replaceChildren(...parts);
  }

  async function renderGallery() {
    if (training) return;
    const ended = !LIVE.has(job.status);
    const params = new URLSearchParams({ offset: String(state.offset), limit: String(PAGE_SIZE) });
    if (state.status) params.set("status", state.status);
    if (ended && state.label) params.set("class", state.label);
    if (ended && state.sort) params.set("sort", state.sort);
    const page = await api("GET", `${path}/results?${params}`);
    if (!mine.alive) return;
    for (const item of page.items) numericPaths(item.data, "", state.fields);
    const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
    const current = Math.floor(state.offset / PAGE_SIZE) + 1;
    const statusPick = el("select", { id: "gallery-status" }, ...[["", "all items"], ["ok", "ok"], ["failed", "failed"], ["pending", "pending"]].map(([v, t]) => el("option", { value: v, text: t })));
    statusPick.value = state.status;
    const classBox = el("input", { id: "gallery-class", type: "text", placeholder: "class (index or name)", value: state.label, disabled: !ended, size: 18 });
    const sortPick = el("select", { id: "gallery-sort", disabled: !ended }, el("option", { value: "", text: "index order" }),
      ...[...state.fields].sort().flatMap((f) => [el("option", { value: f, text: `${f} ↑` }), el("option", { value: "-" + f, text: `${f} ↓` })]));
    sortPick.value = state.sort;
    const go = (offset) => { state.offset = offset; renderGallery().catch(showError); };
    statusPick.addEventListener("change", () => { state.status = statusPick.value; go(0); });
    classBox.addEventListener("change", () => { state.label = classBox.value.trim(); go(0); });
    sortPick.addEventListener("change", () => { state.sort = sortPick.value; go(0); });
    const jump = el("input", { id: "page-number", type: "number", min: 1, max: pages, value: current, size: 5 });
    jump.addEventListener("change", () => go(Math.min(pages - 1, Math.max(0, Number(jump.value) - 1)) * PAGE_SIZE));
    const pager = el("div", { class: "pager" },
      el("button", { id: "prev-page", text: "← Previous", disabled: state.offset === 0, onclick: () => go(Math.max(0, state.offset - PAGE_SIZE)) }),
      el("span", {}, "Page ", jump, ` of ${pages} · ${page.total} items`),
      el("button", { id: "next-page", text: "Next →", disabled: page.next_offset === null, onclick: () => go(page.next_offset) }));
    const tiles = page.items.map((item) => tile(jobId, item, state.sort));
    fill(gallery, el("h2", { text: "Items" }),
      el("div", { class: "toolbar" }, statusPick, classBox, sortPick, ended ? null : el("span", { class: "muted", text: "sorting and class filters open once the job has ended" })),
      pager, el("div", { class: "gallery", id: "gallery", "data-page": current, "data-ended": ended }, ...tiles), page.items.length ? null : el("p", { class: "muted", text: "No items here." }));
  }

  async function refresh() {
    job = await api("GET", path);
    if (!mine.alive) return;
    renderHead();
    const live = LIVE.has(job.status);
    if (live || wasLive) { await renderSummary(); if (live || state.offset === 0) await renderGallery(); }
    wasLive = live;
  }

  renderHead();
  await renderSummary();
  await renderGallery();
  every(POLL_MS, async () => { if (LIVE.has(job.status) || wasLive) await refresh(); });
}

function flatFigures(summary) {
  const skip = new Set(["job", "kind", "name", "status", "total", "ok", "failed", "seconds", "items_per_second", "failure_reasons", "pictures", "arrays", "aggregate", "started_at", "finished_at"]);
  const out = [];
  const walk = (value, prefix, depth) => {
    if (typeof value === "number" || typeof value === "string" || typeof value === "boolean") out.push([prefix, String(value)]);
    else if (value && typeof value === "object" && !Array.isArray(value) && depth < 2) for (const [k, v] of Object.entries(value)) walk(v, prefix ? `${prefix}.${k}` : k, depth + 1);
  };
  for (const [k, v] of Object.entries(summary)) if (!skip.has(k)) walk(v, k, 0);
  return out.slice(0, 80);
}

function numericPaths(value, prefix, found) {
  if (typeof value === "number" || typeof value === "boolean") { if (prefix) found.add(prefix); return; }
  if (Array.isArray(value)) { // a short vector (a box) by position; a list of records by its first
    if (value.length && value.length <= 8 && typeof value[0] === "number") value.forEach((v, i) => numericPaths(v, `${prefix}.${i}`, found));
    else if (value.length && value[0] && typeof value[0] === "object") numericPaths(value[0], prefix + ".0", found);
    return;
  }
  if (value && typeof value === "object" && prefix.split(".").length < 5) for (const [k, v] of Object.entries(value)) numericPaths(v, prefix ? `${prefix}.${k}` : k, found);
}

function valueAt(data, dotted) {
  let value = data;
  for (const part of dotted.split(".")) value = value === null || value === undefined ? undefined : value[part];
  return value;
}

function tile(jobId, item, sort) {
  const thumb = item.outputs && item.outputs.thumb;
  const picture = thumb ? el("img", { src: thumb, alt: item.name }) : el("div", { class: "noimg", text: item.status === "failed" ? item.error || "failed" : item.status === "pending" ? "pending" : "no thumbnail" });
  const value = sort ? valueAt(item.data, sort.replace(/^-/, "")) : undefined;
  return el("a", { class: "tile " + item.status, href: `#/job/${encodeURIComponent(jobId)}/item/${item.index}`, "data-index": item.index },
    picture, el("div", { class: "name", title: item.name, text: `${item.index} · ${item.name}` }),
    value !== undefined ? el("div", { class: "value", text: `${sort.replace(/^-/, "")} = ${value}` }) : null);
}
