// The console's entry: sign-in, the frame around every page and the
// router. Pages are modules with a render(main, params, ctx) function;
// a page added later is one entry in routes below and one item in the nav.
import { api, credential, signIn, signOut, onUnauthorized } from "./api.js";
import { h, replace, errorNotice, ago } from "./dom.js";
import * as subscriptions from "./subscriptions.js";
import * as form from "./form.js";
import * as deadLetters from "./deadletters.js";
import * as eventTypes from "./eventtypes.js";
import * as logs from "./logs.js";
import * as events from "./events.js";
import * as overview from "./overview.js";

const app = document.getElementById("app");

// routes: hash path pattern -> page. ":x" is a parameter.
const routes = [
  ["/subscriptions", subscriptions.list, "subscriptions"],
  ["/subscriptions/new", form.create, "subscriptions"],
  ["/subscriptions/:id", subscriptions.detail, "subscriptions"],
  ["/subscriptions/:id/edit", form.edit, "subscriptions"],
  ["/subscriptions/:id/logs", logs.tab, "subscriptions"],
  ["/deliveries/:id", logs.delivery, "subscriptions"],
  ["/events", events.list, "events"],
  ["/events/:id", events.detail, "events"],
  ["/overview", overview.page, "overview"],
  ["/dead-letters", deadLetters.list, "dead-letters"],
  ["/dead-letters/:id", deadLetters.detail, "dead-letters"],
  ["/event-types", eventTypes.list, "event-types"],
];

const nav = [
  ["overview", "Overview", "#/overview"],
  ["subscriptions", "Endpoints", "#/subscriptions"],
  ["events", "Events", "#/events"],
  ["dead-letters", "Dead letters", "#/dead-letters"],
  ["event-types", "Event types", "#/event-types"],
];

let session = null; // GET /v1/session: who is signed in
let rendering = 0;

function match(path) {
  const parts = path.split("/").filter(Boolean);
  for (const [pattern, page, tab] of routes) {
    const want = pattern.split("/").filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    if (want.every((w, i) => (w.startsWith(":") ? ((params[w.slice(1)] = decodeURIComponent(parts[i])), true) : w === parts[i]))) {
      return { page, tab, params };
    }
  }
  return null;
}

