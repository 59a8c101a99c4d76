// The Logs tab of an endpoint. The delivery history (every attempt, what
// was sent and answered) comes from the history API of the logs service;
// until this Hookline serves it, the tab says so and points at what there
// is: the test button's outcome and the dead letters. Alert emails link
// here (#/subscriptions/<id>/logs).
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { title } from "./subscriptions.js";

export async function tab(main, params, ctx) {
  const sub = await api("GET", "/v1/subscriptions/" + encodeURIComponent(params.id));
  if (ctx.stale()) return;
  const id = encodeURIComponent(sub.id);
  replace(main,
    h("div", { class: "crumbs" }, h("a", { href: "#/subscriptions" }, "Endpoints"), " / ", h("a", { href: "#/subscriptions/" + id }, title(sub)), " / Logs"),
    h("div", { class: "pagehead" }, h("div", {}, h("h1", {}, "Logs"), h("p", { class: "sub" }, title(sub)))),
    h("div", { class: "empty", id: "history-unavailable" },
      h("h2", {}, "Delivery history is not available on this Hookline yet"),
      h("p", {}, "Each attempt, with what was sent and what the endpoint answered, is shown here once the delivery history service runs."),
      h("p", {}, "Meanwhile: ", h("a", { href: "#/subscriptions/" + id }, "send a test event"), " to see what the endpoint answers, or see the ",
        h("a", { href: "#/dead-letters?subscription_id=" + id }, "deliveries it gave up"), ".")));
}
