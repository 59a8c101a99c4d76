// Creating and editing an endpoint: every field the API has, with the
// AND/OR condition built in a form and shown as the JSON it sends.
import { api, qs } from "./api.js";
import { h, replace, errorNotice, field } from "./dom.js";
import { showSecretOnce, title } from "./subscriptions.js";

const ops = [
  ["eq", "equals"], ["ne", "does not equal"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"],
  ["in", "is one of"], ["nin", "is none of"], ["contains", "contains"], ["prefix", "starts with"],
  ["suffix", "ends with"], ["regex", "matches regex"], ["exists", "exists"],
];
const stringOps = new Set(["prefix", "suffix", "regex"]);

export async function create(main, _params, ctx) {
  if (!ctx.session.can_create) {
    replace(main, h("div", { class: "notice warn" }, "This session cannot create endpoints."));
    return;
  }
  await render(main, null, ctx);
}

export async function edit(main, params, ctx) {
  const sub = await api("GET", "/v1/subscriptions/" + encodeURIComponent(params.id));
  if (ctx.stale()) return;
  await render(main, sub, ctx);
}

// scalar reads a typed value: numbers, true, false and null as JSON, a
// "quoted" string as that string, anything else as the text itself.
export function scalar(text, op) {
  const t = text.trim();
  if (stringOps.has(op)) return text;
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t) || t === "true" || t === "false" || t === "null" || /^".*"$/.test(t)) {
    try { return JSON.parse(t); } catch { /* not JSON after all */ }
  }
  return text;
}

function shown(v) { return typeof v === "string" ? v : JSON.stringify(v); }

// leafOf turns a builder row into a condition leaf.
export function leafOf(row) {
  const leaf = { field: row.field.trim(), op: row.op };
  if (row.op === "exists") leaf.value = row.value.trim() !== "false";
  else if (row.op === "in" || row.op === "nin") leaf.value = row.value.split(",").map((s) => scalar(s.trim(), "eq")).filter((v) => v !== "");
  else leaf.value = scalar(row.value, row.op);
  return leaf;
}

// conditionOf builds the JSON of OR-ed groups of AND-ed rows: one group is
// {"all": [...]}, several are {"any": [{"all": [...]}, ...]}.
export function conditionOf(groups) {
  const gs = groups.map((g) => g.filter((r) => r.field.trim() !== "")).filter((g) => g.length);
  if (!gs.length) return null;
  const all = gs.map((g) => ({ all: g.map(leafOf) }));
  return all.length === 1 ? all[0] : { any: all };
}

// groupsOf reads a condition back into builder groups, or null when it
// has a shape the builder does not draw (not, nesting): then it is edited
// as JSON.
export function groupsOf(cond) {
  if (!cond) return [];
  const isLeaf = (n) => n && typeof n.field === "string" && typeof n.op === "string" && Object.keys(n).every((k) => ["field", "op", "value"].includes(k));
  const rowOf = (n) => ({ field: n.field, op: n.op, value: n.value === undefined ? "" : Array.isArray(n.value) ? n.value.map(shown).join(", ") : shown(n.value) });
  const groupOf = (n) => {
    if (isLeaf(n)) return [rowOf(n)];
    if (n && Array.isArray(n.all) && Object.keys(n).length === 1 && n.all.every(isLeaf)) return n.all.map(rowOf);
    return null;
  };
  if (cond.any && Object.keys(cond).length === 1 && Array.isArray(cond.any)) {
    const gs = cond.any.map(groupOf);
    return gs.every(Boolean) ? gs : null;
  }
  const g = groupOf(cond);
  return g ? [g] : null;
}

