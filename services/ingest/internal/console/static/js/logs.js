// The Logs tab of an endpoint: its attempts newest first, filtered by
// outcome and time, a page at a time, updating live while it is open; and
// one delivery's page with each attempt's request and answer. Alert
// emails link to the tab (#/subscriptions/<id>/logs).
import { api, qs } from "./api.js";
import { h, replace, when, ago, errorNotice, toast } from "./dom.js";
import { title } from "./subscriptions.js";
import { historyNotice, historyDown, isoOf, windowInputs, stateBadge, bodyBlock, headerList, statusText, noHistoryYet } from "./history.js";

// Live updates: a poll every POLL_MS reads the attempts started since
// the newest shown, less LAG_MS (the logs service writes an attempt when
// it ends, so a slow one can land behind a quicker later one), up to
// POLL_LIMIT of them: more than that in a minute (over 4 a second) is more
// than a person reads live, and the tab asks for a reload. The list stops
// growing at MAX_ROWS for the same reason.
const POLL_MS = 3000;
const LAG_MS = 60000;
const POLL_LIMIT = 250;
const MAX_ROWS = 500;

const key = (a) => a.delivery_id + "/" + a.attempt + "/" + a.started_at;

// attemptHref is the page of one attempt: its delivery's, with it selected.
export function attemptHref(a) {
  return "#/deliveries/" + encodeURIComponent(a.delivery_id) + qs({ attempt: a.attempt, at: a.started_at });
}

