// Events from the delivery history: look one up by id, or list them by
// type, subject and time, each with its deliveries and their state; send
// an event to another endpoint of the tenant.
import { api, qs } from "./api.js";
import { h, replace, when, ago, emptyState, errorNotice, pretty, toast } from "./dom.js";
import { historyNotice, isoOf, windowInputs, stateBadge, noHistoryYet } from "./history.js";
import { rerunButton } from "./logs.js";

export async function list(main, _params, ctx) {
  const q = ctx.query;
  const filter = { type: q.get("type") || "", subject: q.get("subject") || "", since: q.get("since") || "", until: q.get("until") || "" };
  const cursor = q.get("cursor") || "";
  // A portal session limited to some endpoints may open an event they
  // got, by id, but not list the tenant's events.
  const restricted = !!(ctx.session.subscription_ids && ctx.session.subscription_ids.length);
  const head = h("div", { class: "pagehead" },
    h("div", {}, h("h1", {}, "Events"), h("p", { class: "sub" }, "Events as Hookline received them, newest first, and where each was delivered.")));

  const byID = h("input", { type: "search", id: "ev-id", placeholder: "evt_…", spellcheck: "false" });
  const lookup = h("form", { class: "toolbar", role: "search", "aria-label": "Open an event by id" },
    h("div", { class: "field" }, h("label", { for: "ev-id" }, "Event id"), byID), h("button", { type: "submit" }, "Open"));
  lookup.addEventListener("submit", (e) => {
    e.preventDefault();
    if (byID.value.trim()) ctx.go("#/events/" + encodeURIComponent(byID.value.trim()));
  });
  if (restricted) {
    replace(main, head, lookup, emptyState("Look an event up by its id",
      "This link shows the events of its endpoints one at a time: open one by its id, or from an endpoint's Logs tab."));
    return;
  }

  const type = h("input", { type: "search", id: "ev-type", value: filter.type, placeholder: "order.created", spellcheck: "false" });
  const subject = h("input", { type: "search", id: "ev-subject", value: filter.subject, placeholder: "any subject", spellcheck: "false" });
  const win = windowInputs("ev", filter.since, filter.until);
  const search = h("form", { class: "toolbar", role: "search", "aria-label": "Find events" },
    h("div", { class: "field" }, h("label", { for: "ev-type" }, "Type"), type),
    h("div", { class: "field" }, h("label", { for: "ev-subject" }, "Subject"), subject), win.fields,
    h("button", { type: "submit" }, "Find"));
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.go("#/events" + qs({ type: type.value.trim(), subject: subject.value.trim(), since: isoOf(win.since.value), until: isoOf(win.until.value) }));
  });

  let page;
  try {
    page = await api("GET", "/v1/events" + qs({ ...filter, limit: 50, cursor }));
  } catch (err) {
    const n = historyNotice(err, () => ctx.go(window.location.hash));
    if (!n) throw err;
    if (!ctx.stale()) replace(main, head, n);
    return;
  }
  if (ctx.stale()) return;
  const filtered = !!(filter.type || filter.subject || filter.since || filter.until);
  if (!page.data.length && !cursor) {
    replace(main, head, lookup, search, noHistoryYet(filtered, "events"));
    return;
  }
  const body = h("tbody", {});
  for (const e of page.data) {
    const more = h("tr", { class: "deliveries", hidden: true }, h("td", { colspan: "5" }));
    const toggle = h("button", { type: "button", class: "link", "aria-expanded": "false", onclick: async () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      more.hidden = !open;
      if (open && !more.dataset.loaded) {
        more.dataset.loaded = "1";
        replace(more.firstChild, h("span", { class: "muted small" }, "Loading its deliveries…"));
        try {
          const ev = await api("GET", "/v1/events/" + encodeURIComponent(e.id));
          replace(more.firstChild, deliveriesTable(ev.deliveries, h("div")));
        } catch (err) {
          delete more.dataset.loaded;
          replace(more.firstChild, errorNotice(err, "Its deliveries could not be loaded"));
        }
      }
    } }, "Deliveries");
    body.append(
      h("tr", {},
        h("td", { class: "small", title: when(e.received_at) }, ago(e.received_at)),
        h("td", {}, h("a", { href: "#/events/" + encodeURIComponent(e.id) }, e.type)),
        h("td", { class: "small wrap" }, e.subject),
        h("td", { class: "small muted mono" }, e.id),
        h("td", {}, toggle)),
      more);
  }
  replace(main, head, lookup, search,
    h("table", { class: "list", id: "events" },
      h("thead", {}, h("tr", {}, h("th", {}, "Received"), h("th", {}, "Type"), h("th", {}, "Subject"), h("th", {}, "Id"), h("th", {}, h("span", { class: "visually-hidden" }, "Deliveries")))),
      body),
    h("div", { class: "pager" }, h("span", {}, page.data.length, " on this page"),
      h("span", {}, cursor ? h("a", { class: "button", href: "#/events" + qs(filter) }, "Newest") : null, " ",
        page.next_cursor ? h("a", { class: "button", href: "#/events" + qs({ ...filter, cursor: page.next_cursor }) }, "Older") : null)));
}

