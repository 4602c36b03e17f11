import { api, specSchemas } from "./api.js";
import { LIVE, duration, el, fixed, progressBar, statusTag, when } from "./dom.js";
import { POLL_MS, every, showError, thisView } from "./page.js";

// Jobs: every job of the tenant, newest first, live.
export async function jobsView(main) {
  const mine = thisView();
  const status = el("select", { id: "filter-status" }, ...["", "queued", "running", "succeeded", "failed", "canceled"].map((s) => el("option", { value: s, text: s || "any status" })));
  const { kinds } = await specSchemas();
  const kind = el("select", { id: "filter-kind" }, el("option", { value: "", text: "any kind" }), ...Object.keys(kinds).sort().map((k) => el("option", { value: k, text: k })));
  const cursors = [null];
  const older = el("button", { id: "older", text: "Older →" });
  const newer = el("button", { id: "newer", text: "← Newer" });
  const where = el("span", { class: "muted" });
  const body = el("tbody", { id: "jobs-body" });
  const table = el("table", { id: "jobs" },
    el("thead", {}, el("tr", {}, ...["Job", "Kind", "Status", "Progress", "Rate", "ETA", "Failed", "Created", "Finished", ""].map((h) => el("th", { text: h })))), body);
  main.append(el("h1", { text: "Jobs" }), el("div", { class: "toolbar" }, status, kind, newer, older, where), table);
  let next = null;

  async function load() {
    const params = new URLSearchParams({ order: "newest", limit: "50" });
    if (status.value) params.set("status", status.value);
    if (kind.value) params.set("kind", kind.value);
    if (cursors[cursors.length - 1]) params.set("cursor", cursors[cursors.length - 1]);
    const page = await api("GET", "/v1/jobs?" + params);
    if (!mine.alive) return;
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
      // A training job's progress counts epochs, a map job's items.
      el("td", { class: "num", text: job.items_per_second === null || job.items_per_second === undefined ? "—" : `${fixed(job.items_per_second, 2)} ${job.kind.endsWith("_train") ? "epochs" : "items"}/s` }),
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
