// The Fovea console: a client of the public API (/v1), like the CLI. No framework, no build step.
// Every piece of text that comes from a user or a job (file names, captions, class names, errors) is
// set with textContent, never parsed as HTML; the page's CSP allows no inline script.
"use strict";

const KEY_STORE = "fovea.apiKey";
const POLL_MS = 2000;
const PAGE_SIZE = 48;
const LIVE = new Set(["queued", "running"]);
const IMAGE_URL = /\.(png|jpe?g|gif|webp)(?:[?&#]|$)/i;

let view = { timers: [], alive: true };

// ---- small helpers -------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
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
function fill(node, ...children) { node.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false)); }

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  return node;
}

function apiKey() { return localStorage.getItem(KEY_STORE) || ""; }

async function api(method, path, body) {
  const headers = {};
  if (apiKey()) headers.Authorization = "Bearer " + apiKey();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.message) || response.status + " " + response.statusText);
    error.status = response.status;
    error.body = data;
    throw error;
  }
  return data;
}

function every(ms, fn) {
  const run = async () => { if (view.alive) { try { await fn(); } catch (e) { showError(e); } } };
  view.timers.push(setInterval(run, ms));
}

function showError(error) {
  const box = document.getElementById("fatal");
  box.hidden = !error;
  box.textContent = error ? (error.status === 404 ? "Not found (for this API key): " : "") + String(error.message || error) : "";
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
function fixed(value, digits) { return typeof value === "number" ? value.toFixed(digits) : "—"; }

function progressBar(job) {
  const p = job.progress || {};
  const finished = (p.done || 0) + (p.failed || 0);
  const share = p.total ? Math.min(1, finished / p.total) : (job.status === "succeeded" ? 1 : 0);
  const fill = el("span");
  fill.style.width = (share * 100).toFixed(1) + "%";
  const bar = el("span", { class: "bar" + (share >= 1 ? " done" : ""), role: "progressbar", "aria-valuenow": Math.round(share * 100), "aria-valuemin": 0, "aria-valuemax": 100 }, fill);
  const label = p.total ? `${finished} / ${p.total} (${Math.round(share * 100)}%)` : `${finished} / ?`;
  return el("span", { class: "progress" }, bar, " ", el("span", { class: "pct", text: label }));
}

function statusTag(status) { return el("span", { class: "status " + status, text: status }); }

// ---- the key --------------------------------------------------------------------------------------

function setupKey() {
  const input = document.getElementById("api-key");
  const state = document.getElementById("key-state");
  const show = () => { state.textContent = apiKey() ? "key set" : "no key: loopback acts as the local tenant"; input.value = ""; };
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) localStorage.setItem(KEY_STORE, input.value.trim());
    show();
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => { localStorage.removeItem(KEY_STORE); show(); route(); });
  show();
}

// ---- the OpenAPI document: kinds and their schemas ------------------------------------------------

let openapi = null;
async function specSchemas() {
  if (!openapi) openapi = await (await fetch("/openapi.json")).json();
  const schemas = openapi.components.schemas;
  const kinds = {};
  for (const [name, schema] of Object.entries(schemas)) {
    const kind = schema.properties && schema.properties.kind;
    const value = kind && (kind.const || (kind.enum && kind.enum.length === 1 && kind.enum[0]));
    if (value && schema.properties.kind && name.endsWith("Spec")) kinds[value] = schema;
  }
  return { kinds, schemas };
}

function resolve(schema, schemas) {
  let s = schema || {};
  if (s.$ref) s = Object.assign({}, schemas[s.$ref.split("/").pop()], { description: s.description || schemas[s.$ref.split("/").pop()].description, default: s.default });
  if (s.allOf && s.allOf.length === 1) s = Object.assign({}, resolve(s.allOf[0], schemas), { description: s.description, default: s.default });
  const options = s.anyOf || s.oneOf;
  if (options) {
    const real = options.filter((o) => o.type !== "null");
    const nullable = real.length < options.length;
    if (real.length === 1) return Object.assign({}, resolve(real[0], schemas), { description: s.description || real[0].description, default: s.default, nullable, title: s.title });
    return Object.assign({}, s, { nullable, complex: true });
  }
  return s;
}

// ---- views ---------------------------------------------------------------------------------------

