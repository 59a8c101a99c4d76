// Dead letters: deliveries given up, with why; replay some or all of a
// window. A replay keeps each delivery's webhook-id, and one delivered
// since is not sent twice.
import { api, qs } from "./api.js";
import { h, replace, when, ago, emptyState, errorNotice, pretty, toast } from "./dom.js";

// localInput <-> ISO: datetime-local inputs speak local time.
function isoOf(local) { return local ? new Date(local).toISOString() : ""; }
function localOf(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function reason(l) {
  return l.last_error || (l.last_status ? "HTTP " + l.last_status : "no reason recorded");
}

export async function list(main, _params, ctx) {
  const q = ctx.query;
  const filter = { subscription_id: q.get("subscription_id") || "", since: q.get("since") || "", until: q.get("until") || "" };
  const cursor = q.get("cursor") || "";
  const notices = h("div");
  const head = h("div", { class: "pagehead" },
    h("div", {}, h("h1", {}, "Dead letters"), h("p", { class: "sub" }, "Deliveries Hookline gave up on, newest first, with the reason. Replay them once the endpoint is fixed.")));
  const sub = h("input", { type: "search", id: "dl-sub", value: filter.subscription_id, placeholder: "all endpoints", spellcheck: "false", list: "dl-subs" });
  // The endpoints to pick from, by name; an id can always be typed.
  const subs = h("datalist", { id: "dl-subs" });
  api("GET", "/v1/subscriptions" + qs({ limit: 250 })).then((p) => {
    subs.replaceChildren(...p.data.map((s) => h("option", { value: s.id, label: s.name || s.url })));
  }).catch(() => { /* typing an id still works */ });
  const since = h("input", { type: "datetime-local", id: "dl-since", value: localOf(filter.since) });
  const until = h("input", { type: "datetime-local", id: "dl-until", value: localOf(filter.until) });
  const toolbar = h("form", { class: "toolbar", role: "search" },
    h("div", { class: "field" }, h("label", { for: "dl-sub" }, "Endpoint"), sub, subs),
    h("div", { class: "field" }, h("label", { for: "dl-since" }, "Since"), since),
    h("div", { class: "field" }, h("label", { for: "dl-until" }, "Until"), until),
    h("button", { type: "submit" }, "Filter"));
  toolbar.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.go("#/dead-letters" + qs({ subscription_id: sub.value.trim(), since: isoOf(since.value), until: isoOf(until.value) }));
  });

  const page = await api("GET", "/v1/dead-letters" + qs({ ...filter, limit: 50, cursor }));
  if (ctx.stale()) return;
  if (page.data.length === 0 && !cursor) {
    replace(main, head, toolbar, emptyState("No dead letters",
      filter.subscription_id || filter.since || filter.until ? "Nothing was given up in this selection." : "Every delivery so far was delivered or is still being retried."));
    return;
  }
  const boxes = [];
  const rows = page.data.map((l) => {
    const box = h("input", { type: "checkbox", "aria-label": "Select " + l.delivery_id, value: l.delivery_id, class: "pick" });
    boxes.push(box);
    return h("tr", {},
      h("td", {}, box),
      h("td", {}, h("a", { class: "mono", href: "#/dead-letters/" + encodeURIComponent(l.delivery_id) }, l.delivery_id),
        h("div", { class: "small muted" }, l.event_type)),
      h("td", {}, h("a", { class: "mono small", href: "#/subscriptions/" + encodeURIComponent(l.subscription_id) }, l.subscription_id)),
      h("td", { class: "wrap" }, reason(l), h("div", { class: "small muted" }, l.attempts, " attempt", l.attempts === 1 ? "" : "s", l.replayed ? " · after a replay" : "")),
      h("td", { class: "small muted", title: when(l.dead_lettered_at) }, ago(l.dead_lettered_at)));
  });
  const all = h("input", { type: "checkbox", "aria-label": "Select all on this page", onchange: (e) => boxes.forEach((b) => { b.checked = e.currentTarget.checked; }) });
  const replaySelected = h("button", { type: "button", class: "primary", id: "replay-selected", onclick: async () => {
    const ids = boxes.filter((b) => b.checked).map((b) => b.value);
    if (!ids.length) { replace(notices, h("div", { class: "notice warn", role: "alert" }, "Select the dead letters to replay first.")); return; }
    await replay({ delivery_ids: ids }, replaySelected, notices);
  } }, "Replay selected");
  const replayWindow = filter.subscription_id
    ? h("button", { type: "button", id: "replay-window", onclick: () => replay({ subscription_id: filter.subscription_id, ...(filter.since ? { since: filter.since } : {}), ...(filter.until ? { until: filter.until } : {}) }, replayWindow, notices) },
      "Replay all of this endpoint" + (filter.since || filter.until ? " in this window" : ""))
    : h("span", { class: "small muted" }, "Filter by an endpoint to replay all of its dead letters in a window.");
  replace(main, head, toolbar, notices,
    h("div", { class: "toolbar" }, replaySelected, replayWindow),
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, all), h("th", {}, "Delivery"), h("th", {}, "Endpoint"), h("th", {}, "Why it was given up"), h("th", {}, "When"))),
      h("tbody", {}, rows)),
    h("div", { class: "pager" }, h("span", {}, page.data.length, " on this page"),
      h("span", {}, cursor ? h("a", { class: "button", href: "#/dead-letters" + qs(filter) }, "Newest") : null, " ",
        page.next_cursor ? h("a", { class: "button", href: "#/dead-letters" + qs({ ...filter, cursor: page.next_cursor }) }, "Older") : null)));
}

