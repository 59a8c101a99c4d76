// The endpoints (subscriptions): the list with each one's health, and one
// endpoint's page with its settings and actions.
import { api, qs } from "./api.js";
import { h, replace, when, ago, badge, copyButton, emptyState, errorNotice, pretty, toast } from "./dom.js";

const healthLabel = { healthy: "Healthy", failing: "Failing", critical: "Critical", disabled: "Disabled", unknown: "Unknown" };

// healthCell shows a state and since when.
export function healthBadge(hv) {
  if (!hv) return badge("unknown", "Unknown");
  const parts = [badge(hv.state, healthLabel[hv.state] || hv.state)];
  if (hv.state !== "healthy" && hv.since) parts.push(h("div", { class: "small muted", title: when(hv.since) }, "since ", ago(hv.since)));
  if (hv.state === "healthy" && hv.consecutive_failures > 0) {
    parts.push(h("div", { class: "small muted" }, hv.consecutive_failures, " failure", hv.consecutive_failures > 1 ? "s" : "", " in a row"));
  }
  return parts;
}

export function title(sub) {
  return sub.name || sub.url.replace(/^https?:\/\//, "");
}

export async function list(main, _params, ctx) {
  const cursor = ctx.query.get("cursor") || "";
  const page = await api("GET", "/v1/subscriptions" + qs({ limit: 50, cursor }));
  if (ctx.stale()) return;
  const create = ctx.session.can_create ? h("a", { class: "button primary", href: "#/subscriptions/new", "aria-keyshortcuts": "n" }, "New endpoint") : null;
  const head = h("div", { class: "pagehead" },
    h("div", {}, h("h1", {}, "Endpoints"), h("p", { class: "sub" }, "Where Hookline sends webhooks, and how each is doing.")),
    h("div", { class: "actions" }, create));
  if (page.data.length === 0 && !cursor) {
    replace(main, head, emptyState("No endpoints yet",
      ctx.session.can_create ? "Add an endpoint to start receiving webhooks: pick the event types it wants and, if you like, conditions on their data." : "This link shows no endpoints.",
      create));
    return;
  }
  const rows = page.data.map((s) => h("tr", {},
    h("td", {}, h("a", { class: "name", href: "#/subscriptions/" + encodeURIComponent(s.id) }, title(s)),
      h("div", { class: "small muted mono" }, s.id)),
    h("td", { class: "url mono small" }, s.url),
    h("td", {}, s.event_types.slice(0, 4).map((t) => h("span", { class: "chip" }, t)),
      s.event_types.length > 4 ? h("span", { class: "muted small" }, "+", s.event_types.length - 4) : null),
    h("td", {}, healthBadge(s.health)),
    h("td", { class: "small muted", title: when(s.created_at) }, ago(s.created_at))));
  const pager = h("div", { class: "pager" },
    h("span", {}, page.data.length, " endpoint", page.data.length === 1 ? "" : "s", " on this page"),
    h("span", {},
      cursor ? h("a", { class: "button", href: "#/subscriptions" }, "First page") : null, " ",
      page.next_cursor ? h("a", { class: "button", href: "#/subscriptions?cursor=" + encodeURIComponent(page.next_cursor) }, "Next page") : null));
  replace(main, head,
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, "Endpoint"), h("th", {}, "URL"), h("th", {}, "Event types"), h("th", {}, "Health"), h("th", {}, "Created"))),
      h("tbody", {}, rows)),
    pager);
}

// shownSecret holds a signing secret between the create or rotate answer
// and the page that shows it once; it is never stored.
let shownSecret = null;
export function showSecretOnce(id, secret, why) { shownSecret = { id, secret, why }; }