const routes = [
  [/^#\/submit$/, submitView],
  [/^#\/job\/([A-Za-z0-9_-]+)\/item\/(\d+)$/, itemView],
  [/^#\/job\/([A-Za-z0-9_-]+)(?:\?status=(ok|failed))?$/, jobView],
  [/^(#\/jobs)?$/, jobsView],
];

function route() {
  view.alive = false;
  view.timers.forEach(clearInterval);
  view = { timers: [], alive: true };
  showError(null);
  const hash = location.hash || "#/jobs";
  document.getElementById("nav-jobs").className = hash.startsWith("#/submit") ? "" : "active";
  document.getElementById("nav-submit").className = hash.startsWith("#/submit") ? "active" : "";
  const main = document.getElementById("view");
  main.replaceChildren();
  for (const [pattern, render] of routes) {
    const match = hash.match(pattern);
    if (match) { render(main, ...match.slice(1)).catch(showError); return; }
  }
  main.append(el("p", { text: "No such page." }));
}

// Jobs: every job of the tenant, newest first, live.
async function jobsView(main) {
  const status = el("select", { id: "filter-status" }, ...["", "queued", "running", "succeeded", "failed", "canceled"].map((s) => el("option", { value: s, text: s || "any status" })));
  const { kinds } = await specSchemas();
  const kind = el("select", { id: "filter-kind" }, el("option", { value: "", text: "any kind" }), ...Object.keys(kinds).sort().map((k) => el("option", { value: k, text: k })));
  const cursors = [null];
  const older = el("button", { id: "older", text: "Older →" });
  const newer = el("button", { id: "newer", text: "← Newer" });
  const where = el("span", { class: "muted" });
  const body = el("tbody", { id: "jobs-body" });
  const table = el("table", { id: "jobs" },
    el("thead", {}, el("tr", {}, ...["Job", "Kind", "Status", "Progress", "Items/s", "ETA", "Failed", "Created", "Finished", ""].map((h) => el("th", { text: h })))), body);
  main.append(el("h1", { text: "Jobs" }), el("div", { class: "toolbar" }, status, kind, newer, older, where), table);
  let next = null;

  async function load() {
    const params = new URLSearchParams({ order: "newest", limit: "50" });
    if (status.value) params.set("status", status.value);
    if (kind.value) params.set("kind", kind.value);
    if (cursors[cursors.length - 1]) params.set("cursor", cursors[cursors.length - 1]);
    const page = await api("GET", "/v1/jobs?" + params);
    if (!view.alive) return;
    next = page.next_cursor;
    older.disabled = !next;
    newer.disabled = cursors.length === 1;
    where.textContent = `page ${cursors.length}`;
    body.replaceChildren(...page.items.map(jobRow));
    if (!page.items.length) body.append(el("tr", {}, el("td", { colspan: 10, class: "muted", text: "No jobs." })));
  }

  function jobRow(job) {
    const cancel = LIVE.has(job.status) ? el("button", { class: "cancel", "data-job": job.id, text: "Cancel", onclick: async (e) => {
      e.target.disabled = true;
      try { await api("POST", `/v1/jobs/${encodeURIComponent(job.id)}/cancel`); } catch (err) { showError(err); }
      await load();
    } }) : null;
    return el("tr", { "data-job": job.id, "data-status": job.status },
      el("td", {}, el("a", { href: `#/job/${encodeURIComponent(job.id)}`, text: job.name || job.id }), job.name ? el("div", { class: "muted", text: job.id }) : null),
      el("td", { text: job.kind }),
      el("td", {}, statusTag(job.status)),
      el("td", {}, progressBar(job)),
      el("td", { class: "num", text: fixed(job.items_per_second, 2) }),
      el("td", { class: "num", text: LIVE.has(job.status) ? duration(job.eta_seconds) : "—" }),
      el("td", { class: "num", text: (job.progress && job.progress.failed) || 0 }),
      el("td", { text: when(job.created_at) }),
      el("td", { text: when(job.finished_at) }),
      el("td", {}, cancel));
  }

  status.addEventListener("change", () => { cursors.splice(1); load().catch(showError); });
  kind.addEventListener("change", () => { cursors.splice(1); load().catch(showError); });
  older.addEventListener("click", () => { if (next) { cursors.push(next); load().catch(showError); } });
  newer.addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); load().catch(showError); } });
  await load();
  every(POLL_MS, load);
}

// Submit: a form per kind, made from the kind's JSON schema in the OpenAPI document.
async function submitView(main) {
  const { kinds, schemas } = await specSchemas();
  const names = Object.keys(kinds).sort();
  const picker = el("select", { id: "kind" }, ...names.map((k) => el("option", { value: k, text: k })));
  picker.value = names.includes("saliency") ? "saliency" : names[0];
  const holder = el("div");
  main.append(el("h1", { text: "Submit a job" }), el("div", { class: "toolbar" }, el("label", { for: "kind", text: "Kind" }), picker), holder);
  const render = () => holder.replaceChildren(specForm(picker.value, kinds[picker.value], schemas));
  picker.addEventListener("change", render);
  render();
}

function specForm(kind, schema, schemas) {
  const fields = {};
  const required = new Set(schema.required || []);
  const form = el("form", { class: "spec", id: "spec-form", novalidate: true });
  const general = el("p", { class: "error", id: "form-error" });
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    if (name === "kind") continue;
    const prop = resolve(raw, schemas);
    const id = "field-" + name;
    let input;
    let read;
    if (prop.enum && !prop.complex) {
      input = el("select", { id, name }, el("option", { value: "", text: prop.default !== undefined ? `default (${prop.default})` : "—" }), ...prop.enum.map((v) => el("option", { value: v, text: v })));
      read = () => input.value || undefined;
    } else if (prop.type === "boolean" && !prop.complex) {
      input = el("input", { id, name, type: "checkbox", checked: prop.default === true });
      read = () => (input.checked === (prop.default === true) ? undefined : input.checked);
    } else if ((prop.type === "integer" || prop.type === "number") && !prop.complex) {
      input = el("input", { id, name, type: "number", step: prop.type === "integer" ? "1" : "any", placeholder: prop.default !== undefined && prop.default !== null ? String(prop.default) : "" });
      read = () => (input.value === "" ? undefined : Number(input.value));
    } else if (prop.type === "string" && !prop.complex) {
      input = el("input", { id, name, type: "text", placeholder: prop.default !== undefined && prop.default !== null ? String(prop.default) : "" });
      read = () => input.value.trim() || undefined;
    } else {
      input = el("textarea", { id, name, placeholder: prop.default !== undefined ? JSON.stringify(prop.default) : "JSON" });
      read = () => {
        const text = input.value.trim();
        if (!text) return undefined;
        try { return JSON.parse(text); } catch (e) { return text; } // a plain string (\"predicted\", say): the API judges it
      };
    }
    const error = el("span", { class: "error", id: "error-" + name });
    const help = [prop.description, prop.default !== undefined ? `default: ${JSON.stringify(prop.default)}` : null].filter(Boolean).join(" · ");
    fields[name] = { input, read, error };
    input.addEventListener("input", () => { error.textContent = ""; input.classList.remove("invalid"); });
    form.append(el("label", { for: id, text: name + (required.has(name) ? " *" : "") }), el("div", { class: "field" }, input, el("small", { text: help }), error));
  }
  const button = el("button", { class: "primary", type: "submit", id: "submit-job", text: "Submit" });
  form.append(el("span"), el("div", {}, button, general));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    Object.values(fields).forEach((f) => { f.error.textContent = ""; f.input.classList.remove("invalid"); });
    general.textContent = "";
    const body = { kind };
    for (const [name, field] of Object.entries(fields)) { const value = field.read(); if (value !== undefined) body[name] = value; }
    button.disabled = true;
    try {
      const job = await api("POST", "/v1/jobs", body);
      location.hash = `#/job/${encodeURIComponent(job.id)}`;
    } catch (error) {
      const named = (error.body && error.body.error && error.body.error.fields) || [];
      let placed = false;
      for (const item of named) {
        const top = String(item.field).split(".").find((part) => part in fields && part !== "body");
        if (top) { fields[top].error.textContent = `${item.field}: ${item.message}`; fields[top].input.classList.add("invalid"); placed = true; }
      }
      if (!placed) general.textContent = error.message;
    } finally { button.disabled = false; }
  });
  const wrap = el("div");
  if (fields.input) wrap.append(dropZone(fields.input.input));
  wrap.append(form);
  return wrap;
}