function list(text) {
  return text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

async function render(main, sub, ctx) {
  const editing = !!sub;
  const s = sub || { event_types: [], payload: "full", headers: {}, metadata: {}, routes: [], derive: [], allowed_hosts: [], alert_emails: [], enabled: true, timeout_ms: 15000, max_attempts: 8, rate_limit_per_second: 0, compression: "" };
  // The catalog offers its event types to pick from; without it, typing works.
  let catalog = [];
  try { catalog = (await api("GET", "/v1/event-types" + qs({ limit: 250 }))).data || []; } catch { /* optional */ }
  if (ctx.stale()) return;

  const notices = h("div");
  const inputs = {};
  const text = (name, value, props = {}) => (inputs[name] = h("input", { type: "text", value: value ?? "", name, ...props }));
  const number = (name, value, props = {}) => (inputs[name] = h("input", { type: "number", value: String(value ?? ""), name, ...props }));

  // Condition builder.
  let groups = groupsOf(s.condition);
  let jsonMode = groups === null;
  if (groups === null) groups = [];
  const condJSON = h("textarea", { id: "condition-json-input", name: "condition", rows: 8, spellcheck: "false" }, s.condition ? JSON.stringify(s.condition, null, 2) : "");
  inputs.condition = condJSON;
  const condPreview = h("pre", { class: "json", id: "condition-preview", "aria-live": "polite" });
  const builder = h("div", { id: "condition-builder" });
  const jsonToggle = h("input", { type: "checkbox", id: "condition-raw", checked: jsonMode });
  const drawBuilder = () => {
    builder.replaceChildren();
    groups.forEach((g, gi) => {
      if (gi > 0) builder.append(h("div", { class: "or" }, "OR"));
      const box = h("div", { class: "group", dataset: { group: gi } },
        h("div", { class: "grouphead" }, h("span", {}, g.length > 1 ? "All of these (AND)" : "This"),
          h("button", { type: "button", class: "link", onclick: () => { groups.splice(gi, 1); drawBuilder(); } }, "Remove group")));
      g.forEach((row, ri) => {
        const f = h("input", { type: "text", value: row.field, placeholder: "data.total", "aria-label": `Group ${gi + 1} condition ${ri + 1} field`, class: "cond-field" });
        const o = h("select", { "aria-label": `Group ${gi + 1} condition ${ri + 1} operator`, class: "cond-op" }, ops.map(([v, l]) => h("option", { value: v }, l)));
        o.value = row.op;
        const v = h("input", { type: "text", value: row.value, placeholder: "value (in: a, b, c)", "aria-label": `Group ${gi + 1} condition ${ri + 1} value`, class: "cond-value" });
        f.addEventListener("input", () => { row.field = f.value; preview(); });
        o.addEventListener("change", () => { row.op = o.value; preview(); });
        v.addEventListener("input", () => { row.value = v.value; preview(); });
        box.append(h("div", { class: "row" }, f, o, v,
          h("button", { type: "button", "aria-label": "Remove this condition", onclick: () => { g.splice(ri, 1); if (!g.length) groups.splice(gi, 1); drawBuilder(); } }, "✕")));
      });
      box.append(h("button", { type: "button", class: "link add-and", onclick: () => { g.push({ field: "", op: "eq", value: "" }); drawBuilder(); focusLast(box); } }, "+ AND condition"));
      builder.append(box);
    });
    builder.append(h("button", { type: "button", class: "add-or", onclick: () => { groups.push([{ field: "", op: "eq", value: "" }]); drawBuilder(); focusLast(builder); } },
      groups.length ? "+ OR group" : "+ Add a condition"));
    preview();
  };
  const focusLast = (el) => { const all = el.querySelectorAll(".cond-field"); if (all.length) all[all.length - 1].focus(); };
  const preview = () => {
    const c = conditionOf(groups);
    condPreview.textContent = c ? JSON.stringify(c, null, 2) : "no condition: every event of the chosen types";
  };
  const condArea = h("div");
  const drawCondition = () => {
    if (jsonMode) replace(condArea, field("Condition JSON", condJSON, 'e.g. {"any":[{"all":[{"field":"data.total","op":"gte","value":100}]},{"field":"data.vip","op":"eq","value":true}]}; empty for none.'));
    else { replace(condArea, builder, h("div", { class: "label" }, "As JSON"), condPreview); drawBuilder(); }
  };
  jsonToggle.addEventListener("change", () => {
    if (jsonToggle.checked) {
      const c = conditionOf(groups);
      condJSON.value = c ? JSON.stringify(c, null, 2) : "";
      jsonMode = true;
    } else {
      let parsed = null;
      try { parsed = condJSON.value.trim() ? JSON.parse(condJSON.value) : null; } catch { /* below */ }
      const g = groupsOf(parsed);
      if (g === null) { jsonToggle.checked = true; replace(notices, h("div", { class: "notice warn" }, "This condition has a shape the builder cannot draw (not, or nested groups): keep editing it as JSON.")); return; }
      groups = g;
      jsonMode = false;
    }
    drawCondition();
  });
  drawCondition();

  // Key/value rows (headers, metadata).
  const kvRows = (name, map, keyHint) => {
    const box = h("div", { class: "kv", dataset: { field: name } });
    const add = (k = "", v = "") => box.insertBefore(h("div", { class: "row" },
      h("input", { type: "text", value: k, placeholder: keyHint, "aria-label": name + " name" }),
      h("input", { type: "text", value: v, placeholder: "value", "aria-label": name + " value" }),
      h("button", { type: "button", "aria-label": "Remove", onclick: (e) => e.currentTarget.parentElement.remove() }, "✕")), addBtn);
    const addBtn = h("button", { type: "button", class: "link", onclick: () => add() }, "+ Add");
    box.append(addBtn);
    Object.entries(map || {}).forEach(([k, v]) => add(k, v));
    inputs[name] = box;
    box.read = () => Object.fromEntries([...box.querySelectorAll(".row")].map((r) => [...r.querySelectorAll("input")].map((i) => i.value)).filter(([k]) => k.trim()).map(([k, v]) => [k.trim(), v]));
    return box;
  };

  // Rows of objects (routes, derive).
  const objRows = (name, items, cols) => {
    const box = h("div", { dataset: { field: name } });
    const add = (item = {}) => box.insertBefore(h("div", { class: "row" },
      cols.map(([key, label, fmt]) => h(key === "condition" ? "textarea" : "input", { type: "text", rows: 2, placeholder: label, "aria-label": name + " " + label, dataset: { key }, value: fmt(item[key]) }, key === "condition" ? fmt(item[key]) : null)),
      h("button", { type: "button", "aria-label": "Remove", onclick: (e) => e.currentTarget.parentElement.remove() }, "✕")), addBtn);
    const addBtn = h("button", { type: "button", class: "link", onclick: () => add() }, "+ Add");
    box.append(addBtn);
    (items || []).forEach(add);
    inputs[name] = box;
    return box;
  };
  const asJSON = (v) => (v === undefined ? "" : JSON.stringify(v));
  const asText = (v) => v ?? "";

  // Auth.
  const authType = h("select", { name: "auth", id: "auth-type" }, h("option", { value: "" }, "none"), h("option", { value: "bearer" }, "bearer token"), h("option", { value: "basic" }, "basic (username and password)"));
  authType.value = s.auth ? s.auth.type : "";
  inputs.auth = authType;
  const stored = editing && s.auth ? "leave empty to keep the stored one" : "";
  const authToken = h("input", { type: "password", autocomplete: "off", placeholder: stored, id: "auth-token" });
  const authUser = h("input", { type: "text", value: s.auth && s.auth.username || "", id: "auth-username" });
  const authPass = h("input", { type: "password", autocomplete: "off", placeholder: stored, id: "auth-password" });
  const authFields = h("div");
  const drawAuth = () => replace(authFields,
    authType.value === "bearer" ? field("Token", authToken, "Sent as Authorization: Bearer <token>; stored sealed, never shown.") : null,
    authType.value === "basic" ? [field("Username", authUser), field("Password", authPass, "Stored sealed, never shown.")] : null);
  authType.addEventListener("change", drawAuth);
  drawAuth();

  // Batching.
  const batchOn = h("input", { type: "checkbox", id: "batch-on", checked: !!s.batch });
  inputs.batch = batchOn;
  const batchMax = h("input", { type: "number", value: String(s.batch ? s.batch.max_events : 100), min: 1, max: 500, id: "batch-max" });
  const batchWait = h("input", { type: "number", value: String(s.batch ? s.batch.max_wait_ms : 1000), min: 0, max: 60000, id: "batch-wait" });
  const batchFields = h("div", { class: "grid2", hidden: !s.batch }, field("Events per batch", batchMax, "1 to 500."), field("Wait at most (ms)", batchWait, "0 to 60000."));
  batchOn.addEventListener("change", () => { batchFields.hidden = !batchOn.checked; });

  // Client certificate.
  const certIn = h("textarea", { name: "client_tls", rows: 4, spellcheck: "false", placeholder: "-----BEGIN CERTIFICATE-----" }, s.client_tls ? s.client_tls.certificate : "");
  inputs.client_tls = certIn;
  const keyIn = h("textarea", { rows: 3, spellcheck: "false", placeholder: editing && s.client_tls ? "leave empty to keep the stored key" : "-----BEGIN PRIVATE KEY-----" });

  const payload = h("select", { name: "payload" }, h("option", { value: "full" }, "the full event"), h("option", { value: "changed" }, "only the changed fields (updates)"));
  payload.value = s.payload || "full";
  inputs.payload = payload;
  const compression = h("select", { name: "compression" }, h("option", { value: "" }, "none"), h("option", { value: "gzip" }, "gzip (bodies of 1 KiB or more)"));
  compression.value = s.compression || "";
  inputs.compression = compression;
  const ordered = (inputs.ordered = h("input", { type: "checkbox", id: "ordered", checked: s.ordered }));
  const enabled = (inputs.enabled = h("input", { type: "checkbox", id: "enabled", checked: s.enabled }));
  const typeList = h("datalist", { id: "event-type-names" }, catalog.map((t) => h("option", { value: t.name })));

  const form = h("form", { novalidate: true, id: "subscription-form" },
    h("div", { class: "panel" }, h("h2", {}, "Endpoint"),
      field("URL", text("url", s.url, { type: "url", required: true, placeholder: "https://example.com/webhooks", autocomplete: "off" }), "https:// only, unless the operator allowlists the host.", "url"),
      field("Name", text("name", s.name), "Shown in this console and in alert emails.", "name"),
      field("Description", (inputs.description = h("textarea", { name: "description", rows: 2 }, s.description || "")), null, "description"),
      h("div", { class: "field" }, h("label", { class: "inline" }, enabled, "Enabled"), h("p", { class: "hint" }, "A disabled endpoint receives nothing; its deliveries are dead-lettered with the reason."))),
    h("div", { class: "panel" }, h("h2", {}, "What it receives"),
      field("Event types", text("event_types", (s.event_types || []).join(", "), { list: "event-type-names", placeholder: "order.created, invoice.*" }),
        "Comma-separated names or patterns: order.created, order.*, or * for all." + (catalog.length ? " The catalog lists " + catalog.length + " type(s)." : ""), "event_types"),
      typeList,
      h("fieldset", { dataset: { field: "condition" } }, h("legend", {}, "Condition on the event's data"),
        h("p", { class: "hint" }, "Conditions in one group must all hold (AND); any one group is enough (OR). Fields are paths like data.total or subject."),
        condArea,
        h("label", { class: "inline" }, jsonToggle, "Write the JSON myself (for not, or nested groups)")),
      field("CEL expression", text("expression", s.expression, { placeholder: "data.total > 100 && data.currency == 'EUR'" }), "Optional; must also be true for the event to be sent.", "expression"),
      field("Payload", payload, null, "payload"),
      h("details", { open: (s.derive || []).length > 0 }, h("summary", {}, "Derived fields"),
        h("p", { class: "hint" }, "Fields added to the data, computed with CEL; the default (JSON) when the expression cannot be evaluated."),
        objRows("derive", s.derive, [["field", "field (e.g. data.tier)", asText], ["expression", "CEL expression", asText], ["default", "default (JSON, optional)", asJSON]])),
      h("details", { open: (s.routes || []).length > 0 }, h("summary", {}, "Routes"),
        h("p", { class: "hint" }, "An event matching a route's condition (JSON) goes to that route's URL instead; {{data.field}} placeholders need allowed hosts."),
        objRows("routes", s.routes, [["condition", "condition JSON", asJSON], ["url", "URL", asText]]),
        field("Allowed hosts", text("allowed_hosts", (s.allowed_hosts || []).join(", ")), "Hosts a route URL taken from the event may point at; *.example.com allows subdomains.", "allowed_hosts"))),
    h("div", { class: "panel" }, h("h2", {}, "How it is sent"),
      h("div", { class: "field", dataset: { field: "headers" } }, h("span", { class: "label" }, "Headers"), kvRows("headers", s.headers, "X-Header-Name")),
      h("div", { class: "field", dataset: { field: "auth" } }, field("Authentication", authType, null), authFields),
      h("div", { class: "grid2" },
        field("Rate limit (per second)", number("rate_limit_per_second", s.rate_limit_per_second, { min: 0, max: 10000 }), "0 for none.", "rate_limit_per_second"),
        field("Timeout (ms)", number("timeout_ms", s.timeout_ms, { min: 1000, max: 60000 }), "1000 to 60000.", "timeout_ms"),
        field("Attempts", number("max_attempts", s.max_attempts, { min: 1, max: 20 }), "Before a delivery is dead-lettered: 1 to 20.", "max_attempts"),
        field("Compression", compression, null, "compression")),
      h("div", { class: "field" }, h("label", { class: "inline" }, ordered, "Ordered: one delivery at a time, in order")),
      h("div", { class: "field", dataset: { field: "batch" } }, h("label", { class: "inline" }, batchOn, "Batch events into one request"),
        batchFields),
      h("details", { open: !!s.client_tls }, h("summary", {}, "Client certificate (mutual TLS)"),
        h("div", { dataset: { field: "client_tls" } }, field("Certificate chain (PEM)", certIn), field("Private key (PEM)", keyIn, "Stored sealed, never shown.")))),
    h("div", { class: "panel" }, h("h2", {}, "Owners"),
      field("Alert emails", text("alert_emails", (s.alert_emails || []).join(", "), { placeholder: "oncall@example.com" }), "Told when this endpoint keeps failing or is disabled.", "alert_emails"),
      h("div", { class: "field", dataset: { field: "metadata" } }, h("span", { class: "label" }, "Metadata"), kvRows("metadata", s.metadata, "key")),
      editing ? null : field("Signing secret", text("secret", "", { placeholder: "leave empty to have one made (whsec_...)", autocomplete: "off" }), "Only to bring your own secret.", "secret")),
    h("div", { class: "formactions" },
      h("a", { class: "button", href: editing ? "#/subscriptions/" + encodeURIComponent(s.id) : "#/subscriptions" }, "Cancel"),
      h("button", { type: "submit", class: "primary", id: "save" }, editing ? "Save changes" : "Create endpoint")));

  const bodyOf = () => {
    const errs = [];
    const b = {
      url: inputs.url.value.trim(), name: inputs.name.value, description: inputs.description.value,
      event_types: list(inputs.event_types.value), expression: inputs.expression.value.trim(),
      payload: payload.value, headers: inputs.headers.read(), metadata: inputs.metadata.read(),
      rate_limit_per_second: Number(inputs.rate_limit_per_second.value || 0), timeout_ms: Number(inputs.timeout_ms.value || 0),
      max_attempts: Number(inputs.max_attempts.value || 0), ordered: ordered.checked, enabled: enabled.checked,
      allowed_hosts: list(inputs.allowed_hosts.value), alert_emails: list(inputs.alert_emails.value), compression: compression.value,
      batch: batchOn.checked ? { max_events: Number(batchMax.value), max_wait_ms: Number(batchWait.value) } : null,
    };
    if (jsonMode) {
      try { b.condition = condJSON.value.trim() ? JSON.parse(condJSON.value) : null; } catch (e) { errs.push({ field: "condition", detail: "is not JSON: " + e.message }); }
    } else b.condition = conditionOf(groups);
    const rows = (name) => [...inputs[name].querySelectorAll(".row")].map((r) => Object.fromEntries([...r.querySelectorAll("[data-key]")].map((i) => [i.dataset.key, i.value])));
    b.routes = rows("routes").filter((r) => r.url.trim() || r.condition.trim()).map((r, i) => {
      let c = null;
      try { c = JSON.parse(r.condition); } catch { errs.push({ field: `routes[${i}].condition`, detail: "is not JSON" }); }
      return { condition: c, url: r.url.trim() };
    });
    b.derive = rows("derive").filter((d) => d.field.trim()).map((d, i) => {
      const out = { field: d.field.trim(), expression: d.expression };
      if (d.default.trim()) { try { out.default = JSON.parse(d.default); } catch { errs.push({ field: `derive[${i}].default`, detail: "is not JSON (quote a string)" }); } }
      return out;
    });
    // Credentials are sent only when typed; left empty on an edit, the
    // stored one is kept (the API keeps a credential of the same type).
    if (!authType.value) b.auth = null;
    else if (authType.value === "bearer") b.auth = { type: "bearer", ...(authToken.value ? { token: authToken.value } : {}) };
    else b.auth = { type: "basic", username: authUser.value, ...(authPass.value ? { password: authPass.value } : {}) };
    const cert = certIn.value.trim();
    if (!cert) b.client_tls = null;
    else if (keyIn.value.trim() || !s.client_tls || cert !== s.client_tls.certificate.trim()) b.client_tls = { certificate: cert, key: keyIn.value.trim() };
    else b.client_tls = { certificate: cert };
    if (!editing && inputs.secret.value.trim()) b.secret = inputs.secret.value.trim();
    return { b, errs };
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const { b, errs } = bodyOf();
    if (errs.length) { showErrors(form, notices, { problem: { detail: "Some fields need a look.", errors: errs } }); return; }
    const save = form.querySelector("#save");
    save.disabled = true;
    try {
      const v = editing ? await api("PATCH", "/v1/subscriptions/" + encodeURIComponent(s.id), b) : await api("POST", "/v1/subscriptions", b);
      if (!editing) showSecretOnce(v.id, v.secret, "Endpoint created");
      ctx.go("#/subscriptions/" + encodeURIComponent(v.id));
    } catch (err) {
      showErrors(form, notices, err);
      save.disabled = false;
    }
  });

  replace(main,
    h("div", { class: "crumbs" }, h("a", { href: "#/subscriptions" }, "Endpoints"), editing ? [" / ", h("a", { href: "#/subscriptions/" + encodeURIComponent(s.id) }, title(s))] : null),
    h("div", { class: "pagehead" }, h("h1", {}, editing ? "Edit endpoint" : "New endpoint")),
    notices, form);
  inputs.url.focus();
}

function clearErrors(form) {
  form.querySelectorAll(".fielderror").forEach((e) => e.remove());
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

// showErrors lists the problem on top and puts each field's detail under
// its control: "event_types[1]" and "condition.all[0].value" go to the
// event types and condition fields.
function showErrors(form, notices, err) {
  replace(notices, errorNotice(err, "The endpoint was not saved"));
  for (const fe of (err.problem && err.problem.errors) || []) {
    const top = String(fe.field).split(/[.[]/)[0];
    const box = form.querySelector(`[data-field="${CSS.escape(top)}"]`);
    if (!box) continue;
    const holder = box.closest(".field") || box;
    const control = box.matches("input, select, textarea") ? box : box.querySelector("input, select, textarea");
    if (control) control.setAttribute("aria-invalid", "true");
    holder.append(h("div", { class: "fielderror" }, fe.field, ": ", fe.detail));
  }
  notices.scrollIntoView({ block: "nearest" });
}