export async function detail(main, params, ctx) {
  const sub = await api("GET", "/v1/subscriptions/" + encodeURIComponent(params.id));
  if (ctx.stale()) return;
  const notices = h("div");
  const result = h("div");
  if (shownSecret && shownSecret.id === sub.id) {
    replace(notices, secretNotice(shownSecret.secret, shownSecret.why));
    shownSecret = null;
  }
  const reload = () => ctx.go("#/subscriptions/" + encodeURIComponent(sub.id));
  const act = (label, fn, cls = "") => h("button", { type: "button", class: cls, onclick: async (e) => {
    const b = e.currentTarget;
    b.disabled = true;
    try { await fn(); } catch (err) { replace(notices, errorNotice(err)); } finally { b.disabled = false; }
  } }, label);

  const sendTest = act("Send test event", async () => {
    replace(result, h("div", { class: "notice" }, "Sending a test event and waiting for the endpoint's answer…"));
    try {
      const a = await api("POST", "/v1/subscriptions/" + encodeURIComponent(sub.id) + "/test?wait=true");
      replace(result, testResult(a));
    } catch (err) {
      replace(result, errorNotice(err, "The test event was not sent"));
    }
  });
  const toggle = sub.enabled
    ? act("Disable", async () => { await api("PATCH", "/v1/subscriptions/" + encodeURIComponent(sub.id), { enabled: false }); toast("Endpoint disabled"); reload(); })
    : act("Enable", async () => { await api("PATCH", "/v1/subscriptions/" + encodeURIComponent(sub.id), { enabled: true }); toast("Endpoint enabled"); reload(); }, "primary");
  const confirmArea = h("div");
  const rotate = h("button", { type: "button", onclick: () => replace(confirmArea, rotateConfirm(sub, confirmArea, reload, notices)) }, "Rotate secret");
  const del = h("button", { type: "button", class: "danger", onclick: () => replace(confirmArea, deleteConfirm(sub, confirmArea, ctx, notices)) }, "Delete");

  replace(main,
    h("div", { class: "crumbs" }, h("a", { href: "#/subscriptions" }, "Endpoints"), " / ", sub.id),
    h("div", { class: "pagehead" },
      h("div", {}, h("h1", {}, title(sub)), h("p", { class: "sub mono wrap" }, sub.url)),
      h("div", { class: "actions" },
        h("a", { class: "button", href: "#/subscriptions/" + encodeURIComponent(sub.id) + "/edit" }, "Edit"),
        h("a", { class: "button", href: "#/subscriptions/" + encodeURIComponent(sub.id) + "/logs" }, "Logs"),
        sub.enabled ? sendTest : null, toggle, rotate, del)),
    notices, confirmArea, result,
    h("div", { class: "grid2" },
      h("div", {}, healthPanel(sub), settingsPanel(sub)),
      h("div", {}, matchingPanel(sub), deliveryPanel(sub))),
    h("div", { class: "panel" }, h("h2", {}, "Dead letters"),
      h("p", { class: "muted" }, "Deliveries to this endpoint that were given up. "),
      h("a", { class: "button", href: "#/dead-letters?subscription_id=" + encodeURIComponent(sub.id) }, "Show its dead letters")));
}

function secretNotice(secret, why) {
  return h("div", { class: "notice ok", role: "status" },
    h("h3", {}, why),
    h("div", {}, "Copy the signing secret now: it is not shown again. Your endpoint verifies each webhook's signature with it."),
    h("div", { class: "secret" }, h("code", { id: "secret" }, secret), copyButton(secret)));
}

function testResult(a) {
  if (!a.result) {
    return h("div", { class: "notice warn", role: "status" },
      h("h3", {}, "Test event sent"),
      h("div", {}, "The endpoint's answer did not arrive within the wait; delivery ", h("code", {}, a.delivery_id), " goes on in the background."));
  }
  const r = a.result;
  const ok = r.outcome === "delivered";
  return h("div", { class: "notice " + (ok ? "ok" : "error"), role: "status", id: "test-result" },
    h("h3", {}, "Test event: ", badge(r.outcome)),
    h("dl", { class: "props" },
      h("dt", {}, "Status"), h("dd", {}, r.status_code ? String(r.status_code) : "no answer"),
      h("dt", {}, "Took"), h("dd", {}, r.duration_ms, " ms"),
      h("dt", {}, "URL"), h("dd", { class: "mono" }, r.url),
      r.error ? [h("dt", {}, "Error"), h("dd", {}, r.error)] : null,
      r.next_attempt_at ? [h("dt", {}, "Next attempt"), h("dd", {}, when(r.next_attempt_at))] : null,
      h("dt", {}, "Delivery"), h("dd", { class: "mono" }, a.delivery_id)),
    r.response ? [h("div", { class: "label", style: null }, "The endpoint answered"), h("pre", { class: "json", id: "test-response" }, pretty(r.response))] : null);
}

function rotateConfirm(sub, area, reload, notices) {
  const grace = h("select", { id: "grace" },
    h("option", { value: "86400" }, "24 hours (default)"), h("option", { value: "3600" }, "1 hour"),
    h("option", { value: "0" }, "none: the old secret stops now"), h("option", { value: "604800" }, "7 days"));
  const go = h("button", { type: "button", class: "primary", onclick: async () => {
    go.disabled = true;
    try {
      const v = await api("POST", "/v1/subscriptions/" + encodeURIComponent(sub.id) + "/secrets/rotate", { grace_seconds: Number(grace.value) });
      showSecretOnce(sub.id, v.secret, "The signing secret was rotated");
      reload();
    } catch (err) { replace(notices, errorNotice(err)); go.disabled = false; }
  } }, "Rotate now");
  return h("div", { class: "notice warn" }, h("h3", {}, "Rotate the signing secret?"),
    h("p", {}, "Webhooks are signed with the new secret and, while the old one is still valid, with both."),
    h("div", { class: "field" }, h("label", { for: "grace" }, "Keep the old secret valid for"), grace),
    h("div", { class: "row" }, h("span", {}), go, h("button", { type: "button", onclick: () => area.replaceChildren() }, "Cancel")));
}

