package logstore

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestAheadIsATotalOrder(t *testing.T) {
	t0 := time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)
	versions := []Delivery{
		{State: StatePending},                              // the delivery record
		{State: StatePending, Attempts: 1},                 // re-queued after attempt 1: no time, no news
		{State: StateRetrying, Attempts: 1, UpdatedAt: t0}, // attempt 1
		{State: StateRetrying, Attempts: 2, UpdatedAt: t0.Add(time.Minute)},
		{State: StateFailed, Attempts: 2, UpdatedAt: t0.Add(time.Minute)},                // the DLQ record of attempt 2
		{State: StatePending, Attempts: 0, UpdatedAt: t0.Add(time.Hour)},                 // replayed from the DLQ
		{State: StateDelivered, Attempts: 1, UpdatedAt: t0.Add(time.Hour + time.Second)}, // the replay's attempt 1
	}
	for i, a := range versions {
		for j, b := range versions {
			if i == j {
				if Ahead(a, b) {
					t.Errorf("version %d is ahead of itself", i)
				}
				continue
			}
			if Ahead(a, b) == Ahead(b, a) {
				t.Errorf("versions %d and %d: Ahead both ways or neither", i, j)
			}
		}
	}
	for i := 1; i < len(versions); i++ {
		if !Ahead(versions[i], versions[i-1]) {
			t.Errorf("version %d (%+v) is not ahead of version %d", i, versions[i], i-1)
		}
	}
	if !Ahead(versions[2], versions[1]) {
		t.Error("a re-queue (pending) overtook the attempt (retrying) before it")
	}
}

func TestFoldIsOrderIndependent(t *testing.T) {
	at := time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)
	d := Delivery{Tenant: "t", ID: "dlv_1", SubscriptionID: "sub", EventID: "evt", CreatedAt: at, State: StatePending, Payload: []byte("{}")}
	a1 := Attempt{Tenant: "t", DeliveryID: "dlv_1", DeliveryCreatedAt: at, SubscriptionID: "sub", EventID: "evt", Number: 1, StartedAt: at.Add(time.Second), Outcome: StateRetrying, ResponseStatus: 503}
	a2 := Attempt{Tenant: "t", DeliveryID: "dlv_1", DeliveryCreatedAt: at, SubscriptionID: "sub", EventID: "evt", Number: 2, StartedAt: at.Add(time.Minute), Outcome: StateDelivered, ResponseStatus: 200}
	other := Attempt{Tenant: "t", DeliveryID: "dlv_0", DeliveryCreatedAt: at, SubscriptionID: "sub", EventID: "evt0", Number: 1, StartedAt: at, Outcome: StateFailed}
	orders := [][]Attempt{{a1, a2, other}, {a2, a1, other}, {other, a2, a1, a2}}
	for _, attempts := range orders {
		rows := Fold(Batch{Deliveries: []Delivery{d}, Attempts: attempts})
		if len(rows) != 2 || rows[0].ID != "dlv_0" || rows[1].ID != "dlv_1" {
			t.Fatalf("rows %+v, want dlv_0 then dlv_1", rows)
		}
		got := rows[1]
		if got.State != StateDelivered || got.Attempts != 2 || got.LastStatus != 200 || string(got.Payload) != "{}" || !got.LastAttemptAt.Equal(a2.StartedAt) {
			t.Errorf("folded %+v", got)
		}
		if rows[0].Payload != nil || rows[0].State != StateFailed {
			t.Errorf("a delivery known by its attempt alone: %+v", rows[0])
		}
	}
}

func TestRedactHeaders(t *testing.T) {
	h := http.Header{
		"Authorization":       {"Bearer abc"},
		"X-Api-Key":           {"k"},
		"X-Auth-Token":        {"t"},
		"Cookie":              {"a=b"},
		"Webhook-Signature":   {"v1,sig"},
		"X-Hub-Signature-256": {"sha256=00"},
		"Content-Type":        {"application/json"},
		"Proxy-Authorization": {"Basic dXNlcjpwYXNz"},
		"X-Client-Secret":     {"s"},
	}
	got := RedactHeaders(h)
	want := map[string]string{
		"Authorization": "Bearer " + Redacted, "X-Api-Key": Redacted, "X-Auth-Token": Redacted, "Cookie": Redacted,
		"Webhook-Signature": "v1,sig", "X-Hub-Signature-256": "sha256=00", "Content-Type": "application/json",
		"Proxy-Authorization": "Basic " + Redacted, "X-Client-Secret": Redacted,
	}
	for name, v := range want {
		if got.Get(name) != v {
			t.Errorf("%s: %q, want %q", name, got.Get(name), v)
		}
	}
	if h.Get("Authorization") != "Bearer abc" {
		t.Error("the input was changed")
	}
	if RedactHeaders(nil) != nil {
		t.Error("nil headers became non-nil")
	}
}