// deliveriesTable lists an event's deliveries with their state.
function deliveriesTable(deliveries, notices) {
  if (!deliveries.length) return h("p", { class: "muted" }, "No endpoint received it.");
  return [notices, h("table", { class: "list inner" },
    h("thead", {}, h("tr", {}, h("th", {}, "Endpoint"), h("th", {}, "State"), h("th", {}, "Attempts"), h("th", {}, "Last answer"), h("th", {}, "Delivery"), h("th", {}, h("span", { class: "visually-hidden" }, "Actions")))),
    h("tbody", {}, deliveries.map((d) => h("tr", { dataset: { subscription: d.subscription_id } },
      h("td", {}, h("a", { class: "mono small", href: "#/subscriptions/" + encodeURIComponent(d.subscription_id) + "/logs" }, d.subscription_id),
        h("div", { class: "small muted mono wrap" }, d.url)),
      h("td", {}, stateBadge(d.status)),
      h("td", {}, String(d.attempt_count)),
      h("td", { class: "small wrap" }, d.last_status ? String(d.last_status) : d.last_error || "—",
        d.last_attempt_at ? h("div", { class: "muted", title: when(d.last_attempt_at) }, ago(d.last_attempt_at)) : null),
      h("td", {}, h("a", { class: "mono small", href: "#/deliveries/" + encodeURIComponent(d.id) }, d.id)),
      h("td", {}, rerunButton(d.id, notices))))))];
}

export async function detail(main, params, ctx) {
  let e;
  try {
    e = await api("GET", "/v1/events/" + encodeURIComponent(params.id));
  } catch (err) {
    const n = historyNotice(err, () => ctx.go(window.location.hash));
    if (!n) throw err;
    if (!ctx.stale()) replace(main, h("div", { class: "pagehead" }, h("h1", {}, "Event")), n);
    return;
  }
  if (ctx.stale()) return;
  const notices = h("div");
  replace(main,
    h("div", { class: "crumbs" }, h("a", { href: "#/events" }, "Events"), " / ", e.id),
    h("div", { class: "pagehead" }, h("div", {}, h("h1", {}, e.type), h("p", { class: "sub mono" }, e.id))),
    notices,
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, h("h2", {}, "Event"), h("dl", { class: "props" },
        h("dt", {}, "Subject"), h("dd", { class: "wrap" }, e.subject || "—"),
        h("dt", {}, "Source"), h("dd", { class: "wrap" }, e.source || "—"),
        h("dt", {}, "Occurred"), h("dd", {}, e.occurred_at ? when(e.occurred_at) : "—"),
        h("dt", {}, "Received"), h("dd", {}, when(e.received_at), h("span", { class: "muted" }, " · ", ago(e.received_at))),
        e.changed.length ? [h("dt", {}, "Changed"), h("dd", {}, e.changed.map((f) => h("span", { class: "chip" }, f)))] : null)),
      sendPanel(e, notices)),
    h("div", { class: "panel" }, h("h2", {}, "Data"), h("pre", { class: "json", id: "event-data" }, pretty(e.data))),
    e.previous !== null ? h("div", { class: "panel" }, h("h2", {}, "Previous values"), h("pre", { class: "json" }, pretty(e.previous))) : null,
    h("div", { class: "panel", id: "event-deliveries" }, h("h2", {}, "Deliveries"), deliveriesTable(e.deliveries, h("div")),
      e.deliveries_next_cursor ? h("p", { class: "small muted" }, "More deliveries than one page: see each endpoint's Logs tab.") : null));
}

// sendPanel sends the event to another endpoint of the tenant, shaped for
// it; once per endpoint unless a new attempt is asked for.
function sendPanel(e, notices) {
  const pick = h("select", { id: "send-to", required: true }, h("option", { value: "" }, "Loading the endpoints…"));
  api("GET", "/v1/subscriptions" + qs({ limit: 250 })).then((p) => {
    const got = new Set(e.deliveries.map((d) => d.subscription_id));
    pick.replaceChildren(h("option", { value: "" }, "Pick an endpoint"),
      ...p.data.map((s) => h("option", { value: s.id, disabled: s.enabled ? undefined : true },
        (s.name || s.url) + (got.has(s.id) ? " (has it)" : "") + (s.enabled ? "" : " (disabled)"))));
  }).catch((err) => replace(notices, errorNotice(err, "The endpoints could not be listed")));
  const again = h("input", { type: "checkbox", id: "send-new-attempt" });
  const send = h("button", { type: "button", class: "primary", id: "send-event", onclick: async () => {
    if (!pick.value) { replace(notices, h("div", { class: "notice warn", role: "alert" }, "Pick the endpoint to send the event to.")); return; }
    send.disabled = true;
    try {
      const a = await api("POST", "/v1/events/" + encodeURIComponent(e.id) + "/redeliver", { subscription_id: pick.value, new_attempt: again.checked });
      const link = h("a", { class: "mono", href: "#/deliveries/" + encodeURIComponent(a.delivery_id) }, a.delivery_id);
      replace(notices, a.duplicate
        ? h("div", { class: "notice warn", role: "status", id: "send-result" }, "That endpoint already has this event (delivery ", link, "); nothing was sent. Tick “Send it again” for a new attempt.")
        : h("div", { class: "notice ok", role: "status", id: "send-result" }, "Sent to the endpoint as delivery ", link, "."));
      if (!a.duplicate) toast("Event sent");
    } catch (err) {
      replace(notices, errorNotice(err, "The event was not sent"));
    } finally {
      send.disabled = false;
    }
  } }, "Send");
  return h("div", { class: "panel" }, h("h2", {}, "Send to another endpoint"),
    h("p", { class: "muted" }, "The event as received, shaped for that endpoint (its payload, headers and signature), with a delivery id of its own."),
    h("div", { class: "field" }, h("label", { for: "send-to" }, "Endpoint"), pick),
    h("label", { class: "inline", for: "send-new-attempt" }, again, "Send it again if that endpoint already has it"),
    h("p", {}, send));
}