// An archive dropped (or chosen) is uploaded through the presigned URL, with progress; its upload://
// URI then fills the input field.
function dropZone(target) {
  const bar = el("span", { class: "bar", id: "upload-bar" }, el("span"));
  const label = el("span", { id: "upload-state", class: "muted", text: "Drop an archive (tar, tar.gz, zip) here, or " });
  const chooser = el("input", { type: "file", id: "archive", accept: ".tar,.tgz,.gz,.zip" });
  const zone = el("div", { class: "drop", id: "drop" }, label, chooser, " ", bar);
  const send = async (file) => {
    label.textContent = `Uploading ${file.name} … `;
    try {
      const upload = await api("POST", "/v1/uploads", { filename: file.name, size: file.size });
      await new Promise((resolveUpload, reject) => {
        const request = new XMLHttpRequest();
        request.open("PUT", upload.put_url);
        request.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.firstChild.style.width = (100 * e.loaded / e.total).toFixed(1) + "%"; });
        request.addEventListener("load", () => (request.status < 300 ? resolveUpload() : reject(new Error(`upload refused: ${request.status}`))));
        request.addEventListener("error", () => reject(new Error("upload failed")));
        request.send(file);
      });
      bar.firstChild.style.width = "100%";
      bar.classList.add("done");
      target.value = upload.uri;
      target.dispatchEvent(new Event("input"));
      label.textContent = `Uploaded ${file.name} as ${upload.uri}. `;
    } catch (error) { label.textContent = `Upload of ${file.name} failed: ${error.message}. `; }
  };
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]); });
  chooser.addEventListener("change", () => { if (chooser.files[0]) send(chooser.files[0]); });
  return zone;
}

