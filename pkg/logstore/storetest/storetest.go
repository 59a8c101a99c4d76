// Package storetest is the conformance suite of logstore drivers: every
// driver runs Run against a real instance of its database, so that the
// query API and the logs service can rely on the same behaviour whatever
// the store (writes, idempotency, state order, filters, paging, tenant
// isolation, retention, stats, errors).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/logstore"
)

// Config is what a test asks of the store it opens.
type Config struct {
	Retention time.Duration // 0: the driver's default
	Now       func() time.Time
}

// Open returns a new, empty store for one test, closed when it ends.
type Open func(t *testing.T, cfg Config) logstore.Store

// Run runs the whole suite.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"RoundTrip", testRoundTrip},
		{"BodiesByReference", testBodiesByReference},
		{"Idempotent", testIdempotent},
		{"StateOrder", testStateOrder},
		{"EventFilters", testEventFilters},
		{"DeliveryFilters", testDeliveryFilters},
		{"AttemptFilters", testAttemptFilters},
		{"Paging", testPaging},
		{"TenantIsolation", testTenantIsolation},
		{"Retention", testRetention},
		{"Stats", testStats},
		{"Overview", testOverview},
		{"BadQueries", testBadQueries},
		{"BadRecords", testBadRecords},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// clock is a settable clock for a test's store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// base is the suite's "now": midday today (UTC), so that a few hours
// either way stay in one day's partition.
func base() time.Time { return time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour) }