func TestCursorRoundTrip(t *testing.T) {
	at := time.Date(2026, 5, 20, 12, 0, 0, 123456000, time.UTC)
	a := Attempt{DeliveryID: "dlv_a.b", Number: 7, StartedAt: at}
	_, c, err := AttemptQuery{SubscriptionID: "s", Cursor: AttemptCursor(a)}.Check()
	if err != nil {
		t.Fatal(err)
	}
	if !c.At.Equal(at) || c.ID != "dlv_a.b" || c.N != 7 {
		t.Errorf("cursor read back as %+v", c)
	}
	_, _, err = EventQuery{Cursor: AttemptCursor(a)}.Check()
	var qe *QueryError
	if !errors.As(err, &qe) || qe.Field != "cursor" {
		t.Errorf("an attempt cursor on events: %v, want a cursor error", err)
	}
}

func TestPrepareBoundsAndTruncates(t *testing.T) {
	at := time.Date(2026, 5, 20, 12, 0, 0, 999, time.FixedZone("x", 3600))
	a := Attempt{Tenant: "t", DeliveryID: "d", DeliveryCreatedAt: at, SubscriptionID: "s", EventID: "e", Number: 1, StartedAt: at,
		Outcome: StateDelivered, ResponseBody: make([]byte, MaxResponseBody+1)}
	b, err := Batch{Attempts: []Attempt{a}}.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	got := b.Attempts[0]
	if got.StartedAt.Location() != time.UTC || got.StartedAt.Nanosecond() != 0 || !got.ResponseTruncated || len(got.ResponseBody) != MaxResponseBody {
		t.Errorf("prepared %+v", got)
	}
	if slices.Equal(a.ResponseBody, got.ResponseBody) {
		t.Error("body not bounded")
	}
}

// FuzzCursor: no input makes a query check panic, and every cursor it
// accepts encodes back to itself.
func FuzzCursor(f *testing.F) {
	f.Add(AttemptCursor(Attempt{DeliveryID: "dlv_1", Number: 2, StartedAt: time.Unix(1700000000, 0)}))
	f.Add("")
	f.Add("YTEuMS4yLmQ")
	f.Fuzz(func(t *testing.T, s string) {
		_, c, err := AttemptQuery{DeliveryID: "d", Cursor: s}.Check()
		if err != nil || c == nil {
			return
		}
		again := AttemptCursor(Attempt{DeliveryID: c.ID, Number: c.N, StartedAt: c.At})
		_, c2, err := AttemptQuery{DeliveryID: "d", Cursor: again}.Check()
		if err != nil || !c2.At.Equal(c.At) || c2.ID != c.ID || c2.N != c.N {
			t.Errorf("%q -> %+v -> %q -> %+v, %v", s, c, again, c2, err)
		}
	})
}

func TestRedactHeadersNames(t *testing.T) {
	h := http.Header{
		"authorization":       {"Bearer abc"},
		"X-AUTH-TOKEN":        {"t"},
		"X-Client-Secret":     {"s"},
		"Cookie":              {"a=b"},
		"Webhook-Signature":   {"v1,sig"},
		"X-Hub-Signature-256": {"sha256=ab"},
		"X-Request-Id":        {"r"},
		"x-apikey":            {"k"},
		"X-Auth-Signature":    {"sig"},
		"X-Signature-Secret":  {"s3cr3t"},
		"X-Private-Key":       {"pk"},
	}
	got := RedactHeaders(h)
	want := map[string]string{
		"authorization": "Bearer " + Redacted, "X-AUTH-TOKEN": Redacted, "X-Client-Secret": Redacted, "Cookie": Redacted,
		"Webhook-Signature": "v1,sig", "X-Hub-Signature-256": "sha256=ab", "X-Request-Id": "r", "x-apikey": Redacted,
		"X-Auth-Signature": "sig", "X-Signature-Secret": Redacted, "X-Private-Key": Redacted,
	}
	for name, v := range want {
		if got[name][0] != v {
			t.Errorf("%s: %q, want %q", name, got[name][0], v)
		}
	}
}

func BenchmarkRedactHeaders(b *testing.B) {
	h := http.Header{
		"Content-Type": {"application/json"}, "User-Agent": {"Hookline-Webhooks/1.0"}, "Webhook-Id": {"dlv_1"},
		"Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abc"}, "X-Hub-Signature-256": {"sha256=ab"},
		"Authorization": {"Bearer t"}, "Traceparent": {"00-abc-def-01"},
	}
	b.ReportAllocs()
	for b.Loop() {
		RedactHeaders(h)
	}
}