// A job: its record (live), its summary and pictures, its gallery over the whole manifest.
async function jobView(main, jobId, status) {
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
        el("span", { text: `${fixed(job.items_per_second, 2)} items/s` }),
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
    if (!view.alive) return;
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
    if (!view.alive) return;
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

async function curves(url) {
  const text = await (await fetch(url)).text();
  const rows = text.split("\n").filter(Boolean).map((line) => { try { return JSON.parse(line); } catch (e) { return null; } }).filter(Boolean);
  const series = {};
  rows.forEach((row, i) => { for (const [k, v] of Object.entries(row)) if (typeof v === "number" && !["step", "epoch", "seconds", "time"].includes(k)) (series[k] = series[k] || []).push([row.step ?? row.epoch ?? i, v]); });
  const width = 640, height = 220, pad = 30;
  const chart = svg("svg", { class: "curves", id: "curves", width, height, viewBox: `0 0 ${width} ${height}` });
  const colours = ["#1f5fbf", "#b42318", "#17803d", "#b54708", "#6941c6", "#0e7090"];
  Object.entries(series).slice(0, 6).forEach(([name, points], n) => {
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const sx = (x) => pad + (x1 > x0 ? (x - x0) / (x1 - x0) : 0) * (width - 2 * pad);
    const sy = (y) => height - pad - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (height - 2 * pad);
    chart.append(svg("polyline", { points: points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "), fill: "none", stroke: colours[n], "stroke-width": 1.5 }));
    const label = svg("text", { x: pad + 4, y: 14 + 13 * n, fill: colours[n] });
    label.textContent = `${name}: ${ys[ys.length - 1].toPrecision(4)} (${y0.toPrecision(3)}–${y1.toPrecision(3)})`;
    chart.append(label);
  });
  return chart;
}

// An item: every output side by side at full size, the methods of a comparison in rows, its data.
async function itemView(main, jobId, index) {
  const page = await api("GET", `/v1/jobs/${encodeURIComponent(jobId)}/results?offset=${Number(index)}&limit=1`);
  const item = page.items[0];
  const back = el("a", { href: `#/job/${encodeURIComponent(jobId)}`, text: "← the job" });
  if (!item) { main.append(back, el("p", { text: "No such item." })); return; }
  const nav = el("div", { class: "toolbar" }, back,
    Number(index) > 0 ? el("a", { id: "prev-item", href: `#/job/${encodeURIComponent(jobId)}/item/${Number(index) - 1}`, text: "← previous item" }) : null,
    page.next_offset !== null ? el("a", { id: "next-item", href: `#/job/${encodeURIComponent(jobId)}/item/${Number(index) + 1}`, text: "next item →" }) : null);
  const figure = ([name, url]) => el("figure", { "data-output": name },
    IMAGE_URL.test(url) ? el("img", { src: url, alt: name }) : el("a", { href: url, text: `download ${name}` }), el("figcaption", { text: name }));
  const outputs = Object.entries(item.outputs || {}).filter(([name]) => name !== "thumb");
  const methods = Object.keys((item.data && item.data.methods) || {});
  let shown;
  if (methods.length) {
    const plain = outputs.filter(([name]) => !name.includes(":"));
    shown = el("div", { class: "methods", id: "methods" },
      plain.length ? el("div", { class: "outputs" }, ...plain.map(figure)) : null,
      ...methods.map((method) => el("section", { "data-method": method }, el("h2", { text: method }),
        el("div", { class: "outputs" }, ...outputs.filter(([name]) => name.endsWith(":" + method)).map(figure)))));
  } else {
    shown = el("div", { class: "outputs", id: "outputs" }, ...outputs.map(figure));
  }
  fill(main, nav, el("h1", { id: "item-name", text: item.name }),
    el("p", {}, statusTag(item.status), ` · item ${item.index}`),
    item.error ? el("p", { class: "error", id: "item-error", text: item.error }) : null,
    shown, el("h2", { text: "Manifest data" }), el("pre", { class: "data", id: "item-data", text: JSON.stringify(item.data, null, 2) }));
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => { setupKey(); route(); });