func openAt(t *testing.T, open Open, now time.Time) logstore.Store {
	t.Helper()
	c := &clock{t: now}
	return open(t, Config{Now: c.Now})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func event(tenant, id string, at time.Time) logstore.Event {
	return logstore.Event{
		Tenant: tenant, ID: id, Type: "order.created", Subject: "ord_" + id, Source: "shop",
		OccurredAt: at.Add(-time.Second), ReceivedAt: at,
		Data: []byte(`{"id":"` + id + `", "total": 42}`), Changed: []string{"total"}, Previous: []byte(`{"total":41}`),
	}
}

func delivery(tenant, id, sub, eventID string, at time.Time) logstore.Delivery {
	return logstore.Delivery{
		Tenant: tenant, ID: id, SubscriptionID: sub, EventID: eventID, EventType: "order.created",
		URL: "https://example.com/hook", Payload: []byte(`{"id":"` + eventID + `","type":"order.created"}`),
		CreatedAt: at, EventTime: at.Add(-time.Second), State: logstore.StatePending,
	}
}

func attempt(d logstore.Delivery, n int32, at time.Time, outcome logstore.State) logstore.Attempt {
	a := logstore.Attempt{
		Tenant: d.Tenant, DeliveryID: d.ID, DeliveryCreatedAt: d.CreatedAt, SubscriptionID: d.SubscriptionID,
		EventID: d.EventID, EventType: d.EventType, Number: n, StartedAt: at, DurationMS: 120, URL: d.URL,
		RequestHeaders: http.Header{"Content-Type": {"application/json"}, "Webhook-Id": {d.ID}},
		RequestBody:    d.Payload, Outcome: outcome, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		ResponseHeaders: http.Header{"Content-Type": {"text/plain"}},
	}
	switch outcome {
	case logstore.StateDelivered:
		a.ResponseStatus, a.ResponseBody = 200, []byte("ok")
	case logstore.StateRetrying:
		a.ResponseStatus, a.ResponseBody, a.NextAttemptAt = 503, []byte("busy"), at.Add(30*time.Second)
	case logstore.StateFailed:
		a.ResponseStatus, a.ResponseBody = 400, []byte("bad")
	}
	return a
}

func write(t *testing.T, s logstore.Store, b logstore.Batch) logstore.WriteResult {
	t.Helper()
	res, err := s.Write(ctx(t), b)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	return res
}

func testRoundTrip(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	e := event("acme", "evt_1", now)
	d := delivery("acme", "dlv_1", "sub_1", e.ID, now.Add(time.Millisecond))
	a := attempt(d, 1, now.Add(2*time.Millisecond), logstore.StateDelivered)
	a.RequestHeaders.Set("Authorization", "Bearer s3cr3t")
	a.RequestHeaders.Set("X-Api-Key", "k3y")
	a.RequestHeaders.Set("Webhook-Signature", "v1,abc")
	a.ResponseHeaders.Set("Set-Cookie", "session=abc")
	a.ResponseBody = []byte(strings.Repeat("x", logstore.MaxResponseBody+10))
	a.StartedAt = a.StartedAt.Add(1500 * time.Nanosecond) // finer than a store keeps
	res := write(t, s, logstore.Batch{Events: []logstore.Event{e}, Deliveries: []logstore.Delivery{d}, Attempts: []logstore.Attempt{a}})
	if res.Events != 1 || res.Deliveries != 1 || res.Attempts != 1 || res.Expired != 0 {
		t.Fatalf("write result %+v, want one of each", res)
	}

	got, err := s.GetEvent(ctx(t), "acme", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || got.Type != e.Type || got.Subject != e.Subject || got.Source != e.Source ||
		!got.ReceivedAt.Equal(e.ReceivedAt) || !got.OccurredAt.Equal(e.OccurredAt) ||
		string(got.Data) != string(e.Data) || !slices.Equal(got.Changed, e.Changed) || string(got.Previous) != string(e.Previous) {
		t.Errorf("event read back as %+v, want %+v (data byte for byte)", got, e)
	}

	gd, err := s.GetDelivery(ctx(t), "acme", d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if gd.State != logstore.StateDelivered || gd.Attempts != 1 || gd.LastStatus != 200 || string(gd.Payload) != string(d.Payload) ||
		gd.SubscriptionID != "sub_1" || gd.EventID != e.ID || !gd.CreatedAt.Equal(d.CreatedAt) || !gd.EventTime.Equal(d.EventTime) ||
		!gd.LastAttemptAt.Equal(a.StartedAt.Truncate(time.Microsecond)) {
		t.Errorf("delivery read back as %+v", gd)
	}

	p, err := s.ListAttempts(ctx(t), "acme", logstore.AttemptQuery{DeliveryID: d.ID, WithBody: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Next != "" {
		t.Fatalf("attempts of the delivery: %d, next %q; want 1 and no next page", len(p.Items), p.Next)
	}
	ga := p.Items[0]
	checks := []struct {
		what string
		ok   bool
	}{
		{"number", ga.Number == 1},
		{"started_at in microseconds", ga.StartedAt.Equal(a.StartedAt.Truncate(time.Microsecond))},
		{"delivery_created_at", ga.DeliveryCreatedAt.Equal(d.CreatedAt)},
		{"duration", ga.DurationMS == 120},
		{"url", ga.URL == d.URL},
		{"outcome", ga.Outcome == logstore.StateDelivered},
		{"status", ga.ResponseStatus == 200},
		{"request body", string(ga.RequestBody) == string(d.Payload)},
		{"authorization redacted, scheme kept", ga.RequestHeaders.Get("Authorization") == "Bearer "+logstore.Redacted},
		{"api key redacted", ga.RequestHeaders.Get("X-Api-Key") == logstore.Redacted},
		{"signature kept", ga.RequestHeaders.Get("Webhook-Signature") == "v1,abc"},
		{"other headers kept", ga.RequestHeaders.Get("Webhook-Id") == d.ID},
		{"response cookie redacted", ga.ResponseHeaders.Get("Set-Cookie") == logstore.Redacted},
		{"response body bounded", len(ga.ResponseBody) == logstore.MaxResponseBody && ga.ResponseTruncated},
		{"trace id", ga.TraceID == a.TraceID},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("attempt read back: %s wrong: %+v", c.what, ga)
		}
	}
	// The caller's batch is not changed by the redaction.
	if a.RequestHeaders.Get("Authorization") != "Bearer s3cr3t" {
		t.Error("Write redacted the caller's own headers")
	}
	// Without WithBody, lists leave the request body out.
	p, err = s.ListAttempts(ctx(t), "acme", logstore.AttemptQuery{SubscriptionID: "sub_1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Items[0].RequestBody != nil {
		t.Errorf("list without WithBody: %d items, body %q; want 1 and none", len(p.Items), p.Items[0].RequestBody)
	}
}

// testBodiesByReference: an attempt that sent its delivery's payload
// names no body and reads back the payload, whichever comes first; the
// attempts of one batch request share the array one of them carries; a
// delivery keeps its route.
func testBodiesByReference(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	d := delivery("acme", "dlv_1", "sub_1", "evt_1", now)
	d.Route = &logstore.Route{Condition: "0123456789abcdef0123456789abcdef", Values: map[string]string{"data.shop": "acme"}}
	single := attempt(d, 1, now.Add(time.Second), logstore.StateDelivered)
	single.RequestBody = nil
	// The attempt first, its delivery in a later batch.
	write(t, s, logstore.Batch{Attempts: []logstore.Attempt{single}})
	write(t, s, logstore.Batch{Deliveries: []logstore.Delivery{d}})

	// Two deliveries of a batch: the second attempt is written before the
	// first, which carries the array.
	b1 := delivery("acme", "dlv_b1", "sub_1", "evt_b1", now)
	b2 := delivery("acme", "dlv_b2", "sub_1", "evt_b2", now)
	array := []byte("[" + string(b1.Payload) + "," + string(b2.Payload) + "]")
	carrier := attempt(b1, 1, now.Add(2*time.Second), logstore.StateDelivered)
	carrier.RequestBody = array
	named := attempt(b2, 1, now.Add(2*time.Second), logstore.StateDelivered)
	named.RequestBody, named.RequestBodyHash = nil, logstore.BodyHash(array)
	write(t, s, logstore.Batch{Deliveries: []logstore.Delivery{b1, b2}, Attempts: []logstore.Attempt{named}})
	write(t, s, logstore.Batch{Attempts: []logstore.Attempt{carrier}})

	for _, tc := range []struct {
		delivery string
		want     []byte
	}{
		{"dlv_1", d.Payload},
		{"dlv_b1", array},
		{"dlv_b2", array},
	} {
		p, err := s.ListAttempts(ctx(t), "acme", logstore.AttemptQuery{DeliveryID: tc.delivery, WithBody: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != 1 || string(p.Items[0].RequestBody) != string(tc.want) {
			t.Errorf("attempts of %s: %d, body %q; want 1 with %q", tc.delivery, len(p.Items), firstBody(p.Items), tc.want)
		}
	}
	gd, err := s.GetDelivery(ctx(t), "acme", d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if gd.Route == nil || gd.Route.Condition != d.Route.Condition || gd.Route.Values["data.shop"] != "acme" {
		t.Errorf("route read back as %+v, want %+v", gd.Route, d.Route)
	}
	if gb, err := s.GetDelivery(ctx(t), "acme", b1.ID); err != nil || gb.Route != nil {
		t.Errorf("a delivery to the subscription's own URL read back with route %+v (%v), want none", gb.Route, err)
	}
	// Lists leave payloads out unless asked.
	for _, with := range []bool{false, true} {
		p, err := s.ListDeliveries(ctx(t), "acme", logstore.DeliveryQuery{SubscriptionID: "sub_1", WithPayload: with})
		if err != nil || len(p.Items) != 3 {
			t.Fatalf("deliveries of sub_1: %d, %v; want 3", len(p.Items), err)
		}
		payloads := map[string]string{d.ID: string(d.Payload), b1.ID: string(b1.Payload), b2.ID: string(b2.Payload)}
		for _, got := range p.Items {
			if with && string(got.Payload) != payloads[got.ID] || !with && got.Payload != nil {
				t.Errorf("list (WithPayload %v): %s has payload %q", with, got.ID, got.Payload)
			}
		}
	}

	bad := named
	bad.DeliveryID, bad.RequestBodyHash = "dlv_bad", []byte("short")
	var re *logstore.RecordError
	if _, err := s.Write(ctx(t), logstore.Batch{Attempts: []logstore.Attempt{bad}}); !errors.As(err, &re) || re.Field != "request_body_hash" {
		t.Errorf("an attempt naming a body by a malformed hash: %v, want a RecordError on request_body_hash", err)
	}
}

func firstBody(items []logstore.Attempt) []byte {
	if len(items) == 0 {
		return nil
	}
	return items[0].RequestBody
}

func testIdempotent(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	e := event("acme", "evt_1", now)
	d := delivery("acme", "dlv_1", "sub_1", e.ID, now)
	a1 := attempt(d, 1, now.Add(time.Second), logstore.StateRetrying)
	a2 := attempt(d, 2, now.Add(time.Minute), logstore.StateDelivered)
	b := logstore.Batch{Events: []logstore.Event{e}, Deliveries: []logstore.Delivery{d}, Attempts: []logstore.Attempt{a1, a2}}
	first := write(t, s, b)
	if first.Events != 1 || first.Attempts != 2 || first.Deliveries != 1 {
		t.Fatalf("first write %+v", first)
	}
	// At least once: the same records again, alone and inside a batch
	// that repeats them, store nothing new.
	again := write(t, s, b)
	if again != (logstore.WriteResult{}) {
		t.Errorf("second write of the same batch stored %+v, want nothing", again)
	}
	dup := logstore.Batch{Events: []logstore.Event{e, e}, Deliveries: []logstore.Delivery{d, d}, Attempts: []logstore.Attempt{a2, a1, a2}}
	if res := write(t, s, dup); res != (logstore.WriteResult{}) {
		t.Errorf("a batch repeating stored records stored %+v, want nothing", res)
	}
	events, err := s.ListEvents(ctx(t), "acme", logstore.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	attempts, err := s.ListAttempts(ctx(t), "acme", logstore.AttemptQuery{SubscriptionID: "sub_1"})
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := s.ListDeliveries(ctx(t), "acme", logstore.DeliveryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) != 1 || len(attempts.Items) != 2 || len(deliveries.Items) != 1 {
		t.Errorf("stored %d events, %d attempts, %d deliveries; want 1, 2, 1", len(events.Items), len(attempts.Items), len(deliveries.Items))
	}
	if got := deliveries.Items[0]; got.State != logstore.StateDelivered || got.Attempts != 2 {
		t.Errorf("delivery state %s after %d attempts, want delivered after 2", got.State, got.Attempts)
	}
}

// testStateOrder: the records of one delivery come through different
// topics, in any order; the stored state is the same whatever the order.
func testStateOrder(t *testing.T, open Open) {
	now := base()
	d := delivery("acme", "dlv_1", "sub_1", "evt_1", now)
	a1 := attempt(d, 1, now.Add(time.Second), logstore.StateRetrying)
	a2 := attempt(d, 2, now.Add(time.Minute), logstore.StateRetrying)
	a3 := attempt(d, 3, now.Add(time.Hour), logstore.StateFailed)
	const a3Duration = 120 * time.Millisecond
	requeued := d // the retry scheduler re-queues it after attempt 2: no news
	requeued.Attempts = 2
	dlq := d // and the DLQ record, written as attempt 3 ended
	dlq.State, dlq.Attempts, dlq.LastError, dlq.LastStatus = logstore.StateFailed, 3, "gave up after 3 attempts: 400", 400
	dlq.UpdatedAt = a3.StartedAt.Add(a3Duration)
	replayed := d // replayed from the DLQ through the API
	replayed.UpdatedAt = now.Add(2 * time.Hour)
	replay := attempt(d, 1, now.Add(2*time.Hour+time.Second), logstore.StateDelivered) // a replay counts from 1 again
	replay.Replay = true

	orders := []struct {
		name    string
		batches []logstore.Batch
		want    logstore.State
		wantN   int32
	}{
		{"in order", []logstore.Batch{{Deliveries: []logstore.Delivery{d}}, {Attempts: []logstore.Attempt{a1}}, {Deliveries: []logstore.Delivery{requeued}}, {Attempts: []logstore.Attempt{a2}}, {Attempts: []logstore.Attempt{a3}}, {Deliveries: []logstore.Delivery{dlq}}}, logstore.StateFailed, 3},
		{"attempts first", []logstore.Batch{{Attempts: []logstore.Attempt{a3}}, {Attempts: []logstore.Attempt{a1, a2}}, {Deliveries: []logstore.Delivery{d, requeued}}}, logstore.StateFailed, 3},
		{"re-queue after its attempt", []logstore.Batch{{Attempts: []logstore.Attempt{a2}}, {Deliveries: []logstore.Delivery{requeued}}}, logstore.StateRetrying, 2},
		{"one batch", []logstore.Batch{{Deliveries: []logstore.Delivery{dlq, d, requeued}, Attempts: []logstore.Attempt{a2, a3, a1}}}, logstore.StateFailed, 3},
		{"replayed after the DLQ", []logstore.Batch{{Deliveries: []logstore.Delivery{d}, Attempts: []logstore.Attempt{a1, a2, a3}}, {Attempts: []logstore.Attempt{replay}}, {Deliveries: []logstore.Delivery{dlq, replayed}}}, logstore.StateDelivered, 1},
		{"replay pending", []logstore.Batch{{Attempts: []logstore.Attempt{a3}}, {Deliveries: []logstore.Delivery{replayed, dlq}}}, logstore.StatePending, 0},
	}
	for _, tc := range orders {
		t.Run(tc.name, func(t *testing.T) {
			s := openAt(t, open, now)
			for _, b := range tc.batches {
				write(t, s, b)
			}
			got, err := s.GetDelivery(ctx(t), "acme", d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.want || got.Attempts != tc.wantN {
				t.Errorf("state %s after %d attempts, want %s after %d", got.State, got.Attempts, tc.want, tc.wantN)
			}
			hasRecord := slices.ContainsFunc(tc.batches, func(b logstore.Batch) bool { return len(b.Deliveries) > 0 })
			if hasRecord && string(got.Payload) != string(d.Payload) {
				t.Errorf("payload %q, want %q", got.Payload, d.Payload)
			}
			switch got.State {
			case logstore.StateRetrying:
				if !got.NextAttemptAt.Equal(a2.NextAttemptAt) {
					t.Errorf("next attempt at %v, want %v", got.NextAttemptAt, a2.NextAttemptAt)
				}
			case logstore.StateFailed:
				// The DLQ record, written last, says why it gave up; the
				// last attempt's time stays the attempt's.
				hasDLQ := slices.ContainsFunc(tc.batches, func(b logstore.Batch) bool {
					return slices.ContainsFunc(b.Deliveries, func(d logstore.Delivery) bool { return d.State == logstore.StateFailed })
				})
				if hasDLQ && got.LastError != dlq.LastError || !got.LastAttemptAt.Equal(a3.StartedAt) {
					t.Errorf("failed with %q, last attempt at %v; want %q and %v", got.LastError, got.LastAttemptAt, dlq.LastError, a3.StartedAt)
				}
			case logstore.StateDelivered:
				if !got.LastAttemptAt.Equal(replay.StartedAt) || !got.UpdatedAt.Equal(replay.StartedAt) {
					t.Errorf("delivered at %v (state at %v), want the replay's %v", got.LastAttemptAt, got.UpdatedAt, replay.StartedAt)
				}
			}
		})
	}
	t.Run("attempts only", func(t *testing.T) {
		s := openAt(t, open, now)
		write(t, s, logstore.Batch{Attempts: []logstore.Attempt{a1}})
		got, err := s.GetDelivery(ctx(t), "acme", d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != logstore.StateRetrying || got.Payload != nil || got.SubscriptionID != "sub_1" || got.URL != d.URL {
			t.Errorf("a delivery known only by its attempt: %+v", got)
		}
	})
}

func testEventFilters(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	e1 := event("acme", "evt_1", now.Add(-3*time.Hour))
	e2 := event("acme", "evt_2", now.Add(-2*time.Hour))
	e2.Type = "order.paid"
	e3 := event("acme", "evt_3", now.Add(-time.Hour))
	e3.Subject = e1.Subject
	write(t, s, logstore.Batch{Events: []logstore.Event{e1, e2, e3}})
	cases := []struct {
		name string
		q    logstore.EventQuery
		want []string
	}{
		{"all, newest first", logstore.EventQuery{}, []string{"evt_3", "evt_2", "evt_1"}},
		{"type", logstore.EventQuery{Type: "order.created"}, []string{"evt_3", "evt_1"}},
		{"subject", logstore.EventQuery{Subject: e1.Subject}, []string{"evt_3", "evt_1"}},
		{"type and subject", logstore.EventQuery{Type: "order.paid", Subject: e1.Subject}, nil},
		{"since, inclusive", logstore.EventQuery{Since: e2.ReceivedAt}, []string{"evt_3", "evt_2"}},
		{"until, exclusive", logstore.EventQuery{Until: e2.ReceivedAt}, []string{"evt_1"}},
		{"window", logstore.EventQuery{Since: e1.ReceivedAt.Add(time.Minute), Until: e3.ReceivedAt}, []string{"evt_2"}},
		{"unknown type", logstore.EventQuery{Type: "nope"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.ListEvents(ctx(t), "acme", tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p.Items, func(e logstore.Event) string { return e.ID }); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := s.GetEvent(ctx(t), "acme", "evt_9"); !errors.Is(err, logstore.ErrNotFound) {
		t.Errorf("unknown event: %v, want ErrNotFound", err)
	}
}

func testDeliveryFilters(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	d1 := delivery("acme", "dlv_1", "sub_1", "evt_1", now.Add(-3*time.Hour))
	d2 := delivery("acme", "dlv_2", "sub_2", "evt_1", now.Add(-2*time.Hour))
	d3 := delivery("acme", "dlv_3", "sub_1", "evt_2", now.Add(-time.Hour))
	write(t, s, logstore.Batch{
		Deliveries: []logstore.Delivery{d1, d2, d3},
		Attempts:   []logstore.Attempt{attempt(d1, 1, d1.CreatedAt, logstore.StateFailed), attempt(d2, 1, d2.CreatedAt, logstore.StateDelivered)},
	})
	cases := []struct {
		name string
		q    logstore.DeliveryQuery
		want []string
	}{
		{"all, newest first", logstore.DeliveryQuery{}, []string{"dlv_3", "dlv_2", "dlv_1"}},
		{"subscription", logstore.DeliveryQuery{SubscriptionID: "sub_1"}, []string{"dlv_3", "dlv_1"}},
		{"event", logstore.DeliveryQuery{EventID: "evt_1"}, []string{"dlv_2", "dlv_1"}},
		{"subscription and event", logstore.DeliveryQuery{SubscriptionID: "sub_1", EventID: "evt_1"}, []string{"dlv_1"}},
		{"failed", logstore.DeliveryQuery{Status: logstore.StateFailed}, []string{"dlv_1"}},
		{"pending", logstore.DeliveryQuery{Status: logstore.StatePending}, []string{"dlv_3"}},
		{"delivered of sub_1", logstore.DeliveryQuery{SubscriptionID: "sub_1", Status: logstore.StateDelivered}, nil},
		{"window", logstore.DeliveryQuery{Since: d2.CreatedAt, Until: d3.CreatedAt}, []string{"dlv_2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.ListDeliveries(ctx(t), "acme", tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p.Items, func(d logstore.Delivery) string { return d.ID }); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			for _, d := range p.Items {
				if d.Payload != nil {
					t.Errorf("%s: a list carries the payload", d.ID)
				}
			}
		})
	}
	if _, err := s.GetDelivery(ctx(t), "acme", "dlv_9"); !errors.Is(err, logstore.ErrNotFound) {
		t.Errorf("unknown delivery: %v, want ErrNotFound", err)
	}
}

func testAttemptFilters(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	d1 := delivery("acme", "dlv_1", "sub_1", "evt_1", now.Add(-3*time.Hour))
	d2 := delivery("acme", "dlv_2", "sub_1", "evt_2", now.Add(-3*time.Hour))
	d3 := delivery("acme", "dlv_3", "sub_2", "evt_2", now.Add(-3*time.Hour))
	write(t, s, logstore.Batch{Attempts: []logstore.Attempt{
		attempt(d1, 1, now.Add(-3*time.Hour), logstore.StateRetrying),
		attempt(d1, 2, now.Add(-2*time.Hour), logstore.StateDelivered),
		attempt(d2, 1, now.Add(-90*time.Minute), logstore.StateFailed),
		attempt(d3, 1, now.Add(-time.Hour), logstore.StateDelivered),
	}})
	key := func(a logstore.Attempt) string { return fmt.Sprintf("%s#%d", a.DeliveryID, a.Number) }
	cases := []struct {
		name string
		q    logstore.AttemptQuery
		want []string
	}{
		{"subscription, newest first", logstore.AttemptQuery{SubscriptionID: "sub_1"}, []string{"dlv_2#1", "dlv_1#2", "dlv_1#1"}},
		{"delivery", logstore.AttemptQuery{DeliveryID: "dlv_1"}, []string{"dlv_1#2", "dlv_1#1"}},
		{"delivered", logstore.AttemptQuery{SubscriptionID: "sub_1", Status: logstore.StateDelivered}, []string{"dlv_1#2"}},
		{"retrying", logstore.AttemptQuery{SubscriptionID: "sub_1", Status: logstore.StateRetrying}, []string{"dlv_1#1"}},
		{"failed", logstore.AttemptQuery{SubscriptionID: "sub_1", Status: logstore.StateFailed}, []string{"dlv_2#1"}},
		{"window", logstore.AttemptQuery{SubscriptionID: "sub_1", Since: now.Add(-2 * time.Hour), Until: now.Add(-90 * time.Minute)}, []string{"dlv_1#2"}},
		{"delivery of another subscription", logstore.AttemptQuery{SubscriptionID: "sub_2", DeliveryID: "dlv_1"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.ListAttempts(ctx(t), "acme", tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p.Items, key); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// testPaging: pages cover the list exactly once, in order, including
// rows that share a timestamp, and writes between pages do not shift
// later pages.
func testPaging(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	var b logstore.Batch
	for i := range 23 {
		at := now.Add(-time.Duration(i/3) * time.Minute) // three rows per timestamp
		e := event("acme", fmt.Sprintf("evt_%02d", i), at)
		d := delivery("acme", fmt.Sprintf("dlv_%02d", i), "sub_1", e.ID, at)
		b.Events = append(b.Events, e)
		b.Deliveries = append(b.Deliveries, d)
		// Two attempts of one delivery at one instant: the number orders them.
		b.Attempts = append(b.Attempts, attempt(d, 1, at, logstore.StateRetrying), attempt(d, 2, at, logstore.StateDelivered))
	}
	write(t, s, b)
	later := now.Add(time.Hour)

	t.Run("events", func(t *testing.T) {
		all := pageAll(t, func(cursor string) (logstore.Page[logstore.Event], error) {
			return s.ListEvents(ctx(t), "acme", logstore.EventQuery{Limit: 5, Cursor: cursor})
		}, func() {
			write(t, s, logstore.Batch{Events: []logstore.Event{event("acme", "evt_new_"+later.String(), later)}})
			later = later.Add(time.Second)
		})
		checkOrder(t, all, 23, func(e logstore.Event) (time.Time, string) { return e.ReceivedAt, e.ID })
	})
	t.Run("deliveries", func(t *testing.T) {
		all := pageAll(t, func(cursor string) (logstore.Page[logstore.Delivery], error) {
			return s.ListDeliveries(ctx(t), "acme", logstore.DeliveryQuery{SubscriptionID: "sub_1", Limit: 4, Cursor: cursor})
		}, func() {
			write(t, s, logstore.Batch{Deliveries: []logstore.Delivery{delivery("acme", "dlv_new_"+later.String(), "sub_1", "evt_x", later)}})
			later = later.Add(time.Second)
		})
		checkOrder(t, all, 23, func(d logstore.Delivery) (time.Time, string) { return d.CreatedAt, d.ID })
	})
	t.Run("attempts", func(t *testing.T) {
		all := pageAll(t, func(cursor string) (logstore.Page[logstore.Attempt], error) {
			return s.ListAttempts(ctx(t), "acme", logstore.AttemptQuery{SubscriptionID: "sub_1", Limit: 7, Cursor: cursor})
		}, func() {
			d := delivery("acme", "dlv_new_"+later.String(), "sub_1", "evt_x", later)
			write(t, s, logstore.Batch{Attempts: []logstore.Attempt{attempt(d, 1, later, logstore.StateDelivered)}})
			later = later.Add(time.Second)
		})
		checkOrder(t, all, 46, func(a logstore.Attempt) (time.Time, string) {
			return a.StartedAt, fmt.Sprintf("%s#%09d", a.DeliveryID, a.Number)
		})
	})
	t.Run("an exact page has no next", func(t *testing.T) {
		p, err := s.ListEvents(ctx(t), "acme", logstore.EventQuery{Limit: 3, Since: now, Until: now.Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != 3 || p.Next != "" {
			t.Errorf("%d items and next %q, want the 3 events of that instant and no next", len(p.Items), p.Next)
		}
	})
}

// pageAll follows Next to the end, calling between after each page.
func pageAll[T any](t *testing.T, list func(cursor string) (logstore.Page[T], error), between func()) []T {
	t.Helper()
	var all []T
	cursor := ""
	for range 100 {
		p, err := list(cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Items...)
		if p.Next == "" {
			return all
		}
		cursor = p.Next
		between()
	}
	t.Fatal("no last page after 100 pages")
	return nil
}

// checkOrder: n items (those written before paging began), strictly
// decreasing by (time, id), so none is seen twice or skipped.
func checkOrder[T any](t *testing.T, items []T, n int, key func(T) (time.Time, string)) {
	t.Helper()
	if len(items) != n {
		t.Fatalf("paged through %d items, want %d", len(items), n)
	}
	for i := 1; i < len(items); i++ {
		pt, pid := key(items[i-1])
		ct, cid := key(items[i])
		if !(ct.Before(pt) || ct.Equal(pt) && cid < pid) {
			t.Fatalf("item %d (%v %s) does not sort after item %d (%v %s)", i, ct, cid, i-1, pt, pid)
		}
	}
}

func testTenantIsolation(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	e := event("acme", "evt_1", now)
	d := delivery("acme", "dlv_1", "sub_1", e.ID, now)
	write(t, s, logstore.Batch{Events: []logstore.Event{e}, Deliveries: []logstore.Delivery{d}, Attempts: []logstore.Attempt{attempt(d, 1, now, logstore.StateDelivered)}})
	// The same producer-chosen event id in another tenant is another event.
	other := event("globex", "evt_1", now.Add(time.Second))
	other.Type = "invoice.sent"
	write(t, s, logstore.Batch{Events: []logstore.Event{other}})

	if _, err := s.GetDelivery(ctx(t), "globex", d.ID); !errors.Is(err, logstore.ErrNotFound) {
		t.Errorf("another tenant's delivery: %v, want ErrNotFound", err)
	}
	if got, err := s.GetEvent(ctx(t), "globex", "evt_1"); err != nil || got.Type != "invoice.sent" {
		t.Errorf("globex's evt_1 is %+v, %v; want its own", got, err)
	}
	if got, err := s.GetEvent(ctx(t), "acme", "evt_1"); err != nil || got.Type != "order.created" {
		t.Errorf("acme's evt_1 is %+v, %v; want its own", got, err)
	}
	if p, err := s.ListAttempts(ctx(t), "globex", logstore.AttemptQuery{SubscriptionID: "sub_1"}); err != nil || len(p.Items) != 0 {
		t.Errorf("another tenant's subscription attempts: %d, %v; want none", len(p.Items), err)
	}
	if p, err := s.ListAttempts(ctx(t), "globex", logstore.AttemptQuery{DeliveryID: d.ID}); err != nil || len(p.Items) != 0 {
		t.Errorf("another tenant's delivery attempts: %d, %v; want none", len(p.Items), err)
	}
	if p, err := s.ListDeliveries(ctx(t), "globex", logstore.DeliveryQuery{EventID: e.ID}); err != nil || len(p.Items) != 0 {
		t.Errorf("another tenant's deliveries: %d, %v; want none", len(p.Items), err)
	}
	if p, err := s.ListEvents(ctx(t), "globex", logstore.EventQuery{}); err != nil || len(p.Items) != 1 {
		t.Errorf("globex lists %d events, %v; want its 1", len(p.Items), err)
	}
	if st, err := s.Stats(ctx(t), "globex", logstore.StatsQuery{SubscriptionID: "sub_1", Since: now.Add(-time.Hour), Until: now.Add(time.Hour)}); err != nil || st.Attempts != 0 {
		t.Errorf("another tenant's stats: %+v, %v; want zero", st, err)
	}
}

func testRetention(t *testing.T, open Open) {
	now := base()
	c := &clock{t: now}
	s := open(t, Config{Retention: 72 * time.Hour, Now: c.Now})

	old := now.Add(-5 * 24 * time.Hour)
	d := delivery("acme", "dlv_old", "sub_1", "evt_old", old)
	res := write(t, s, logstore.Batch{Events: []logstore.Event{event("acme", "evt_old", old)}, Deliveries: []logstore.Delivery{d}, Attempts: []logstore.Attempt{attempt(d, 1, old, logstore.StateDelivered)}})
	if res.Expired != 3 || res.Events+res.Deliveries+res.Attempts != 0 {
		t.Errorf("records past retention: %+v, want 3 expired and nothing stored", res)
	}

	yesterday := now.Add(-24 * time.Hour)
	dy := delivery("acme", "dlv_y", "sub_1", "evt_y", yesterday)
	dt := delivery("acme", "dlv_t", "sub_1", "evt_t", now)
	write(t, s, logstore.Batch{
		Events:     []logstore.Event{event("acme", "evt_y", yesterday), event("acme", "evt_t", now)},
		Deliveries: []logstore.Delivery{dy, dt},
		Attempts:   []logstore.Attempt{attempt(dy, 1, yesterday, logstore.StateDelivered), attempt(dt, 1, now, logstore.StateDelivered)},
	})
	// Three days on, yesterday's day is past retention; today's is not.
	c.Set(now.Add(72 * time.Hour))
	if err := s.Maintain(ctx(t)); err != nil {
		t.Fatalf("maintain: %v", err)
	}
	if _, err := s.GetEvent(ctx(t), "acme", "evt_y"); !errors.Is(err, logstore.ErrNotFound) {
		t.Errorf("expired event: %v, want ErrNotFound", err)
	}
	if _, err := s.GetDelivery(ctx(t), "acme", "dlv_y"); !errors.Is(err, logstore.ErrNotFound) {
		t.Errorf("expired delivery: %v, want ErrNotFound", err)
	}
	if _, err := s.GetEvent(ctx(t), "acme", "evt_t"); err != nil {
		t.Errorf("event within retention: %v", err)
	}
	got, err := s.GetDelivery(ctx(t), "acme", "dlv_t")
	if err != nil || string(got.Payload) != string(dt.Payload) {
		t.Errorf("delivery within retention: %+v, %v", got, err)
	}
	p, err := s.ListAttempts(ctx(t), "acme", logstore.AttemptQuery{SubscriptionID: "sub_1", WithBody: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Items[0].DeliveryID != "dlv_t" || p.Items[0].RequestBody == nil {
		t.Errorf("attempts after retention: %d, want only dlv_t's with its body", len(p.Items))
	}
	// A late attempt of an expired delivery is stored; the delivery's
	// state is not revived.
	late := attempt(dy, 2, now.Add(72*time.Hour), logstore.StateDelivered)
	res = write(t, s, logstore.Batch{Attempts: []logstore.Attempt{late}})
	if res.Attempts != 1 || res.Deliveries != 0 {
		t.Errorf("late attempt of an expired delivery: %+v, want the attempt only", res)
	}
	if _, err := s.GetDelivery(ctx(t), "acme", "dlv_y"); !errors.Is(err, logstore.ErrNotFound) {
		t.Errorf("expired delivery after a late attempt: %v, want ErrNotFound", err)
	}
	// Maintain is idempotent.
	if err := s.Maintain(ctx(t)); err != nil {
		t.Errorf("second maintain: %v", err)
	}
}

func testStats(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	var b logstore.Batch
	for i := 1; i <= 100; i++ {
		d := delivery("acme", fmt.Sprintf("dlv_%03d", i), "sub_1", fmt.Sprintf("evt_%03d", i), now)
		outcome := logstore.StateDelivered
		switch {
		case i%10 == 0:
			outcome = logstore.StateFailed
		case i%5 == 0:
			outcome = logstore.StateRetrying
		}
		a := attempt(d, 1, now.Add(time.Duration(i)*time.Second), outcome)
		a.DurationMS = int64(i)
		b.Attempts = append(b.Attempts, a)
	}
	// Outside the window, and another subscription: not counted.
	d := delivery("acme", "dlv_x", "sub_2", "evt_x", now)
	b.Attempts = append(b.Attempts, attempt(d, 1, now.Add(time.Second), logstore.StateFailed))
	write(t, s, b)
	st, err := s.Stats(ctx(t), "acme", logstore.StatsQuery{SubscriptionID: "sub_1", Since: now, Until: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := logstore.Stats{Attempts: 100, Delivered: 80, Retrying: 10, Failed: 10, P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	st, err = s.Stats(ctx(t), "acme", logstore.StatsQuery{SubscriptionID: "sub_1", Since: now.Add(2 * time.Hour), Until: now.Add(3 * time.Hour)})
	if err != nil || st != (logstore.Stats{}) {
		t.Errorf("stats of an empty window: %+v, %v; want zero", st, err)
	}
}

// testOverview: a tenant's attempts summed up in all, per minute and per
// subscription; another tenant's and those outside the window are not
// counted, and a restriction to some subscriptions holds.
func testOverview(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	var b logstore.Batch
	add := func(tenant, sub string, i int, at time.Time, outcome logstore.State, ms int64) {
		d := delivery(tenant, fmt.Sprintf("dlv_%s_%s_%03d", tenant, sub, i), sub, fmt.Sprintf("evt_%03d", i), now)
		a := attempt(d, 1, at, outcome)
		a.DurationMS = ms
		b.Attempts = append(b.Attempts, a)
	}
	// sub_1: 10 delivered in the first minute, 10ms each.
	for i := range 10 {
		add("acme", "sub_1", i, now.Add(time.Duration(i)*time.Second), logstore.StateDelivered, 10)
	}
	// sub_2: 4 in the third minute, 1 delivered, 1 retrying, 2 failed, 100ms.
	for i, o := range []logstore.State{logstore.StateDelivered, logstore.StateRetrying, logstore.StateFailed, logstore.StateFailed} {
		add("acme", "sub_2", i, now.Add(2*time.Minute+time.Duration(i)*time.Second), o, 100)
	}
	add("acme", "sub_1", 99, now.Add(-time.Second), logstore.StateFailed, 5) // before the window
	add("globex", "sub_1", 1, now.Add(time.Second), logstore.StateFailed, 5) // another tenant
	write(t, s, b)

	q := logstore.OverviewQuery{Since: now, Until: now.Add(time.Hour), Bucket: time.Minute}
	ov, err := s.Overview(ctx(t), "acme", q)
	if err != nil {
		t.Fatal(err)
	}
	wantAll := logstore.Stats{Attempts: 14, Delivered: 11, Retrying: 1, Failed: 2, P50: 10 * time.Millisecond, P95: 100 * time.Millisecond, P99: 100 * time.Millisecond}
	if ov.Stats != wantAll {
		t.Errorf("in all %+v, want %+v", ov.Stats, wantAll)
	}
	wantSeries := []logstore.Bucket{
		{Start: now, Stats: logstore.Stats{Attempts: 10, Delivered: 10, P50: 10 * time.Millisecond, P95: 10 * time.Millisecond, P99: 10 * time.Millisecond}},
		{Start: now.Add(2 * time.Minute), Stats: logstore.Stats{Attempts: 4, Delivered: 1, Retrying: 1, Failed: 2, P50: 100 * time.Millisecond, P95: 100 * time.Millisecond, P99: 100 * time.Millisecond}},
	}
	if len(ov.Series) != len(wantSeries) {
		t.Fatalf("series %+v, want %+v", ov.Series, wantSeries)
	}
	for i := range wantSeries {
		if !ov.Series[i].Start.Equal(wantSeries[i].Start) || ov.Series[i].Stats != wantSeries[i].Stats {
			t.Errorf("bucket %d: %+v, want %+v", i, ov.Series[i], wantSeries[i])
		}
	}
	bySub := map[string]logstore.Stats{}
	for _, ss := range ov.Subscriptions {
		bySub[ss.SubscriptionID] = ss.Stats
	}
	if len(bySub) != 2 || bySub["sub_1"].Attempts != 10 || bySub["sub_2"].Failed != 2 || bySub["sub_2"].Attempts != 4 {
		t.Errorf("per subscription %+v", ov.Subscriptions)
	}

	q.SubscriptionIDs = []string{"sub_2"}
	ov, err = s.Overview(ctx(t), "acme", q)
	if err != nil || ov.Attempts != 4 || len(ov.Subscriptions) != 1 || ov.Subscriptions[0].SubscriptionID != "sub_2" || len(ov.Series) != 1 {
		t.Errorf("restricted to sub_2: %+v, %v", ov, err)
	}
	q.SubscriptionIDs = []string{}
	ov, err = s.Overview(ctx(t), "acme", q)
	if err != nil || ov.Attempts != 0 || len(ov.Subscriptions) != 0 || len(ov.Series) != 0 {
		t.Errorf("restricted to no subscription: %+v, %v", ov, err)
	}
	ov, err = s.Overview(ctx(t), "acme", logstore.OverviewQuery{Since: now.Add(2 * time.Hour), Until: now.Add(3 * time.Hour), Bucket: time.Minute})
	if err != nil || ov.Stats != (logstore.Stats{}) || len(ov.Series) != 0 || len(ov.Subscriptions) != 0 {
		t.Errorf("an empty window: %+v, %v; want zero", ov, err)
	}
}

func testBadQueries(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	d := delivery("acme", "dlv_1", "sub_1", "evt_1", now)
	write(t, s, logstore.Batch{Events: []logstore.Event{event("acme", "evt_1", now), event("acme", "evt_2", now)}, Deliveries: []logstore.Delivery{d}})
	events, err := s.ListEvents(ctx(t), "acme", logstore.EventQuery{Limit: 1})
	if err != nil || events.Next == "" {
		t.Fatalf("a first page of one: %v, next %q", err, events.Next)
	}
	cases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"limit too big", func() error {
			_, err := s.ListEvents(ctx(t), "acme", logstore.EventQuery{Limit: logstore.MaxLimit + 1})
			return err
		}, "limit"},
		{"negative limit", func() error {
			_, err := s.ListDeliveries(ctx(t), "acme", logstore.DeliveryQuery{Limit: -1})
			return err
		}, "limit"},
		{"garbage cursor", func() error {
			_, err := s.ListEvents(ctx(t), "acme", logstore.EventQuery{Cursor: "!!"})
			return err
		}, "cursor"},
		{"another list's cursor", func() error {
			_, err := s.ListDeliveries(ctx(t), "acme", logstore.DeliveryQuery{Cursor: events.Next})
			return err
		}, "cursor"},
		{"unknown delivery status", func() error {
			_, err := s.ListDeliveries(ctx(t), "acme", logstore.DeliveryQuery{Status: "lost"})
			return err
		}, "status"},
		{"pending is no attempt outcome", func() error {
			_, err := s.ListAttempts(ctx(t), "acme", logstore.AttemptQuery{SubscriptionID: "sub_1", Status: logstore.StatePending})
			return err
		}, "status"},
		{"attempts of nothing", func() error {
			_, err := s.ListAttempts(ctx(t), "acme", logstore.AttemptQuery{})
			return err
		}, "subscription_id"},
		{"since after until", func() error {
			_, err := s.ListEvents(ctx(t), "acme", logstore.EventQuery{Since: now, Until: now.Add(-time.Second)})
			return err
		}, "until"},
		{"stats without a window", func() error {
			_, err := s.Stats(ctx(t), "acme", logstore.StatsQuery{SubscriptionID: "sub_1", Until: now})
			return err
		}, "since"},
		{"overview without a window", func() error {
			_, err := s.Overview(ctx(t), "acme", logstore.OverviewQuery{Until: now, Bucket: time.Minute})
			return err
		}, "since"},
		{"overview of too many buckets", func() error {
			_, err := s.Overview(ctx(t), "acme", logstore.OverviewQuery{Since: now.Add(-48 * time.Hour), Until: now, Bucket: time.Minute})
			return err
		}, "bucket"},
		{"overview bucket of a fraction of a second", func() error {
			_, err := s.Overview(ctx(t), "acme", logstore.OverviewQuery{Since: now.Add(-time.Hour), Until: now, Bucket: 1500 * time.Millisecond})
			return err
		}, "bucket"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var qe *logstore.QueryError
			if !errors.Is(err, logstore.ErrInvalid) || !errors.As(err, &qe) || qe.Field != tc.field {
				t.Errorf("error %v, want a QueryError naming %s", err, tc.field)
			}
		})
	}
	// The cursor from the first page does work where it belongs.
	next, err := s.ListEvents(ctx(t), "acme", logstore.EventQuery{Limit: 1, Cursor: events.Next})
	if err != nil || len(next.Items) != 1 || next.Items[0].ID == events.Items[0].ID {
		t.Errorf("second page: %+v, %v", next.Items, err)
	}
}

func testBadRecords(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	good := event("acme", "evt_ok", now)
	noTenant := event("", "evt_1", now)
	badData := event("acme", "evt_2", now)
	badData.Data = []byte("{not json")
	d := delivery("acme", "dlv_1", "sub_1", "evt_1", now)
	noCreated := d
	noCreated.CreatedAt = time.Time{}
	badOutcome := attempt(d, 1, now, logstore.StatePending)
	noDeliveryTime := attempt(d, 1, now, logstore.StateDelivered)
	noDeliveryTime.DeliveryCreatedAt = time.Time{}
	cases := []struct {
		name  string
		b     logstore.Batch
		field string
	}{
		{"event without tenant", logstore.Batch{Events: []logstore.Event{good, noTenant}}, "tenant"},
		{"event data not JSON", logstore.Batch{Events: []logstore.Event{badData}}, "data"},
		{"delivery without time", logstore.Batch{Deliveries: []logstore.Delivery{noCreated}}, "created_at"},
		{"attempt outcome pending", logstore.Batch{Attempts: []logstore.Attempt{badOutcome}}, "outcome"},
		{"attempt without its delivery's time", logstore.Batch{Attempts: []logstore.Attempt{noDeliveryTime}}, "delivery_created_at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Write(ctx(t), tc.b)
			var re *logstore.RecordError
			if !errors.Is(err, logstore.ErrInvalid) || !errors.As(err, &re) || re.Field != tc.field {
				t.Errorf("error %v, want a RecordError naming %s", err, tc.field)
			}
		})
	}
	// A refused batch stores nothing of itself.
	if _, err := s.GetEvent(ctx(t), "acme", "evt_ok"); !errors.Is(err, logstore.ErrNotFound) {
		t.Errorf("the valid event of a refused batch: %v, want ErrNotFound", err)
	}
}

// testConcurrentWriters: instances of the logs service write overlapping
// batches at once (the same delivery's records come through different
// topic partitions); none fails and the result is the same as in series.
func testConcurrentWriters(t *testing.T, open Open) {
	now := base()
	s := openAt(t, open, now)
	var deliveries []logstore.Delivery
	var attempts []logstore.Attempt
	for i := range 200 {
		d := delivery("acme", fmt.Sprintf("dlv_%03d", i), fmt.Sprintf("sub_%d", i%7), fmt.Sprintf("evt_%03d", i), now.Add(time.Duration(i)*time.Millisecond))
		deliveries = append(deliveries, d)
		attempts = append(attempts, attempt(d, 1, d.CreatedAt.Add(time.Second), logstore.StateRetrying), attempt(d, 2, d.CreatedAt.Add(time.Minute), logstore.StateDelivered))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer sends everything, in its own order and grouping.
			b := logstore.Batch{Deliveries: slices.Clone(deliveries), Attempts: slices.Clone(attempts)}
			if w%2 == 1 {
				slices.Reverse(b.Deliveries)
				slices.Reverse(b.Attempts)
			}
			for i := 0; i < 200; i += 50 {
				part := logstore.Batch{Deliveries: b.Deliveries[i : i+50], Attempts: b.Attempts[2*i : 2*i+100]}
				if _, err := s.Write(context.Background(), part); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	all := pageAll(t, func(cursor string) (logstore.Page[logstore.Delivery], error) {
		return s.ListDeliveries(ctx(t), "acme", logstore.DeliveryQuery{Limit: logstore.MaxLimit, Cursor: cursor})
	}, func() {})
	if len(all) != 200 {
		t.Fatalf("%d deliveries stored, want 200", len(all))
	}
	for _, d := range all {
		if d.State != logstore.StateDelivered || d.Attempts != 2 {
			t.Fatalf("%s: %s after %d attempts, want delivered after 2", d.ID, d.State, d.Attempts)
		}
	}
}

func ids[T any](items []T, id func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}