async function replay(body, button, notices) {
  button.disabled = true;
  try {
    const a = await api("POST", "/v1/replay", body);
    const n = a.replayed.length;
    replace(notices, h("div", { class: "notice ok", role: "status", id: "replay-result" },
      n ? `${n} dead letter${n === 1 ? "" : "s"} sent again: ` : "Nothing to replay in this selection.",
      a.replayed.slice(0, 20).map((id) => h("code", { class: "chip" }, id))));
    toast(n + " replayed");
  } catch (err) {
    replace(notices, errorNotice(err, "Nothing was replayed"));
  } finally {
    button.disabled = false;
  }
}

export async function detail(main, params, ctx) {
  const l = await api("GET", "/v1/dead-letters/" + encodeURIComponent(params.id));
  if (ctx.stale()) return;
  const notices = h("div");
  const again = h("button", { type: "button", class: "primary", id: "replay-one", onclick: () => replay({ delivery_ids: [l.delivery_id] }, again, notices) }, "Replay");
  replace(main,
    h("div", { class: "crumbs" }, h("a", { href: "#/dead-letters" }, "Dead letters"), " / ", l.delivery_id),
    h("div", { class: "pagehead" }, h("div", {}, h("h1", {}, l.event_type), h("p", { class: "sub mono" }, l.delivery_id)),
      h("div", { class: "actions" }, again)),
    notices,
    h("div", { class: "panel" }, h("h2", {}, "Why it was given up"), h("p", { class: "wrap", id: "dl-reason" }, reason(l)),
      h("dl", { class: "props" },
        h("dt", {}, "Endpoint"), h("dd", {}, h("a", { class: "mono", href: "#/subscriptions/" + encodeURIComponent(l.subscription_id) }, l.subscription_id)),
        h("dt", {}, "URL"), h("dd", { class: "mono" }, l.url),
        h("dt", {}, "Attempts"), h("dd", {}, String(l.attempts)),
        h("dt", {}, "Last status"), h("dd", {}, l.last_status ? String(l.last_status) : "no answer"),
        h("dt", {}, "Event"), h("dd", { class: "mono" }, l.event_id),
        h("dt", {}, "Created"), h("dd", {}, when(l.created_at)),
        h("dt", {}, "Dead-lettered"), h("dd", {}, when(l.dead_lettered_at)))),
    h("div", { class: "panel" }, h("h2", {}, "The body that was to be sent"), h("pre", { class: "json", id: "dl-payload" }, pretty(l.payload))));
}