function deleteConfirm(sub, area, ctx, notices) {
  const yes = h("button", { type: "button", class: "danger", onclick: async () => {
    yes.disabled = true;
    try {
      await api("DELETE", "/v1/subscriptions/" + encodeURIComponent(sub.id));
      toast("Endpoint deleted");
      ctx.go("#/subscriptions");
    } catch (err) { replace(notices, errorNotice(err)); yes.disabled = false; }
  } }, "Delete for good");
  return h("div", { class: "notice error" }, h("h3", {}, "Delete ", title(sub), "?"),
    h("p", {}, "Nothing more is sent to it; this cannot be undone."),
    h("div", { class: "row" }, h("span", {}), yes, h("button", { type: "button", onclick: () => area.replaceChildren() }, "Cancel")));
}

function healthPanel(sub) {
  const hv = sub.health;
  const text = !hv ? "Health is not known." :
    hv.state === "disabled" ? (hv.reason || "Disabled.") :
    hv.state === "critical" || hv.state === "failing" ? `${hv.consecutive_failures} deliveries in a row have failed. It is disabled if it keeps failing without a success for the disable window.` :
    hv.state === "unknown" ? "Health could not be read just now." :
    hv.consecutive_failures > 0 ? `${hv.consecutive_failures} failure(s) in a row so far.` : "The last deliveries succeeded, or none failed.";
  return h("div", { class: "panel", id: "health" }, h("h2", {}, "Health"),
    h("div", { class: "row" }, h("div", {}, healthBadge(hv), h("p", { class: "muted" }, text))));
}

function props(...pairs) {
  const none = (v) => v === "" || v === undefined || v === null || (Array.isArray(v) && v.length === 0);
  return h("dl", { class: "props" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, none(v) ? h("span", { class: "muted" }, "—") : v)]));
}

function kv(map) {
  const keys = Object.keys(map || {});
  if (!keys.length) return "";
  return keys.sort().map((k) => h("div", { class: "mono small" }, k, ": ", map[k]));
}

function settingsPanel(sub) {
  return h("div", { class: "panel" }, h("h2", {}, "Endpoint"), props(
    ["Name", sub.name], ["Description", sub.description], ["URL", h("span", { class: "mono" }, sub.url)],
    ["Enabled", sub.enabled ? "yes" : "no"], sub.disabled_reason ? ["Disabled because", sub.disabled_reason] : null,
    ["Metadata", kv(sub.metadata)], ["Alert emails", (sub.alert_emails || []).join(", ")],
    ["Created", when(sub.created_at)], ["Updated", when(sub.updated_at)], ["Id", h("span", { class: "mono" }, sub.id)]));
}

function matchingPanel(sub) {
  return h("div", { class: "panel" }, h("h2", {}, "What it receives"), props(
    ["Event types", sub.event_types.map((t) => h("span", { class: "chip" }, t))],
    ["Condition", sub.condition ? h("pre", { class: "json", id: "condition-json" }, JSON.stringify(sub.condition, null, 2)) : "every event of those types"],
    ["CEL expression", sub.expression ? h("code", {}, sub.expression) : ""],
    ["Payload", sub.payload === "changed" ? "changed fields only" : "the full event"],
    ["Derived fields", (sub.derive || []).map((d) => h("div", { class: "mono small" }, d.field, " = ", d.expression, d.default !== undefined ? " (default " + JSON.stringify(d.default) + ")" : ""))],
    ["Routes", (sub.routes || []).map((r) => h("div", { class: "small" }, h("code", {}, JSON.stringify(r.condition)), " → ", h("span", { class: "mono" }, r.url)))]));
}

function deliveryPanel(sub) {
  return h("div", { class: "panel" }, h("h2", {}, "How it is sent"), props(
    ["Headers", kv(sub.headers)],
    ["Auth", sub.auth ? sub.auth.type + (sub.auth.username ? " (" + sub.auth.username + ")" : "") + ": credential stored, not shown" : ""],
    ["Rate limit", sub.rate_limit_per_second ? sub.rate_limit_per_second + " per second" : "none"],
    ["Timeout", sub.timeout_ms + " ms"], ["Attempts", String(sub.max_attempts)],
    ["Ordered", sub.ordered ? "yes: one at a time, in order" : "no"],
    ["Batching", sub.batch ? `up to ${sub.batch.max_events} events, waiting at most ${sub.batch.max_wait_ms} ms` : "off"],
    ["Compression", sub.compression || "none"],
    ["Client certificate", sub.client_tls ? "expires " + when(sub.client_tls.not_after) : ""],
    ["Allowed hosts", (sub.allowed_hosts || []).join(", ")]));
}
