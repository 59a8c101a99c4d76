// What the delivery-history pages (the Logs tab, a delivery, events, the
// overview) share: how they say the history is off or down, the time
// window inputs, and how a body or a header list is shown (as text).
import { h, badge, pretty, emptyState } from "./dom.js";

// historyOff is the API's answer where HOOKLINE_POSTGRES_URL is not set.
export function historyOff(err) {
  return err && err.status === 404 && String((err.problem && err.problem.type) || "").endsWith("/not-enabled");
}

// historyDown is its answer while the history's database is unavailable.
export function historyDown(err) {
  return err && err.status === 503;
}

// historyNotice is the page a history call's failure leaves, or null
// when the failure is another (the caller shows it as usual).
export function historyNotice(err, retry) {
  if (historyOff(err)) {
    return h("div", { class: "empty", id: "history-unavailable" },
      h("h2", {}, "The delivery history is not enabled on this Hookline"),
      h("p", {}, "Each attempt, with what was sent and what the endpoint answered, is kept once the operator runs the logs service and gives ingest its database (HOOKLINE_POSTGRES_URL)."),
      h("p", {}, "Meanwhile the endpoint's page can send a test event, and the ", h("a", { href: "#/dead-letters" }, "dead letters"), " list the deliveries given up."));
  }
  if (historyDown(err)) {
    return h("div", { class: "notice warn", id: "history-down", role: "alert" },
      h("h3", {}, "The delivery history is unavailable right now"),
      h("p", {}, "Its database does not answer; deliveries go on meanwhile, and the history catches up when it is back. Nothing shown here would be complete, so nothing is shown."),
      retry ? h("button", { type: "button", onclick: retry }, "Try again") : null);
  }
  return null;
}

// isoOf and localOf convert between ISO times and datetime-local values,
// which speak local time.
export function isoOf(local) { return local ? new Date(local).toISOString() : ""; }
export function localOf(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

// window is a since/until pair of labelled datetime-local inputs.
export function windowInputs(prefix, since, until) {
  const s = h("input", { type: "datetime-local", id: prefix + "-since", value: localOf(since) });
  const u = h("input", { type: "datetime-local", id: prefix + "-until", value: localOf(until) });
  return {
    since: s, until: u,
    fields: [
      h("div", { class: "field" }, h("label", { for: s.id }, "Since"), s),
      h("div", { class: "field" }, h("label", { for: u.id }, "Until"), u),
    ],
  };
}

const stateLabel = { delivered: "Delivered", retrying: "Retrying", failed: "Failed", pending: "Pending", filtered: "Filtered" };

// stateBadge shows an attempt's outcome or a delivery's state.
export function stateBadge(state) {
  return badge(state || "unknown", stateLabel[state] || state || "Unknown");
}

// bodyBlock shows a body ({text, encoding}) as text: JSON indented, other
// text as it came, bytes that are not UTF-8 as base64, saying so.
export function bodyBlock(body, id, empty = "no body") {
  if (!body || body.text === "") return h("p", { class: "muted", id }, empty);
  if (body.encoding === "base64") {
    return [h("p", { class: "small muted" }, "Not UTF-8 text: shown as base64."), h("pre", { class: "json", id }, body.text)];
  }
  return h("pre", { class: "json", id }, pretty(body.text));
}

// headerList shows headers as name: value lines, names sorted.
export function headerList(headers, id) {
  const names = Object.keys(headers || {}).sort();
  if (!names.length) return h("p", { class: "muted", id }, "none");
  return h("pre", { class: "headers", id }, names.map((n) => (headers[n] || []).map((v) => n + ": " + v + "\n")));
}

// statusText says what came back: the HTTP status, or that none did.
export function statusText(a) {
  if (a.response) return String(a.response.status);
  return a.error ? "no answer" : "—";
}

// noHistoryYet is the empty state of a list with nothing in the window.
export function noHistoryYet(filtered, what) {
  return emptyState(filtered ? "Nothing in this selection" : "No " + what + " yet",
    filtered ? "No " + what + " match these filters; widen the time window or clear the status." : "They show here as soon as the logs service has written them.");
}