// location: "#/path?query" -> {path, query}
function location() {
  const raw = window.location.hash.replace(/^#/, "") || "/subscriptions";
  const [path, query] = raw.split("?");
  return { path: path || "/subscriptions", query: new URLSearchParams(query || "") };
}

async function render() {
  const n = ++rendering;
  if (!credential()) return showSignIn();
  if (!session) {
    try {
      session = await api("GET", "/v1/session");
    } catch (err) {
      if (err.status === 401) return; // onUnauthorized shows why
      replace(app, h("main", { id: "main" }, errorNotice(err, "The console could not reach Hookline")));
      return;
    }
  }
  const loc = location();
  const m = match(loc.path);
  const main = h("main", { id: "main", tabindex: "-1" });
  replace(app, frame(m ? m.tab : ""), main);
  if (!m) {
    replace(main, h("div", { class: "empty" }, h("h2", {}, "No such page"), h("p", {}, h("a", { href: "#/subscriptions" }, "Go to the endpoints"))));
    return;
  }
  const ctx = { session, query: loc.query, stale: () => n !== rendering, go };
  try {
    await m.page(main, m.params, ctx);
  } catch (err) {
    if (n === rendering && err.status !== 401) replace(main, errorNotice(err, "This page could not be loaded"));
  }
  const heading = main.querySelector("h1");
  if (heading && document.activeElement === document.body) heading.setAttribute("tabindex", "-1");
  document.title = (heading ? heading.textContent + " · " : "") + "Hookline console";
}

// go navigates to a hash route.
function go(hash) {
  if (window.location.hash === hash) render();
  else window.location.hash = hash;
}

function frame(tab) {
  const who = session.kind === "portal"
    ? h("span", { title: "Portal session of tenant " + session.tenant }, "Portal · ", h("strong", {}, session.tenant), " · ends ", ago(session.expires_at))
    : h("span", {}, "Tenant ", h("strong", {}, session.tenant));
  return h("header", { class: "top" },
    h("a", { class: "brand", href: "#/subscriptions" }, h("img", { src: "favicon.svg", alt: "" }), "Hookline"),
    h("nav", { class: "tabs", "aria-label": "Sections" },
      nav.map(([id, label, href]) => h("a", { href, "aria-current": id === tab ? "page" : undefined }, label))),
    h("div", { class: "who" }, who,
      session.kind === "portal" ? null : h("button", { type: "button", class: "link", onclick: () => { signOut(); session = null; render(); } }, "Sign out")));
}

function showSignIn(reason) {
  const input = h("input", { type: "password", id: "apikey", autocomplete: "off", required: true, spellcheck: "false" });
  const status = h("div");
  const f = h("form", { class: "panel", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to Hookline"),
    h("p", { class: "muted" }, "Operators sign in with their tenant's API key. Customers open the portal link their provider gave them."),
    reason ? h("div", { class: "notice error", role: "alert" }, reason) : null,
    h("div", { class: "field" }, h("label", { for: "apikey" }, "API key"), input,
      h("p", { class: "hint" }, "Kept in this tab only (sessionStorage) and sent as Authorization: Bearer; closing the tab signs you out.")),
    status,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    signIn(input.value.trim());
    session = null;
    try {
      session = await api("GET", "/v1/session");
      if (!window.location.hash) window.location.hash = "#/subscriptions";
      render();
    } catch (err) {
      signOut();
      if (err.status !== 401) replace(status, errorNotice(err));
    }
  });
  replace(app, h("main", { id: "main", class: "signin" }, f));
  input.focus();
}

// A portal link carries its token in the fragment (#portal=...): it never
// reaches a server log or a Referer header. It is kept for this tab and
// taken out of the address bar at once.
function takePortalToken() {
  const m = window.location.hash.match(/^#portal=([A-Za-z0-9_.-]+)/);
  if (!m) return;
  signIn(m[1]);
  session = null;
  history.replaceState(null, "", window.location.pathname + "#/subscriptions");
}

onUnauthorized((err) => {
  const portal = credential().startsWith("hlp_");
  signOut();
  session = null;
  const expired = err.problem && String(err.problem.type || "").endsWith("/portal-expired");
  if (portal) {
    replace(app, h("main", { id: "main", class: "signin" }, h("div", { class: "panel", role: "alert" },
      h("h1", {}, expired ? "This link has expired" : "This link is not valid"),
      h("p", { class: "muted" }, (err.problem && err.problem.detail) || "Ask for a new link where you opened this one."))));
    return;
  }
  showSignIn((err.problem && err.problem.detail) || "Your API key was refused.");
});

// Keyboard: "/" focuses the page's search or first field, "n" starts a
// new endpoint, "g o" / "g e" / "g v" / "g d" / "g t" go to a section,
// "l" opens the Logs tab of the endpoint shown.
let pendingG = false;
document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey || (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)))) return;
  if (pendingG) {
    pendingG = false;
    const dest = { o: "#/overview", e: "#/subscriptions", v: "#/events", d: "#/dead-letters", t: "#/event-types" }[e.key];
    if (dest) { e.preventDefault(); go(dest); }
    return;
  }
  if (e.key === "g") pendingG = true;
  else if (e.key === "n" && session && session.can_create) { e.preventDefault(); go("#/subscriptions/new"); }
  else if (e.key === "l" && /^#\/subscriptions\/[^/]+$/.test(window.location.hash) && window.location.hash !== "#/subscriptions/new") {
    e.preventDefault();
    go(window.location.hash + "/logs");
  }
  else if (e.key === "/") {
    const f = document.querySelector("main input, main select");
    if (f) { e.preventDefault(); f.focus(); }
  }
});

window.addEventListener("hashchange", () => { takePortalToken(); render(); });
takePortalToken();
render();

