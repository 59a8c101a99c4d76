// The API client. The credential (an API key, or a portal token) lives in
// sessionStorage of this tab only and travels in the Authorization
// header, never in a cookie: a request another site makes the browser send
// carries no credential, so no cross-site request can act (no CSRF).

const KEY = "hookline.credential";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function credential() {
  try { return sessionStorage.getItem(KEY) || memory; } catch { return memory; }
}

// memory keeps the credential where sessionStorage is refused (some
// embedding contexts block storage): the session then lasts the page.
let memory = "";

export function signIn(value) {
  memory = value;
  try { sessionStorage.setItem(KEY, value); } catch { /* memory only */ }
}

export function signOut() {
  memory = "";
  try { sessionStorage.removeItem(KEY); } catch { /* nothing kept */ }
}

// onUnauthorized is called when the API refuses the credential.
let unauthorized = () => {};
export function onUnauthorized(fn) { unauthorized = fn; }

// api calls the API and returns the decoded JSON (null for 204). A
// problem answer throws an ApiError holding its problem details.
export async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + credential(), Accept: "application/json" };
  const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { title: "Network error", detail: "Hookline could not be reached: " + e.message });
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text.slice(0, 300) }; }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    if (resp.status === 401) unauthorized(err);
    throw err;
  }
  return data;
}

// qs builds a query string of the set values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}
