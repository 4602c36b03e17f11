// The Fovea console: a client of the public API (/v1), like the CLI. No framework, no build step: ES
// modules served as they are. Every piece of text that comes from a user or a job is set with
// textContent, never parsed as HTML; the page's CSP allows no inline script.

import { apiKey, setKey } from "./api.js";
import { el } from "./dom.js";
import { itemView } from "./item.js";
import { jobView } from "./job.js";
import { jobsView } from "./jobs.js";
import { newView, showError } from "./page.js";
import { submitView } from "./submit.js";

function setupKey() {
  const input = document.getElementById("api-key");
  const state = document.getElementById("key-state");
  const show = () => { state.textContent = apiKey() ? "key set" : "no key: loopback acts as the local tenant"; input.value = ""; };
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) setKey(input.value.trim());
    show();
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => { setKey(null); show(); route(); });
  show();
}

const routes = [
  [/^#\/submit$/, submitView],
  [/^#\/job\/([A-Za-z0-9_-]+)\/item\/(\d+)$/, itemView],
  [/^#\/job\/([A-Za-z0-9_-]+)(?:\?status=(ok|failed))?$/, jobView],
  [/^(#\/jobs)?$/, jobsView],
];

function route() {
  newView();
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

window.addEventListener("hashchange", route);
setupKey();
route();
