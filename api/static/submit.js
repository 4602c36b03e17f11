import { api, resolve, specSchemas } from "./api.js";
import { el } from "./dom.js";

// Submit: a form per kind, made from the kind's JSON schema in the OpenAPI document.
export async function submitView(main) {
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
