package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/logstore/pglogstore"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

// historyRoutes are the history's GET calls, with a path for each.
var historyRoutes = []string{
	"/v1/events", "/v1/events/evt_1", "/v1/deliveries", "/v1/deliveries/dlv_1",
	"/v1/subscriptions/sub_1/attempts", "/v1/subscriptions/sub_1/stats", "/v1/stats",
}

// TestHistoryOff: without a store the history answers 404 saying so,
// never an empty list.
func TestHistoryOff(t *testing.T) {
	h := offlineServer(t).Handler()
	for _, path := range historyRoutes {
		rec := do(t, h, "GET", path, "key-acme", "")
		p := problemOf(t, http.StatusNotFound, rec.Header(), rec.Body.Bytes())
		if !strings.HasSuffix(p.Type, "/not-enabled") {
			t.Errorf("GET %s: %+v, want not-enabled", path, p)
		}
	}
}

// TestHistoryBadFilters: a bad filter is a 400 naming the parameter,
// before the store is asked.
func TestHistoryBadFilters(t *testing.T) {
	s := offlineServer(t)
	s.History = unreachable(t)
	h := s.Handler()
	tests := []struct {
		path, field string
	}{
		{"/v1/events?since=yesterday", "since"},
		{"/v1/events?until=2026-01-01T00:00:00Z&since=2026-01-02T00:00:00Z", "until"},
		{"/v1/events?limit=0", "limit"},
		{"/v1/events?limit=251", "limit"},
		{"/v1/events?limit=ten", "limit"},
		{"/v1/events?tpye=order.created", "tpye"},
		{"/v1/deliveries?status=lost", "status"},
		{"/v1/deliveries?since=2026-13-01T00:00:00Z", "since"},
		{"/v1/subscriptions/sub_1/attempts?status=pending", "status"},
		{"/v1/subscriptions/sub_1/attempts?until=noon", "until"},
		{"/v1/deliveries?until=", "until"},
		{"/v1/events?since=", "since"},
		{"/v1/events?limit=", "limit"},
		{"/v1/deliveries?status=", "status"},
		{"/v1/events?subject=l%14%00", "subject"},
		{"/v1/subscriptions/sub_1/stats?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
		// Found by schemathesis: given empty, a filter is refused, not ignored.
		{"/v1/deliveries?until=", "until"},
		{"/v1/events?since=", "since"},
		{"/v1/events?limit=", "limit"},
		{"/v1/subscriptions/sub_1/attempts?status=", "status"},
		{"/v1/subscriptions/sub_1/stats?since=&until=", "since"},
		{"/v1/stats?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:01Z", "since"},
		{"/v1/stats?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
		{"/v1/stats?bucket=0", "bucket"},
		{"/v1/stats?bucket=1&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z", "bucket"},
		{"/v1/stats?limit=251", "limit"},
		{"/v1/stats?subscription_id=sub_1", "subscription_id"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := do(t, h, "GET", tc.path, "key-acme", "")
			p := problemOf(t, http.StatusBadRequest, rec.Header(), rec.Body.Bytes())
			if !hasField(p.Errors, tc.field) {
				t.Errorf("errors %+v, want one naming %s", p.Errors, tc.field)
			}
		})
	}
}

// unreachable is a read-only store whose database is down.
func unreachable(t *testing.T) logstore.Reader {
	t.Helper()
	s, err := pglogstore.Open(context.Background(), pglogstore.Config{
		URL: "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", ReadOnly: true,
	}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestHistoryDatabaseDown: every history call answers 503 with
// Retry-After while the database is down, never a false empty list.
func TestHistoryDatabaseDown(t *testing.T) {
	s := newStack(t)
	s.srv.History = unreachable(t)
	sub := s.create(t, "key-acme", subBody(t, ""))
	paths := append([]string{}, historyRoutes...)
	paths = append(paths, "/v1/subscriptions/"+sub.ID+"/attempts", "/v1/subscriptions/"+sub.ID+"/stats")
	for _, path := range paths[:4] {
		checkUnavailable(t, s, "GET", path, "")
	}
	for _, path := range paths[6:] {
		checkUnavailable(t, s, "GET", path, "")
	}
	checkUnavailable(t, s, "POST", "/v1/deliveries/dlv_1/redeliver", "")
	checkUnavailable(t, s, "POST", "/v1/events/evt_1/redeliver", `{"subscription_id":"`+sub.ID+`"}`)
	checkUnavailable(t, s, "POST", "/v1/subscriptions/"+sub.ID+"/recover", `{"since":"2026-01-01T00:00:00Z"}`)
}

func checkUnavailable(t *testing.T, s *stack, method, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer key-acme")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct{ Status int }
	_ = json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s %s: %d (Retry-After %q), want 503 with Retry-After", method, path, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// history is a stack with a store, and a writer to fill it as the logs
// service would.
type history struct {
	*stack
	store *pglogstore.Store
}

func newHistory(t *testing.T) *history {
	t.Helper()
	s := newStack(t)
	dbURL := testinfra.Postgres(t)
	w, err := pglogstore.Open(context.Background(), pglogstore.Config{URL: dbURL}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	r, err := pglogstore.Open(context.Background(), pglogstore.Config{URL: dbURL, ReadOnly: true}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	s.srv.History = r
	s.srv.EventRedeliveries = idempotency.New(testinfra.Redis(t), "hookline:test:"+s.cfg.Topics.Prefix+"redelivery:", time.Hour)
	return &history{stack: s, store: w}
}

// seed stores, for sub of tenant, an event and its delivery with two
// attempts: failed then (when delivered) delivered.
func (h *history) seed(t *testing.T, tenant, sub string, at time.Time, delivered bool) (logstore.Event, logstore.Delivery) {
	t.Helper()
	e := logstore.Event{Tenant: tenant, ID: id.New("evt"), Type: "order.created", Subject: "ord_1", ReceivedAt: at,
		OccurredAt: at, Data: json.RawMessage(`{"total":42,"note":"<script>alert(1)</script>"}`)}
	d := logstore.Delivery{Tenant: tenant, ID: id.Delivery(e.ID, sub), SubscriptionID: sub, EventID: e.ID, EventType: e.Type,
		URL: "https://example.com/hook", Payload: []byte(`{"id":"` + e.ID + `","data":{"total":42}}`), CreatedAt: at, EventTime: at}
	first := logstore.Attempt{Tenant: tenant, DeliveryID: d.ID, DeliveryCreatedAt: at, SubscriptionID: sub, EventID: e.ID,
		EventType: e.Type, Number: 1, StartedAt: at.Add(time.Second), DurationMS: 30, URL: d.URL,
		RequestHeaders: http.Header{"Webhook-Id": {d.ID}, "Authorization": {"Bearer s3cr3t"}},
		ResponseStatus: 500, ResponseHeaders: http.Header{"Content-Type": {"text/html"}}, ResponseBody: []byte("<h1>down</h1>"),
		Error: "HTTP 500", Outcome: logstore.StateFailed}
	attempts := []logstore.Attempt{first}
	if delivered {
		first.Outcome, first.NextAttemptAt = logstore.StateRetrying, at.Add(time.Minute)
		second := first
		second.Number, second.StartedAt, second.ResponseStatus, second.ResponseBody, second.Error, second.Outcome =
			2, at.Add(time.Minute), 204, nil, "", logstore.StateDelivered
		second.NextAttemptAt = time.Time{}
		attempts = []logstore.Attempt{first, second}
	}
	if _, err := h.store.Write(context.Background(), logstore.Batch{Events: []logstore.Event{e},
		Deliveries: []logstore.Delivery{d}, Attempts: attempts}); err != nil {
		t.Fatal(err)
	}
	return e, d
}

// TestHistoryQueries: the tenant's events, deliveries and attempts, with
// filters, pages, stats; another tenant's ids are not found.
func TestHistoryQueries(t *testing.T) {
	h := newHistory(t)
	sub := h.create(t, "key-acme", subBody(t, ""))
	other := h.create(t, "key-globex", subBody(t, ""))
	now := time.Now().UTC().Truncate(time.Millisecond)
	e1, ok := h.seed(t, "acme", sub.ID, now.Add(-time.Hour), true)
	e2, failed := h.seed(t, "acme", sub.ID, now.Add(-30*time.Minute), false)
	ge, gd := h.seed(t, "globex", other.ID, now.Add(-10*time.Minute), true)

	var events page[eventView]
	decodeInto(t, h.must(t, 200, "GET", "/v1/events?limit=1", "key-acme", ""), &events)
	if len(events.Data) != 1 || events.Data[0].ID != e2.ID || events.NextCursor == nil {
		t.Fatalf("first page of events %+v, want e2 and a cursor", events)
	}
	decodeInto(t, h.must(t, 200, "GET", "/v1/events?limit=1&cursor="+url.QueryEscape(*events.NextCursor), "key-acme", ""), &events)
	if len(events.Data) != 1 || events.Data[0].ID != e1.ID || events.NextCursor != nil {
		t.Fatalf("second page of events %+v, want e1 and no cursor", events)
	}
	if !sameJSON(t, events.Data[0].Data, e1.Data) {
		t.Errorf("event data %s, want %s", events.Data[0].Data, e1.Data)
	}
	// A cursor of another list is a bad cursor.
	var attempts page[attemptView]
	decodeInto(t, h.must(t, 200, "GET", "/v1/subscriptions/"+sub.ID+"/attempts?limit=1", "key-acme", ""), &attempts)
	status, body := h.call(t, "GET", "/v1/events?cursor="+url.QueryEscape(*attempts.NextCursor), "key-acme", "")
	if p := problemOf(t, status, http.Header{"Content-Type": {"application/problem+json"}}, body); status != 400 || !hasField(p.Errors, "cursor") {
		t.Errorf("an attempts cursor on the events list: %d %s, want 400 naming cursor", status, body)
	}

	var withDeliveries eventWithDeliveries
	decodeInto(t, h.must(t, 200, "GET", "/v1/events/"+e1.ID, "key-acme", ""), &withDeliveries)
	if len(withDeliveries.Deliveries) != 1 || withDeliveries.Deliveries[0].ID != ok.ID || withDeliveries.Deliveries[0].Status != "delivered" {
		t.Errorf("event with deliveries %+v", withDeliveries)
	}

	var deliveries page[deliveryView]
	decodeInto(t, h.must(t, 200, "GET", "/v1/deliveries?status=failed&subscription_id="+sub.ID, "key-acme", ""), &deliveries)
	if len(deliveries.Data) != 1 || deliveries.Data[0].ID != failed.ID || deliveries.Data[0].LastStatus != 500 {
		t.Errorf("failed deliveries %+v, want the failed one", deliveries.Data)
	}
	decodeInto(t, h.must(t, 200, "GET", "/v1/deliveries?event_id="+e2.ID, "key-acme", ""), &deliveries)
	if len(deliveries.Data) != 1 || deliveries.Data[0].ID != failed.ID {
		t.Errorf("deliveries of e2 %+v", deliveries.Data)
	}

	var one deliveryWithAttempts
	decodeInto(t, h.must(t, 200, "GET", "/v1/deliveries/"+ok.ID, "key-acme", ""), &one)
	if len(one.Attempts) != 2 || one.Attempts[0].Attempt != 2 || one.Attempts[1].Attempt != 1 {
		t.Fatalf("delivery attempts %+v, want 2 then 1", one.Attempts)
	}
	a := one.Attempts[1]
	checks := []struct {
		what string
		ok   bool
	}{
		{"payload", one.Payload != nil && one.Payload.Text == string(ok.Payload)},
		{"request body is the payload", a.Request.Body != nil && a.Request.Body.Text == string(ok.Payload)},
		{"authorization redacted", a.Request.Headers.Get("Authorization") == "Bearer "+logstore.Redacted},
		{"response status, headers, body", a.Response != nil && a.Response.Status == 500 && a.Response.Body.Text == "<h1>down</h1>" &&
			a.Response.Headers.Get("Content-Type") == "text/html"},
		{"outcome and next attempt", a.Outcome == "retrying" && a.NextAttemptAt != nil},
		{"error", a.Error == "HTTP 500"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s wrong: %+v", c.what, one)
		}
	}

	decodeInto(t, h.must(t, 200, "GET", "/v1/subscriptions/"+sub.ID+"/attempts?status=failed", "key-acme", ""), &attempts)
	if len(attempts.Data) != 1 || attempts.Data[0].DeliveryID != failed.ID || attempts.Data[0].Request.Body != nil {
		t.Errorf("failed attempts %+v, want the one, without its request body", attempts.Data)
	}
	var stats statsAnswer
	decodeInto(t, h.must(t, 200, "GET", "/v1/subscriptions/"+sub.ID+"/stats", "key-acme", ""), &stats)
	if stats.Attempts != 3 || stats.Delivered != 1 || stats.Retrying != 1 || stats.Failed != 1 || stats.LatencyMS.P99 != 30 {
		t.Errorf("stats %+v, want 3 attempts: 1 each, p99 30 ms", stats)
	}

	// The overview of the last hour: the tenant's three attempts, not
	// globex's, in minute buckets, its endpoint named.
	var ov overviewAnswer
	decodeInto(t, h.must(t, 200, "GET", "/v1/stats", "key-acme", ""), &ov)
	var inSeries int64
	for _, b := range ov.Series {
		inSeries += b.Attempts
		if b.Start.Before(ov.Since) || !b.Start.Before(ov.Until) {
			t.Errorf("bucket %v outside the window %v..%v", b.Start, ov.Since, ov.Until)
		}
	}
	if ov.Attempts != 3 || ov.Delivered != 1 || ov.Retrying != 1 || ov.Failed != 1 || ov.BucketSeconds != 60 || inSeries != 3 ||
		ov.SubscriptionsTotal != 1 || len(ov.Subscriptions) != 1 || ov.Subscriptions[0].SubscriptionID != sub.ID ||
		ov.Subscriptions[0].URL != sub.URL || ov.Until.Sub(ov.Since) != time.Hour {
		t.Errorf("overview %+v, want the tenant's 3 attempts of the last hour", ov)
	}

	// Another tenant's ids: 404, like unknown ones.
	for _, path := range []string{"/v1/events/" + ge.ID, "/v1/deliveries/" + gd.ID, "/v1/subscriptions/" + other.ID + "/attempts",
		"/v1/subscriptions/" + other.ID + "/stats", "/v1/deliveries?subscription_id=" + other.ID} {
		if status, body := h.call(t, "GET", path, "key-acme", ""); status != 404 {
			t.Errorf("GET %s as another tenant: %d %s, want 404", path, status, body)
		}
	}
	decodeInto(t, h.must(t, 200, "GET", "/v1/deliveries?event_id="+ge.ID, "key-acme", ""), &deliveries)
	if len(deliveries.Data) != 0 {
		t.Errorf("another tenant's event's deliveries listed: %+v", deliveries.Data)
	}
}

// TestHistoryPortal: a portal session reads its tenant's history; one
// restricted to some subscriptions reads only theirs.
func TestHistoryPortal(t *testing.T) {
	h := newHistory(t)
	h.srv.Portal = testPortal(t)
	mine := h.create(t, "key-acme", subBody(t, ""))
	theirs := h.create(t, "key-acme", subBody(t, ""))
	now := time.Now().UTC().Truncate(time.Millisecond)
	e1, d1 := h.seed(t, "acme", mine.ID, now.Add(-time.Hour), true)
	e2, d2 := h.seed(t, "acme", theirs.ID, now.Add(-time.Hour), true)
	var all, restricted portalSessionAnswer
	decodeInto(t, h.must(t, 201, "POST", "/v1/portal/sessions", "key-acme", `{}`), &all)
	decodeInto(t, h.must(t, 201, "POST", "/v1/portal/sessions", "key-acme", `{"subscription_ids":["`+mine.ID+`"]}`), &restricted)

	for _, path := range []string{"/v1/events", "/v1/events/" + e2.ID, "/v1/deliveries/" + d2.ID,
		"/v1/subscriptions/" + theirs.ID + "/attempts", "/v1/deliveries?subscription_id=" + mine.ID} {
		h.must(t, 200, "GET", path, all.Token, "")
	}
	for _, path := range []string{"/v1/events/" + e1.ID, "/v1/deliveries/" + d1.ID, "/v1/subscriptions/" + mine.ID + "/attempts",
		"/v1/subscriptions/" + mine.ID + "/stats", "/v1/deliveries?subscription_id=" + mine.ID} {
		h.must(t, 200, "GET", path, restricted.Token, "")
	}
	refused := map[string]int{
		"/v1/events":                                   403,
		"/v1/events/" + e2.ID:                          404,
		"/v1/deliveries/" + d2.ID:                      404,
		"/v1/subscriptions/" + theirs.ID + "/attempts": 404,
		"/v1/subscriptions/" + theirs.ID + "/stats":    404,
		"/v1/deliveries?subscription_id=" + theirs.ID:  404,
		"/v1/deliveries?event_id=" + e1.ID:             400, // must name its subscription
	}
	for path, want := range refused {
		if status, body := h.call(t, "GET", path, restricted.Token, ""); status != want {
			t.Errorf("restricted GET %s: %d %s, want %d", path, status, body, want)
		}
	}
	for path, body := range map[string]string{
		"/v1/deliveries/" + d2.ID + "/redeliver":      "",
		"/v1/subscriptions/" + theirs.ID + "/recover": `{"since":"2026-01-01T00:00:00Z"}`,
		"/v1/events/" + e2.ID + "/redeliver":          `{"subscription_id":"` + mine.ID + `"}`,
	} {
		if status, out := h.call(t, "POST", path, restricted.Token, body); status != 404 && status != 400 {
			t.Errorf("restricted POST %s: %d %s, want refused", path, status, out)
		}
	}
	// The overview of a restricted session counts its subscriptions only.
	var ov overviewAnswer
	decodeInto(t, h.must(t, 200, "GET", "/v1/stats", all.Token, ""), &ov)
	if ov.Attempts != 4 || ov.SubscriptionsTotal != 2 {
		t.Errorf("overview of the whole tenant %+v, want 4 attempts of 2 subscriptions", ov)
	}
	decodeInto(t, h.must(t, 200, "GET", "/v1/stats", restricted.Token, ""), &ov)
	if ov.Attempts != 2 || ov.SubscriptionsTotal != 1 || ov.Subscriptions[0].SubscriptionID != mine.ID {
		t.Errorf("overview of a restricted session %+v, want its subscription's 2 attempts only", ov)
	}

	var got eventWithDeliveries
	decodeInto(t, h.must(t, 200, "GET", "/v1/events/"+e1.ID, restricted.Token, ""), &got)
	for _, d := range got.Deliveries {
		if d.SubscriptionID != mine.ID {
			t.Errorf("restricted session sees delivery %+v of another subscription", d)
		}
	}
}

// TestRedeliver: a delivery re-run from the history goes to
// hookline.deliveries with its id, payload and created_at, as a replay
// past the delivered mark; an event sent to another subscription goes to
// hookline.redeliveries naming it, once unless a new attempt is asked for;
// recover replays the failed deliveries of the window.
func TestRedeliver(t *testing.T) {
	h := newHistory(t)
	sub := h.create(t, "key-acme", subBody(t, ""))
	fresh := h.create(t, "key-acme", subBody(t, `{"name":"new endpoint"}`))
	disabled := h.create(t, "key-acme", subBody(t, `{"enabled":false}`))
	now := time.Now().UTC().Truncate(time.Millisecond)
	e1, delivered := h.seed(t, "acme", sub.ID, now.Add(-2*time.Hour), true)
	_, failed := h.seed(t, "acme", sub.ID, now.Add(-time.Hour), false)
	_, older := h.seed(t, "acme", sub.ID, now.Add(-48*time.Hour), false)

	var a redeliveryAnswer
	decodeInto(t, h.must(t, 202, "POST", "/v1/deliveries/"+delivered.ID+"/redeliver", "key-acme", ""), &a)
	if a.DeliveryID != delivered.ID || !strings.HasPrefix(a.RedeliveryID, "rdl_") {
		t.Fatalf("redeliver answer %+v", a)
	}
	recs := testinfra.WaitRecords(t, h.cfg, h.cfg.Topics.Deliveries, 1, 30*time.Second)
	d := decodeDelivery(t, h, recs[0])
	if d.ID != delivered.ID || d.Payload != string(delivered.Payload) || !d.CreatedAt.Equal(delivered.CreatedAt) ||
		!d.Replay || d.Redelivery != a.RedeliveryID || !d.ResolveURL || d.Attempt != 0 || string(recs[0].Key) != sub.ID {
		t.Errorf("redelivery record %+v", d)
	}
	if status, body := h.call(t, "POST", "/v1/deliveries/dlv_unknown/redeliver", "key-acme", ""); status != 404 {
		t.Errorf("unknown delivery: %d %s", status, body)
	}
	if status, body := h.call(t, "POST", "/v1/deliveries/"+delivered.ID+"/redeliver", "key-globex", ""); status != 404 {
		t.Errorf("another tenant's delivery: %d %s", status, body)
	}

	// An old event to the new subscription: once, then once more on demand.
	body := `{"subscription_id":"` + fresh.ID + `"}`
	decodeInto(t, h.must(t, 202, "POST", "/v1/events/"+e1.ID+"/redeliver", "key-acme", body), &a)
	if a.DeliveryID != id.Delivery(e1.ID, fresh.ID) || a.Duplicate {
		t.Fatalf("event redeliver answer %+v", a)
	}
	var again redeliveryAnswer
	decodeInto(t, h.must(t, 200, "POST", "/v1/events/"+e1.ID+"/redeliver", "key-acme", body), &again)
	if !again.Duplicate || again.DeliveryID != a.DeliveryID {
		t.Errorf("second call %+v, want a duplicate sending nothing", again)
	}
	again = redeliveryAnswer{}
	decodeInto(t, h.must(t, 202, "POST", "/v1/events/"+e1.ID+"/redeliver", "key-acme",
		`{"subscription_id":"`+fresh.ID+`","new_attempt":true}`), &again)
	if again.Duplicate || !strings.HasPrefix(again.RedeliveryID, "rdl_") {
		t.Errorf("new attempt %+v, want a redelivery", again)
	}
	reds := testinfra.WaitRecords(t, h.cfg, h.cfg.Topics.Redeliveries, 2, 30*time.Second)
	if n := len(testinfra.Records(t, h.cfg, h.cfg.Topics.Redeliveries)); n != 2 {
		t.Errorf("%d records on the redeliveries topic, want 2", n)
	}
	var ev record.Event
	if err := h.srv.Codecs.Event.Unmarshal(reds[0].Value, &ev); err != nil || ev.ID != e1.ID || ev.Data != string(e1.Data) {
		t.Errorf("redelivered event %+v, %v", ev, err)
	}
	if headerValue(reds[0], wire.HeaderSubscription) != fresh.ID || headerValue(reds[1], wire.HeaderRedelivery) != again.RedeliveryID {
		t.Errorf("redeliveries headers %v / %v", reds[0].Headers, reds[1].Headers)
	}
	for _, bad := range []struct{ body, field string }{
		{`{}`, "subscription_id"},
		{`{"subscription_id":"sub_nope"}`, "subscription_id"},
		{`{"subscription_id":"` + disabled.ID + `"}`, "subscription_id"},
		{`{"subscription_id":"` + sub.ID + `","extra":1}`, "extra"},
	} {
		status, out := h.call(t, "POST", "/v1/events/"+e1.ID+"/redeliver", "key-acme", bad.body)
		if p := problemOf(t, status, http.Header{"Content-Type": {"application/problem+json"}}, out); status != 400 || !hasField(p.Errors, bad.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", bad.body, status, out, bad.field)
		}
	}

	// Recover the window of the last day: the failed one, not the older.
	var rec recoverAnswer
	since := now.Add(-24 * time.Hour).Format(time.RFC3339)
	decodeInto(t, h.must(t, 202, "POST", "/v1/subscriptions/"+sub.ID+"/recover", "key-acme", `{"since":"`+since+`"}`), &rec)
	if rec.Count != 1 || rec.DeliveryIDs[0] != failed.ID || rec.NextUntil != nil {
		t.Errorf("recover %+v, want the failed delivery of the window", rec)
	}
	recs = testinfra.WaitRecords(t, h.cfg, h.cfg.Topics.Deliveries, 2, 30*time.Second)
	if d := decodeDelivery(t, h, recs[1]); d.ID != failed.ID || !d.Replay || d.Redelivery != "" {
		t.Errorf("recovered record %+v, want an ordinary replay", d)
	}
	_ = older

	// The event to the subscription it was delivered to: that delivery,
	// not a second one; a new attempt is a re-run of it.
	var same redeliveryAnswer
	body = `{"subscription_id":"` + sub.ID + `"}`
	decodeInto(t, h.must(t, 200, "POST", "/v1/events/"+e1.ID+"/redeliver", "key-acme", body), &same)
	if !same.Duplicate || same.DeliveryID != delivered.ID {
		t.Errorf("the event to its own subscription: %+v, want a duplicate of %s", same, delivered.ID)
	}
	same = redeliveryAnswer{}
	decodeInto(t, h.must(t, 202, "POST", "/v1/events/"+e1.ID+"/redeliver", "key-acme",
		`{"subscription_id":"`+sub.ID+`","new_attempt":true}`), &same)
	recs = testinfra.WaitRecords(t, h.cfg, h.cfg.Topics.Deliveries, 3, 30*time.Second)
	if d := decodeDelivery(t, h, recs[2]); d.ID != delivered.ID || !d.CreatedAt.Equal(delivered.CreatedAt) || d.Redelivery != same.RedeliveryID || same.RedeliveryID == "" {
		t.Errorf("new attempt of a stored delivery: %+v (answer %+v), want a re-run of %s", d, same, delivered.ID)
	}
	if n := len(testinfra.Records(t, h.cfg, h.cfg.Topics.Redeliveries)); n != 2 {
		t.Errorf("%d records on the redeliveries topic, want still 2", n)
	}
	for _, bad := range []struct{ body, field string }{
		{`{}`, "since"},
		{`{"since":"` + now.Format(time.RFC3339) + `","until":"` + now.Add(-time.Hour).Format(time.RFC3339) + `"}`, "since"},
	} {
		status, out := h.call(t, "POST", "/v1/subscriptions/"+sub.ID+"/recover", "key-acme", bad.body)
		if p := problemOf(t, status, http.Header{"Content-Type": {"application/problem+json"}}, out); status != 400 || !hasField(p.Errors, bad.field) {
			t.Errorf("recover %s: %d %s, want 400 naming %s", bad.body, status, out, bad.field)
		}
	}
}

func decodeDelivery(t *testing.T, h *history, r *kgo.Record) record.Delivery {
	t.Helper()
	var d record.Delivery
	if err := h.srv.Codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
