// The overview: the last hour of deliveries (GET /v1/stats): how many per
// minute, how many succeeded, how long they took, and the endpoints
// failing the most first.
import { api } from "./api.js";
import { h, replace, emptyState } from "./dom.js";
import { historyNotice } from "./history.js";
import { slots, deliveriesChart, latencyChart } from "./chart.js";

function percent(part, whole) {
  if (!whole) return "—";
  const p = (100 * part) / whole;
  return (p >= 99.95 || p === 0 ? p.toFixed(0) : p.toFixed(1)) + "%";
}

export async function page(main, _params, ctx) {
  const head = h("div", { class: "pagehead" },
    h("div", {}, h("h1", {}, "Overview"), h("p", { class: "sub" }, "The last hour of deliveries, minute by minute.")),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => ctx.go("#/overview") }, "Refresh")));
  let st;
  try {
    st = await api("GET", "/v1/stats");
  } catch (err) {
    const n = historyNotice(err, () => ctx.go("#/overview"));
    if (!n) throw err;
    if (!ctx.stale()) replace(main, head, n);
    return;
  }
  if (ctx.stale()) return;
  if (!st.attempts) {
    replace(main, head, emptyState("No deliveries in the last hour", "Attempts show here, minute by minute, as soon as endpoints are sent webhooks."));
    return;
  }
  const buckets = slots(st.series, st.since, st.until, st.bucket_seconds);
  const failedShare = (st.retrying + st.failed) / st.attempts;
  const card = (label, value, note, cls, id) => h("div", { class: "panel stat " + (cls || ""), id },
    h("div", { class: "label" }, label), h("div", { class: "value" }, value), h("div", { class: "small muted" }, note));
  replace(main, head,
    h("div", { class: "stats" },
      card("Attempts", String(st.attempts), `${(st.attempts / (buckets.length || 1)).toFixed(1)} a minute on average`, "", "stat-attempts"),
      card("Success rate", percent(st.delivered, st.attempts), `${st.delivered} delivered, ${st.retrying} to retry, ${st.failed} given up`,
        failedShare > 0.2 ? "bad" : failedShare > 0.05 ? "warn" : "ok", "stat-success"),
      card("Latency", st.latency_ms.p50 + " ms", `median; p95 ${st.latency_ms.p95} ms, p99 ${st.latency_ms.p99} ms`, "", "stat-latency")),
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, h("h2", {}, "Deliveries per minute"),
        deliveriesChart(buckets, `Attempts per minute over the last hour: ${st.attempts} in all, ${st.delivered} delivered`),
        h("p", { class: "legend small" }, h("span", { class: "key delivered" }), "delivered ", h("span", { class: "key retrying" }), "failed, to retry ", h("span", { class: "key failed" }), "given up")),
      h("div", { class: "panel" }, h("h2", {}, "Latency"),
        latencyChart(buckets, `Attempt latency per minute over the last hour: median ${st.latency_ms.p50} ms, p95 ${st.latency_ms.p95} ms`),
        h("p", { class: "legend small" }, h("span", { class: "key p50" }), "median ", h("span", { class: "key p95" }), "p95"))),
    h("h2", { class: "section" }, "Endpoints, failing first"),
    h("table", { class: "list", id: "overview-endpoints" },
      h("thead", {}, h("tr", {}, h("th", {}, "Endpoint"), h("th", {}, "Attempts"), h("th", {}, "Success"), h("th", {}, "Not delivered"), h("th", {}, "p95"), h("th", {}, h("span", { class: "visually-hidden" }, "Logs")))),
      h("tbody", {}, st.subscriptions.map((e) => {
        const bad = e.retrying + e.failed;
        const id = encodeURIComponent(e.subscription_id);
        return h("tr", { class: bad ? "failing" : undefined },
          h("td", {}, h("a", { class: "name", href: "#/subscriptions/" + id }, e.name || e.url || e.subscription_id),
            h("div", { class: "small muted mono" }, e.subscription_id)),
          h("td", {}, String(e.attempts)),
          h("td", { class: bad / e.attempts > 0.2 ? "bad" : undefined }, percent(e.delivered, e.attempts)),
          h("td", {}, String(bad)),
          h("td", { class: "small" }, e.latency_ms.p95, " ms"),
          h("td", {}, h("a", { href: "#/subscriptions/" + id + "/logs" }, "Logs")));
      }))),
    st.subscriptions_total > st.subscriptions.length
      ? h("p", { class: "small muted" }, `The ${st.subscriptions.length} failing the most of ${st.subscriptions_total} endpoints with deliveries this hour.`) : null);
}
