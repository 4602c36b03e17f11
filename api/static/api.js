// The public API (/v1) with the key the page keeps, and the kinds' JSON schemas from the OpenAPI document.

const KEY_STORE = "fovea.apiKey";

export function apiKey() { return localStorage.getItem(KEY_STORE) || ""; }

export async function api(method, path, body) {
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

export function setKey(key) { if (key) localStorage.setItem(KEY_STORE, key); else localStorage.removeItem(KEY_STORE); }

let openapi = null;
export async function specSchemas() {
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

export function resolve(schema, schemas) {
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
