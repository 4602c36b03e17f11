import { api } from "./api.js";
import { IMAGE_URL, el, fill, statusTag } from "./dom.js";

// An item: every output side by side at full size, the methods of a comparison in rows, its data.
export async function itemView(main, jobId, index) {
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
