// The event type catalog: what can be subscribed to, and the JSON Schema
// an event's data is checked against when the operator asks.
import { api, qs } from "./api.js";
import { h, replace, when, emptyState } from "./dom.js";

export async function list(main, _params, ctx) {
  const cursor = ctx.query.get("cursor") || "";
  const page = await api("GET", "/v1/event-types" + qs({ limit: 100, cursor }));
  if (ctx.stale()) return;
  const head = h("div", { class: "pagehead" },
    h("div", {}, h("h1", {}, "Event types"), h("p", { class: "sub" }, "The events you can subscribe an endpoint to.")));
  if (page.data.length === 0 && !cursor) {
    replace(main, head, emptyState("No event types described yet",
      "Endpoints can still subscribe to any type by name or pattern. The operator describes types with POST /v1/event-types."));
    return;
  }
  replace(main, head,
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Description"), h("th", {}, "Schema"), h("th", {}, "Updated"))),
      h("tbody", {}, page.data.map((t) => h("tr", {},
        h("td", { class: "mono name" }, t.name),
        h("td", { class: "wrap" }, t.description || h("span", { class: "muted" }, "—")),
        h("td", {}, t.schema ? h("details", {}, h("summary", {}, t.validate ? "checked on publish" : "documented"), h("pre", { class: "json" }, JSON.stringify(t.schema, null, 2))) : h("span", { class: "muted" }, "none")),
        h("td", { class: "small muted" }, when(t.updated_at)))))),
    h("div", { class: "pager" }, h("span", {}),
      h("span", {}, cursor ? h("a", { class: "button", href: "#/event-types" }, "First page") : null, " ",
        page.next_cursor ? h("a", { class: "button", href: "#/event-types?cursor=" + encodeURIComponent(page.next_cursor) }, "Next page") : null)));
}