export async function tab(main, params, ctx) {
  const sub = await api("GET", "/v1/subscriptions/" + encodeURIComponent(params.id));
  if (ctx.stale()) return;
  const q = ctx.query;
  const filter = { status: q.get("status") || "", since: q.get("since") || "", until: q.get("until") || "" };
  const cursor = q.get("cursor") || "";
  const id = encodeURIComponent(sub.id);
  const here = "#/subscriptions/" + id + "/logs";
  const notices = h("div");
  const head = [
    h("div", { class: "crumbs" }, h("a", { href: "#/subscriptions" }, "Endpoints"), " / ", h("a", { href: "#/subscriptions/" + id }, title(sub)), " / Logs"),
    h("div", { class: "pagehead" },
      h("div", {}, h("h1", {}, "Logs"), h("p", { class: "sub" }, title(sub), " · every attempt, newest first")),
      h("div", { class: "actions" }, h("a", { class: "button", href: "#/subscriptions/" + id }, "Endpoint"))),
  ];

  let page;
  try {
    page = await api("GET", "/v1/subscriptions/" + id + "/attempts" + qs({ ...filter, limit: 50, cursor }));
  } catch (err) {
    const n = historyNotice(err, () => ctx.go(window.location.hash));
    if (!n) throw err;
    if (!ctx.stale()) replace(main, head, n);
    return;
  }
  if (ctx.stale()) return;

  const status = h("select", { id: "logs-status" },
    [["", "any outcome"], ["delivered", "delivered"], ["retrying", "failed, to be retried"], ["failed", "failed, given up"]]
      .map(([v, label]) => h("option", { value: v, selected: v === filter.status ? true : undefined }, label)));
  const win = windowInputs("logs", filter.since, filter.until);
  const toolbar = h("form", { class: "toolbar", role: "search", "aria-label": "Filter the attempts" },
    h("div", { class: "field" }, h("label", { for: "logs-status" }, "Outcome"), status), win.fields,
    h("button", { type: "submit" }, "Filter"),
    filter.status || filter.since || filter.until ? h("a", { class: "button", href: here }, "Clear") : null);
  toolbar.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.go(here + qs({ status: status.value, since: isoOf(win.since.value), until: isoOf(win.until.value) }));
  });

  const live = h("p", { class: "small muted live", id: "logs-live", role: "status" });
  const body = h("tbody", {});
  const shown = new Set();
  const rows = []; // [started_at in ms, tr], newest first
  const add = (a, fresh) => {
    if (shown.has(key(a))) return false;
    shown.add(key(a));
    const tr = attemptRow(a, notices, fresh);
    const at = Date.parse(a.started_at);
    const i = rows.findIndex(([t]) => t < at);
    if (i < 0) { body.append(tr); rows.push([at, tr]); } else { body.insertBefore(tr, rows[i][1]); rows.splice(i, 0, [at, tr]); }
    return true;
  };
  page.data.forEach((a) => add(a, false));

  const filtered = !!(filter.status || filter.since || filter.until);
  const table = h("table", { class: "list", id: "attempts" },
    h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Outcome"), h("th", {}, "Status"), h("th", {}, "Took"),
      h("th", {}, "Event and delivery"), h("th", {}, "Error"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
    body);
  const empty = noHistoryYet(filtered, "attempts");
  const pager = h("div", { class: "pager" },
    h("span", {}, cursor ? "An older page" : "The newest attempts"),
    h("span", {},
      cursor ? h("a", { class: "button", href: here + qs(filter) }, "Newest") : null, " ",
      page.next_cursor ? h("a", { class: "button", href: here + qs({ ...filter, cursor: page.next_cursor }) }, "Older") : null));
  replace(main, head, toolbar, recoverPanel(sub, notices), notices, live,
    page.data.length ? table : empty, page.data.length ? pager : null);

  // Only the newest page of an open window is live: an older page or a
  // window with an end would not change.
  if (cursor || filter.until) {
    live.textContent = cursor ? "An older page: not updated live." : "A closed time window: not updated live.";
    return;
  }
  let timer = null;
  let failures = 0;
  const stop = (why) => {
    clearTimeout(timer);
    timer = null;
    document.removeEventListener("visibilitychange", onVisibility);
    if (why) live.textContent = why;
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS * Math.min(2 ** failures, 10));
  };
  async function poll() {
    if (ctx.stale()) return stop();
    if (document.hidden) { live.textContent = "Live updates paused while this tab is hidden."; return; }
    const newest = rows.length ? rows[0][0] : 0;
    const since = newest ? new Date(Math.max(newest - LAG_MS, filter.since ? Date.parse(filter.since) : 0)).toISOString() : filter.since;
    let next;
    try {
      next = await api("GET", "/v1/subscriptions/" + id + "/attempts" + qs({ status: filter.status, since, limit: POLL_LIMIT }));
    } catch (err) {
      if (ctx.stale()) return stop();
      failures++;
      live.textContent = historyDown(err) ? "Live updates paused: the delivery history is unavailable; trying again." : "Live updates paused: " + err.message + "; trying again.";
      return schedule();
    }
    if (ctx.stale()) return stop();
    failures = 0;
    const added = next.data.filter((a) => add(a, true)).length;
    if (added && !table.isConnected) empty.replaceWith(table);
    if (next.next_cursor || rows.length >= MAX_ROWS) {
      return stop("Live updates stopped: more new attempts than this list follows; reload the page to see the newest.");
    }
    live.textContent = "Live: checked " + new Date().toLocaleTimeString() + (added ? ", " + added + " new" : "") + ".";
    schedule();
  }
  function onVisibility() {
    if (ctx.stale()) return stop();
    if (!document.hidden) poll();
    else clearTimeout(timer);
  }
  document.addEventListener("visibilitychange", onVisibility);
  live.textContent = "Live: new attempts appear here as they are made.";
  schedule();
}

function attemptRow(a, notices, fresh) {
  return h("tr", { class: fresh ? "fresh" : undefined, dataset: { delivery: a.delivery_id, outcome: a.outcome } },
    h("td", { class: "small", title: when(a.started_at) }, h("a", { href: attemptHref(a) }, ago(a.started_at))),
    h("td", {}, stateBadge(a.outcome), a.replay ? h("div", { class: "small muted" }, "re-run") : null),
    h("td", { class: "mono" }, statusText(a)),
    h("td", { class: "small" }, a.duration_ms, " ms"),
    h("td", {}, h("div", { class: "small" }, a.event_type), h("div", { class: "small muted mono" }, a.delivery_id, " · attempt ", a.attempt)),
    h("td", { class: "wrap small" }, a.error || ""),
    h("td", {}, rerunButton(a.delivery_id, notices)));
}

// rerunButton sends a delivery once more, now, with its webhook-id.
export function rerunButton(deliveryID, notices, after) {
  const b = h("button", { type: "button", class: "rerun", "aria-label": "Re-run delivery " + deliveryID, onclick: async () => {
    b.disabled = true;
    try {
      await api("POST", "/v1/deliveries/" + encodeURIComponent(deliveryID) + "/redeliver");
      replace(notices, h("div", { class: "notice ok", role: "status", id: "rerun-result" },
        "Delivery ", h("code", {}, deliveryID), " is being sent again, with its webhook-id; the new attempt shows here once it is made."));
      toast("Re-run started");
      if (after) after();
    } catch (err) {
      replace(notices, errorNotice(err, "The delivery was not sent again"));
    } finally {
      b.disabled = false;
    }
  } }, "Re-run");
  return b;
}

// recoverPanel sends again every delivery of the endpoint that failed
// (was given up) since a time: "the endpoint was down this morning".
function recoverPanel(sub, notices) {
  const since = h("input", { type: "datetime-local", id: "recover-since" });
  since.value = new Date(Date.now() - 86400000 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const run = async (body, button) => {
    button.disabled = true;
    try {
      const r = await api("POST", "/v1/subscriptions/" + encodeURIComponent(sub.id) + "/recover", body);
      const more = r.next_until ? h("button", { type: "button", onclick: (e) => run({ since: body.since, until: r.next_until }, e.currentTarget) }, "Recover the older ones too") : null;
      replace(notices, h("div", { class: "notice ok", role: "status", id: "recover-result" },
        r.count ? `${r.count} failed deliver${r.count === 1 ? "y" : "ies"} sent again.` : "No failed delivery in that window.",
        r.next_until ? [" There are more before ", when(r.next_until), ". ", more] : null));
    } catch (err) {
      replace(notices, errorNotice(err, "Nothing was recovered"));
    } finally {
      button.disabled = false;
    }
  };
  const go = h("button", { type: "button", id: "recover", onclick: (e) => {
    if (!since.value) { replace(notices, h("div", { class: "notice warn", role: "alert" }, "Pick since when to recover.")); return; }
    run({ since: isoOf(since.value) }, e.currentTarget);
  } }, "Recover failed deliveries");
  return h("details", { class: "panel" },
    h("summary", {}, "Recover failed since…"),
    h("p", { class: "muted" }, "Sends again every delivery to this endpoint that was given up since then, on the usual retry schedule; one delivered since is not sent twice."),
    h("div", { class: "toolbar" }, h("div", { class: "field" }, h("label", { for: "recover-since" }, "Failed since"), since), go));
}

// delivery is one delivery's page: an attempt's request and answer (the
// one picked in the Logs tab, else the newest), and every attempt.
export async function delivery(main, params, ctx) {
  const path = "/v1/deliveries/" + encodeURIComponent(params.id);
  let d;
  try {
    d = await api("GET", path);
  } catch (err) {
    const n = historyNotice(err, () => ctx.go(window.location.hash));
    if (!n) throw err;
    if (!ctx.stale()) replace(main, h("div", { class: "pagehead" }, h("h1", {}, "Delivery")), n);
    return;
  }
  if (ctx.stale()) return;
  const want = Number(ctx.query.get("attempt")), at = ctx.query.get("at");
  const picked = d.attempts.find((a) => a.attempt === want && (!at || a.started_at === at)) || d.attempts[0];
  const notices = h("div");
  const sub = encodeURIComponent(d.subscription_id);
  const self = "#/deliveries/" + encodeURIComponent(d.id);
  // After a re-run, look for its attempt for a minute, then show it.
  const watch = () => {
    const seen = d.attempts.length;
    const until = Date.now() + 60000;
    const tick = async () => {
      if (ctx.stale() || Date.now() > until) return;
      if (!document.hidden) {
        try {
          const now = await api("GET", path);
          if (ctx.stale()) return;
          if (now.attempts.length > seen) { ctx.go(self); return; }
        } catch { /* keep looking until the minute is over */ }
      }
      setTimeout(tick, 2000);
    };
    setTimeout(tick, 1000);
  };
  replace(main,
    h("div", { class: "crumbs" }, h("a", { href: "#/subscriptions/" + sub }, d.subscription_id), " / ", h("a", { href: "#/subscriptions/" + sub + "/logs" }, "Logs"), " / ", d.id),
    h("div", { class: "pagehead" },
      h("div", {}, h("h1", {}, d.event_type), h("p", { class: "sub" }, stateBadge(d.status), " ", h("span", { class: "mono" }, d.id))),
      h("div", { class: "actions" },
        h("a", { class: "button", href: "#/events/" + encodeURIComponent(d.event_id) }, "Event"),
        h("a", { class: "button", href: "#/subscriptions/" + sub + "/logs" }, "Logs"),
        rerunButton(d.id, notices, watch))),
    notices,
    picked ? attemptPanels(picked, d.attempts.length) : h("div", { class: "panel" }, h("h2", {}, "No attempt yet"),
      h("p", { class: "muted" }, d.status === "pending" ? "The delivery waits for its first attempt." : "No attempt of it is in the history."),
      h("h2", {}, "The body to be sent"), bodyBlock(d.payload, "delivery-payload", "not in the history yet")),
    d.attempts.length > 1 ? h("div", { class: "panel" }, h("h2", {}, "Every attempt"),
      h("table", { class: "list", id: "delivery-attempts" },
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Started"), h("th", {}, "Outcome"), h("th", {}, "Status"), h("th", {}, "Took"), h("th", {}, "Error"))),
        h("tbody", {}, d.attempts.map((a) => h("tr", { class: a === picked ? "picked" : undefined },
          h("td", {}, h("a", { href: attemptHref(a), "aria-current": a === picked ? "true" : undefined }, "Attempt ", a.attempt), a.replay ? h("div", { class: "small muted" }, "re-run") : null),
          h("td", { class: "small", title: when(a.started_at) }, when(a.started_at)),
          h("td", {}, stateBadge(a.outcome)), h("td", { class: "mono" }, statusText(a)),
          h("td", { class: "small" }, a.duration_ms, " ms"), h("td", { class: "wrap small" }, a.error)))))) : null);
}

function attemptPanels(a, total) {
  const r = a.response;
  return [
    h("div", { class: "panel", id: "attempt" },
      h("h2", {}, "Attempt ", a.attempt, a.replay ? " (re-run)" : "", total > 1 ? h("span", { class: "muted" }, " · one of " + total) : null),
      h("dl", { class: "props" },
        h("dt", {}, "Outcome"), h("dd", {}, stateBadge(a.outcome)),
        h("dt", {}, "Started"), h("dd", {}, when(a.started_at), h("span", { class: "muted" }, " · ", ago(a.started_at))),
        h("dt", {}, "Took"), h("dd", {}, a.duration_ms, " ms"),
        h("dt", {}, "URL"), h("dd", { class: "mono" }, a.url),
        h("dt", {}, "Status"), h("dd", { class: "mono", id: "attempt-status" }, statusText(a)),
        a.error ? [h("dt", {}, "Error"), h("dd", { class: "wrap", id: "attempt-error" }, a.error)] : null,
        a.next_attempt_at ? [h("dt", {}, "Next attempt"), h("dd", {}, when(a.next_attempt_at), " (", ago(a.next_attempt_at), ")")] : null,
        a.trace_id ? [h("dt", {}, "Trace"), h("dd", { class: "mono small" }, a.trace_id)] : null)),
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, h("h2", {}, "Request"),
        h("div", { class: "label" }, "Headers"), headerList(a.request.headers, "request-headers"),
        h("div", { class: "label" }, "Body"), bodyBlock(a.request.body, "request-body")),
      h("div", { class: "panel" }, h("h2", {}, "Response"),
        r ? [
          h("div", { class: "label" }, "Status ", h("span", { class: "mono" }, r.status)),
          h("div", { class: "label" }, "Headers"), headerList(r.headers, "response-headers"),
          h("div", { class: "label" }, "Body", r.truncated ? h("span", { class: "muted small" }, " (its first 4 KiB)") : null),
          bodyBlock(r.body, "response-body")]
          : h("p", { class: "muted", id: "response-body" }, a.error ? "No answer came: " + a.error : "No answer recorded."))),
  ];
}
