package record

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"

	"github.com/hookline/hookline/pkg/avro"
	"github.com/hookline/hookline/schemas"
)

// codecs loads the embedded schemas once per test.
func codecs(t testing.TB) *Codecs {
	t.Helper()
	c, err := LoadCodecs()
	if err != nil {
		t.Fatalf("LoadCodecs: %v", err)
	}
	return c
}

// idEntry is one line of schemas/ids.json.
type idEntry struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
	File string `json:"file"`
}

// idTable reads schemas/ids.json, independently of pkg/avro, so a codec
// writing or reading the wrong id is caught.
func idTable(t testing.TB) []idEntry {
	t.Helper()
	raw, err := os.ReadFile("../../schemas/ids.json")
	if err != nil {
		t.Fatalf("read ids.json: %v", err)
	}
	var table struct {
		Schemas []idEntry `json:"schemas"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatalf("parse ids.json: %v", err)
	}
	return table.Schemas
}

// fixedIDs maps each record to the id of its current schema: the highest
// of its ids.
func fixedIDs(t testing.TB) map[string]uint32 {
	t.Helper()
	ids := map[string]uint32{}
	for _, e := range idTable(t) {
		ids[e.Name] = max(ids[e.Name], e.ID)
	}
	return ids
}

func ptr[T any](v T) *T { return &v }

// Timestamps with sub-millisecond parts and a non-UTC zone: the wire keeps
// milliseconds since the epoch, so decoding yields the instant truncated to
// the millisecond, in UTC.
var (
	berlin = time.FixedZone("CEST", 2*60*60)
	t0     = time.Date(2025, 6, 1, 12, 30, 45, 123_456_789, berlin)
	t1     = time.Date(2025, 6, 1, 12, 31, 0, 999_999_999, time.UTC)
	t2     = time.Date(1969, 12, 31, 23, 59, 59, 1_500_000, time.UTC) // before the epoch
)

// onWire is what a time becomes after a round trip through timestamp-millis.
func onWire(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

func onWirePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return ptr(onWire(*t))
}

// roundTrip marshals in, checks the wire-format header, unmarshals into a
// fresh value and compares it with want.
func roundTrip[T any](t *testing.T, c *avro.Codec[T], wantID uint32, in, want *T) {
	t.Helper()
	b, err := c.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if len(b) < 5 {
		t.Fatalf("Marshal returned %d bytes, want a 5-byte header and a body", len(b))
	}
	if b[0] != 0 {
		t.Errorf("magic byte = %d, want 0", b[0])
	}
	if id := binary.BigEndian.Uint32(b[1:5]); id != wantID {
		t.Errorf("header schema id = %d, want %d (ids.json)", id, wantID)
	}
	if id, err := avro.SchemaID(b); err != nil || id != wantID {
		t.Errorf("SchemaID = %d, %v; want %d, nil", id, err, wantID)
	}
	got := new(T)
	if err := c.Unmarshal(b, got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

func sampleEvent() Event {
	return Event{
		ID:         "evt_01J0ABCDEF",
		Tenant:     "acme",
		Type:       "order.updated",
		Subject:    "order_42",
		Source:     "billing-service",
		OccurredAt: t0,
		ReceivedAt: t1,
		Data:       `{"id":"order_42","total":1999,"currency":"EUR","note":"naïve ✓"}`,
		Changed:    []string{"total", "currency"},
		Previous:   ptr(`{"total":999,"currency":"USD"}`),
	}
}

func TestEventRoundTrip(t *testing.T) {
	c := codecs(t)
	id := fixedIDs(t)["dev.hookline.Event"]
	full := sampleEvent()
	wantFull := full
	wantFull.OccurredAt, wantFull.ReceivedAt = onWire(full.OccurredAt), onWire(full.ReceivedAt)

	tests := []struct {
		name string
		in   Event
		want Event
	}{
		{name: "populated", in: full, want: wantFull},
		{
			name: "optional fields absent",
			in:   Event{ID: "e1", Tenant: "t", Type: "user.created", Subject: "u1", OccurredAt: t2, ReceivedAt: t2, Data: `{}`},
			// A nil slice goes on the wire as an empty array and comes back
			// non-nil; a nil pointer stays nil.
			want: Event{ID: "e1", Tenant: "t", Type: "user.created", Subject: "u1", OccurredAt: onWire(t2), ReceivedAt: onWire(t2), Data: `{}`, Changed: []string{}},
		},
		{
			name: "empty previous is not null",
			in:   Event{ID: "e2", Data: `{}`, Changed: []string{}, Previous: ptr(""), OccurredAt: t1, ReceivedAt: t1},
			want: Event{ID: "e2", Data: `{}`, Changed: []string{}, Previous: ptr(""), OccurredAt: onWire(t1), ReceivedAt: onWire(t1)},
		},
		{
			name: "zero times",
			in:   Event{ID: "e3", Changed: []string{"a"}},
			want: Event{ID: "e3", Changed: []string{"a"}, OccurredAt: time.Time{}.UTC(), ReceivedAt: time.Time{}.UTC()},
		},
		{
			name: "large data and many changed fields",
			in:   Event{ID: "e4", Data: `{"blob":"` + strings.Repeat("x", 200_000) + `"}`, Changed: manyStrings(250), OccurredAt: t0, ReceivedAt: t0},
			want: Event{ID: "e4", Data: `{"blob":"` + strings.Repeat("x", 200_000) + `"}`, Changed: manyStrings(250), OccurredAt: onWire(t0), ReceivedAt: onWire(t0)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, c.Event, id, &tc.in, &tc.want)
		})
	}
}

// manyStrings is longer than hamba's default block length (100), so arrays
// span several blocks.
func manyStrings(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("f", i%7) + string(rune('a'+i%26))
	}
	return out
}

func sampleSubscription() Subscription {
	return Subscription{
		ID:          "sub_1",
		Tenant:      "acme",
		Name:        "orders to ERP",
		Description: "all order events",
		URL:         "https://erp.example.com/hooks",
		EventTypes:  []string{"order.*", "invoice.paid"},
		Condition:   ptr(`{"field":"data.total","op":"gt","value":100}`),
		Expression:  ptr(`data.currency == "EUR"`),
		Payload:     "changed",
		Headers:     map[string]string{"X-Env": "prod", "X-Team": "erp"},
		Auth:        &Auth{Type: "basic", Username: "erp", SealedCredential: []byte{0, 1, 2, 0xff}},
		Secrets: []Secret{
			{Sealed: []byte("sealed-new"), CreatedAt: t1},
			{Sealed: []byte("sealed-old"), CreatedAt: t0, ExpiresAt: ptr(t1.Add(24 * time.Hour))},
		},
		RateLimitPerSecond: 50,
		TimeoutMS:          15000,
		MaxAttempts:        8,
		Ordered:            true,
		Enabled:            false,
		DisabledReason:     "410 Gone",
		Metadata:           map[string]string{"owner": "erp-team"},
		Routes: []Route{
			{Condition: `{"field":"data.region","op":"eq","value":"eu"}`, URL: "https://eu.example.com/hooks"},
			{Condition: `{}`, URL: "https://{{data.shop}}.example.com/hooks"},
		},
		AllowedHosts: []string{"eu.example.com", "*.example.com"},
		Batch:        &Batch{MaxEvents: 100, MaxWaitMS: 250},
		Derive: []Derive{
			{Field: "data.total_eur", Expression: "event.data.total_cents / 100.0"},
			{Field: "data.customer.name", Expression: `event.data.?name.orValue("unknown")`, DefaultJSON: ptr(`"unknown"`)},
		},
		Compression: "gzip",
		ClientTLS:   &ClientTLS{Certificate: "-----BEGIN CERTIFICATE-----\n...", SealedKey: []byte{9, 8, 7}},
		MaxInFlight: 4,
		AlertEmails: []string{"oncall@erp.example.com"},
		CreatedAt:   t0,
		UpdatedAt:   t1,
	}
}

func TestSubscriptionRoundTrip(t *testing.T) {
	c := codecs(t)
	id := fixedIDs(t)["dev.hookline.Subscription"]

	full := sampleSubscription()
	wantFull := sampleSubscription()
	wantFull.Secrets[0].CreatedAt = onWire(t1)
	wantFull.Secrets[1].CreatedAt = onWire(t0)
	wantFull.Secrets[1].ExpiresAt = onWirePtr(full.Secrets[1].ExpiresAt)
	wantFull.CreatedAt, wantFull.UpdatedAt = onWire(t0), onWire(t1)

	tests := []struct {
		name string
		in   Subscription
		want Subscription
	}{
		{name: "populated", in: full, want: wantFull},
		{
			name: "bearer auth without username, nil optionals",
			in: Subscription{
				ID: "sub_2", Tenant: "acme", URL: "https://a.example.com", EventTypes: []string{"*"},
				Payload: "full", Enabled: true,
				Auth:      &Auth{Type: "bearer", SealedCredential: []byte("tok")},
				Secrets:   []Secret{{Sealed: []byte("s"), CreatedAt: t2}},
				CreatedAt: t2, UpdatedAt: t2,
			},
			// Nil maps and slices come back empty, nil unions stay nil.
			want: Subscription{
				ID: "sub_2", Tenant: "acme", URL: "https://a.example.com", EventTypes: []string{"*"},
				Payload: "full", Enabled: true,
				Headers:      map[string]string{},
				Auth:         &Auth{Type: "bearer", SealedCredential: []byte("tok")},
				Secrets:      []Secret{{Sealed: []byte("s"), CreatedAt: onWire(t2)}},
				Metadata:     map[string]string{},
				Routes:       []Route{},
				AllowedHosts: []string{},
				Derive:       []Derive{},
				AlertEmails:  []string{},
				CreatedAt:    onWire(t2), UpdatedAt: onWire(t2),
			},
		},
		{
			name: "no auth, no secrets, empty bytes",
			in: Subscription{
				ID: "sub_3", EventTypes: []string{}, Headers: map[string]string{}, Secrets: []Secret{{Sealed: nil, CreatedAt: t0}},
				Metadata: map[string]string{"": ""}, Routes: []Route{}, AllowedHosts: []string{}, Batch: &Batch{},
			},
			want: Subscription{
				ID: "sub_3", EventTypes: []string{}, Headers: map[string]string{}, Secrets: []Secret{{Sealed: []byte{}, CreatedAt: onWire(t0)}},
				Metadata: map[string]string{"": ""}, Routes: []Route{}, AllowedHosts: []string{}, Batch: &Batch{}, Derive: []Derive{},
				AlertEmails: []string{}, CreatedAt: time.Time{}.UTC(), UpdatedAt: time.Time{}.UTC(),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, c.Subscription, id, &tc.in, &tc.want)
		})
	}
}

// TestSubscriptionReadsEarlierIDs writes a subscription with every earlier
// released schema, as an older ingest did, and checks the current codec
// reads it: the fields of that version come back, and the fields added
// since (derive, compression, client_tls, max_in_flight, alert_emails)
// take their defaults.
func TestSubscriptionReadsEarlierIDs(t *testing.T) {
	c := codecs(t)
	const name = "dev.hookline.Subscription"
	current := fixedIDs(t)[name]
	if c.Subscription.ID() != current {
		t.Fatalf("codec writes id %d, want %d", c.Subscription.ID(), current)
	}
	// The fields added since v1 are left out, so every earlier version
	// writes the same record and reads back with their defaults.
	old := sampleSubscription()
	old.Derive = nil
	old.Compression, old.ClientTLS, old.MaxInFlight, old.AlertEmails = "", nil, 0, nil
	want := old
	want.Derive = []Derive{}
	want.AlertEmails = []string{}
	want.Secrets = slices.Clone(old.Secrets)
	want.Secrets[0].CreatedAt = onWire(t1)
	want.Secrets[1].CreatedAt = onWire(t0)
	want.Secrets[1].ExpiresAt = onWirePtr(old.Secrets[1].ExpiresAt)
	want.CreatedAt, want.UpdatedAt = onWire(t0), onWire(t1)

	earlier := 0
	for _, e := range idTable(t) {
		if e.Name != name || e.ID == current {
			continue
		}
		earlier++
		t.Run(e.File, func(t *testing.T) {
			text, err := fs.ReadFile(schemas.FS, e.File)
			if err != nil {
				t.Fatal(err)
			}
			schema, err := hamba.ParseBytesWithCache(text, "", &hamba.SchemaCache{})
			if err != nil {
				t.Fatal(err)
			}
			body, err := hamba.Marshal(schema, &old) // fields the schema lacks are not written
			if err != nil {
				t.Fatal(err)
			}
			framed := binary.BigEndian.AppendUint32([]byte{0}, e.ID)
			var got Subscription
			if err := c.Subscription.Unmarshal(append(framed, body...), &got); err != nil {
				t.Fatalf("id %d does not decode: %v", e.ID, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("id %d decoded\n got: %+v\nwant: %+v", e.ID, got, want)
			}
		})
	}
	if earlier == 0 {
		t.Fatalf("ids.json has no earlier id of %s", name)
	}
}

func sampleDelivery(payload string) Delivery {
	return Delivery{
		ID:             "dlv_evt_01J0ABCDEF_sub_1",
		Tenant:         "acme",
		SubscriptionID: "sub_1",
		EventID:        "evt_01J0ABCDEF",
		EventType:      "order.updated",
		URL:            "https://erp.example.com/hooks",
		Payload:        payload,
		CreatedAt:      t1,
		EventTime:      t0,
		Attempt:        3,
		DueAt:          ptr(t1.Add(30 * time.Second)),
		Replay:         true,
		LastStatus:     503,
		LastError:      "503 Service Unavailable",
	}
}

func TestDeliveryRoundTrip(t *testing.T) {
	c := codecs(t)
	id := fixedIDs(t)["dev.hookline.Delivery"]

	full := sampleDelivery(`{"id":"evt_01J0ABCDEF","type":"order.updated","data":{}}`)
	wantFull := full
	wantFull.CreatedAt, wantFull.EventTime = onWire(t1), onWire(t0)
	wantFull.DueAt = onWirePtr(full.DueAt)

	first := Delivery{ID: "d1", SubscriptionID: "s", URL: "https://x", Payload: "{}", CreatedAt: t2, EventTime: t2}
	wantFirst := first
	wantFirst.CreatedAt, wantFirst.EventTime = onWire(t2), onWire(t2)

	routed := first
	routed.ResolveURL, routed.Route = true, &RouteRef{Condition: "0123456789abcdef0123456789abcdef", Values: map[string]string{"data.shop": "acme/eu"}}
	wantRouted := wantFirst
	wantRouted.ResolveURL, wantRouted.Route = routed.ResolveURL, routed.Route

	redelivery := routed
	redelivery.Replay, redelivery.Redelivery = true, "rdl_0123456789"
	wantRedelivery := wantRouted
	wantRedelivery.Replay, wantRedelivery.Redelivery = true, redelivery.Redelivery

	tests := []struct {
		name string
		in   Delivery
		want Delivery
	}{
		{name: "retry tier with due_at", in: full, want: wantFull},
		{name: "a redelivery from the history", in: redelivery, want: wantRedelivery},
		{name: "first attempt, no due_at", in: first, want: wantFirst},
		{name: "a route, resolved at send time", in: routed, want: wantRouted},
		{
			name: "negative and extreme ints",
			in:   Delivery{Attempt: -1, LastStatus: 2147483647, CreatedAt: t0, EventTime: t0, DueAt: ptr(time.Unix(0, 0))},
			want: Delivery{Attempt: -1, LastStatus: 2147483647, CreatedAt: onWire(t0), EventTime: onWire(t0), DueAt: ptr(time.Unix(0, 0).UTC())},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, c.Delivery, id, &tc.in, &tc.want)
		})
	}
}

// TestDeliveryReadsEarlierIDs: a delivery written under Delivery v1 (id
// 3), as an older matcher, sender or retry service did and as the retry
// tiers and the DLQ still hold them, decodes with the fields added since
// at their defaults: not resolved from the subscription, no route.
func TestDeliveryReadsEarlierIDs(t *testing.T) {
	c := codecs(t)
	const name = "dev.hookline.Delivery"
	if current := fixedIDs(t)[name]; c.Delivery.ID() != current {
		t.Fatalf("codec writes id %d, want %d", c.Delivery.ID(), current)
	}
	old := sampleDelivery(`{"id":"evt_1"}`)
	want := old
	want.CreatedAt, want.EventTime, want.DueAt = onWire(t1), onWire(t0), onWirePtr(old.DueAt)
	earlier := 0
	for _, e := range idTable(t) {
		if e.Name != name || e.ID == c.Delivery.ID() {
			continue
		}
		earlier++
		text, err := fs.ReadFile(schemas.FS, e.File)
		if err != nil {
			t.Fatal(err)
		}
		schema, err := hamba.ParseBytesWithCache(text, "", &hamba.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		body, err := hamba.Marshal(schema, &old)
		if err != nil {
			t.Fatal(err)
		}
		var got Delivery
		if err := c.Delivery.Unmarshal(append(binary.BigEndian.AppendUint32([]byte{0}, e.ID), body...), &got); err != nil {
			t.Fatalf("id %d does not decode: %v", e.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("id %d decoded\n got: %+v\nwant: %+v", e.ID, got, want)
		}
	}
	if earlier == 0 {
		t.Fatalf("ids.json has no earlier id of %s", name)
	}
}

func sampleAttempt() DeliveryAttempt {
	return DeliveryAttempt{
		DeliveryID:      "dlv_1",
		Tenant:          "acme",
		SubscriptionID:  "sub_1",
		EventID:         "evt_1",
		EventType:       "order.updated",
		URL:             "https://erp.example.com/hooks",
		Attempt:         2,
		Replay:          false,
		StartedAt:       t0,
		DurationMS:      1234,
		StatusCode:      429,
		Outcome:         OutcomeRetrying,
		Error:           "429 Too Many Requests",
		ResponseSnippet: `{"error":"slow down"}`,
		RequestBytes:    1 << 40,
		ResponseBytes:   21,
		NextAttemptAt:   ptr(t1),
		TraceID:         "4bf92f3577b34da6a3ce929d0e0e4736",

		DeliveryCreatedAt: ptr(t2),
		RequestHeaders: map[string][]string{
			"Webhook-Id": {"dlv_1"}, "Authorization": {"Bearer [redacted]"}, "X-Many": {"a", "b"},
		},
		ResponseHeaders: map[string][]string{"Retry-After": {"30"}, "Content-Type": {"application/json"}},
		ResponseBody:    []byte(`{"error":"slow down"}`),
	}
}

func TestEventTypeRoundTrip(t *testing.T) {
	c := codecs(t)
	id := fixedIDs(t)["dev.hookline.EventType"]
	full := EventType{Tenant: "acme", Name: "order.created", Description: "an order was placed",
		Schema: ptr(`{"type":"object","required":["id"]}`), Validate: true, CreatedAt: t0, UpdatedAt: t1}
	wantFull := full
	wantFull.CreatedAt, wantFull.UpdatedAt = onWire(t0), onWire(t1)
	bare := EventType{Tenant: "acme", Name: "order.deleted", CreatedAt: t2, UpdatedAt: t2}
	wantBare := bare
	wantBare.CreatedAt, wantBare.UpdatedAt = onWire(t2), onWire(t2)
	roundTrip(t, c.EventType, id, &full, &wantFull)
	roundTrip(t, c.EventType, id, &bare, &wantBare)
	if full.Key() != "acme/order.created" {
		t.Errorf("key %q", full.Key())
	}
}

func TestDeliveryAttemptRoundTrip(t *testing.T) {
	c := codecs(t)
	id := fixedIDs(t)["dev.hookline.DeliveryAttempt"]

	// Decoded empty maps and byte fields are empty, not nil.
	bare := func(a DeliveryAttempt) DeliveryAttempt {
		if a.RequestHeaders == nil {
			a.RequestHeaders = map[string][]string{}
		}
		if a.ResponseHeaders == nil {
			a.ResponseHeaders = map[string][]string{}
		}
		if a.ResponseBody == nil {
			a.ResponseBody = []byte{}
		}
		return a
	}

	retrying := sampleAttempt()
	wantRetrying := bare(retrying)
	wantRetrying.StartedAt, wantRetrying.NextAttemptAt = onWire(t0), onWirePtr(retrying.NextAttemptAt)
	wantRetrying.DeliveryCreatedAt = onWirePtr(retrying.DeliveryCreatedAt)

	delivered := DeliveryAttempt{DeliveryID: "dlv_2", Attempt: 1, StartedAt: t1, DurationMS: 12, StatusCode: 204, Outcome: OutcomeDelivered}
	wantDelivered := bare(delivered)
	wantDelivered.StartedAt = onWire(t1)

	dead := DeliveryAttempt{DeliveryID: "dlv_3", Attempt: 8, Replay: true, StartedAt: t2, DurationMS: -1, Outcome: OutcomeDeadLettered, Error: "dial tcp: connection refused"}
	wantDead := bare(dead)
	wantDead.StartedAt = onWire(t2)

	batch := sampleAttempt()
	batch.RequestBody = []byte(`[{"id":"evt_1"},{"id":"evt_2"}]`)
	batch.RequestBodySHA256 = bytes.Repeat([]byte{0xab}, 32)
	batch.ResponseBody = []byte{0xff, 0x00, 'x'} // not text: kept as bytes
	wantBatch := bare(batch)
	wantBatch.StartedAt, wantBatch.NextAttemptAt = onWire(t0), onWirePtr(batch.NextAttemptAt)
	wantBatch.DeliveryCreatedAt = onWirePtr(batch.DeliveryCreatedAt)

	tests := []struct {
		name string
		in   DeliveryAttempt
		want DeliveryAttempt
	}{
		{name: "retrying, headers and answer", in: retrying, want: wantRetrying},
		{name: "delivered", in: delivered, want: wantDelivered},
		{name: "dead lettered without response", in: dead, want: wantDead},
		{name: "batch member carrying the array", in: batch, want: wantBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, c.Attempt, id, &tc.in, &tc.want)
		})
	}
}

// TestDeliveryAttemptReadsEarlierIDs: an attempt written under
// DeliveryAttempt v1 (id 4), as senders before v2 wrote the delivery log,
// decodes with the fields added since empty: no created_at of its
// delivery, no headers, no bodies.
func TestDeliveryAttemptReadsEarlierIDs(t *testing.T) {
	c := codecs(t)
	const name = "dev.hookline.DeliveryAttempt"
	if current := fixedIDs(t)[name]; c.Attempt.ID() != current {
		t.Fatalf("codec writes id %d, want %d", c.Attempt.ID(), current)
	}
	old := sampleAttempt()
	old.DeliveryCreatedAt, old.RequestHeaders, old.ResponseHeaders, old.ResponseBody = nil, nil, nil, nil
	want := old
	want.StartedAt, want.NextAttemptAt = onWire(t0), onWirePtr(old.NextAttemptAt)
	want.RequestHeaders, want.ResponseHeaders, want.ResponseBody = map[string][]string{}, map[string][]string{}, []byte{}
	earlier := 0
	for _, e := range idTable(t) {
		if e.Name != name || e.ID == c.Attempt.ID() {
			continue
		}
		earlier++
		text, err := fs.ReadFile(schemas.FS, e.File)
		if err != nil {
			t.Fatal(err)
		}
		schema, err := hamba.ParseBytesWithCache(text, "", &hamba.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		body, err := hamba.Marshal(schema, &old)
		if err != nil {
			t.Fatal(err)
		}
		var got DeliveryAttempt
		if err := c.Attempt.Unmarshal(append(binary.BigEndian.AppendUint32([]byte{0}, e.ID), body...), &got); err != nil {
			t.Fatalf("id %d does not decode: %v", e.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("id %d decoded\n got: %+v\nwant: %+v", e.ID, got, want)
		}
	}
	if earlier == 0 {
		t.Fatalf("ids.json has no earlier id of %s", name)
	}
}

func TestNotificationRoundTrip(t *testing.T) {
	c := codecs(t)
	id := fixedIDs(t)["dev.hookline.Notification"]
	digest := Notification{
		ID: "ntf_1", Tenant: "acme", SubscriptionID: "sub_1", Kind: "exhausted",
		EventIDs: []string{"evt_1", "evt_2"}, Subject: "[Hookline] 2 deliveries given up",
		Recipients: []NotificationRecipient{
			{Address: "oncall@example.com", Outcome: OutcomeSent},
			{Address: "ops@example.com", Outcome: OutcomeFailed, Error: "550 mailbox unavailable"},
			{Address: "boss@example.com", Outcome: OutcomeSuppressed, Error: "hourly cap of 20 reached"},
		},
		Attempts: 3, QueuedAt: t0, FinishedAt: t1,
	}
	wantDigest := digest
	wantDigest.QueuedAt, wantDigest.FinishedAt = onWire(t0), onWire(t1)
	nobody := Notification{ID: "ntf_2", Kind: "failing", EventIDs: []string{"evt_3"}, Recipients: []NotificationRecipient{}, QueuedAt: t2, FinishedAt: t2}
	wantNobody := nobody
	wantNobody.QueuedAt, wantNobody.FinishedAt = onWire(t2), onWire(t2)
	for _, tc := range []struct {
		name     string
		in, want Notification
	}{
		{"digest with every outcome", digest, wantDigest},
		{"nobody to email", nobody, wantNobody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, c.Notification, id, &tc.in, &tc.want)
		})
	}
}

func TestEndpointStatusRoundTrip(t *testing.T) {
	c := codecs(t)
	id := fixedIDs(t)["dev.hookline.EndpointStatus"]
	in := EndpointStatus{SubscriptionID: "sub_1", Tenant: "acme", DisabledReason: "disabled by Hookline: the endpoint answered 410 Gone",
		DisabledAt: t1, SubscriptionUpdatedAt: t0}
	want := in
	want.DisabledAt, want.SubscriptionUpdatedAt = onWire(t1), onWire(t0)
	roundTrip(t, c.Status, id, &in, &want)
}

// TestCodecIDs checks each codec writes the id ids.json gives its schema.
func TestCodecIDs(t *testing.T) {
	c := codecs(t)
	ids := fixedIDs(t)
	tests := []struct {
		name string
		got  uint32
	}{
		{"dev.hookline.Event", c.Event.ID()},
		{"dev.hookline.Subscription", c.Subscription.ID()},
		{"dev.hookline.EndpointStatus", c.Status.ID()},
		{"dev.hookline.Delivery", c.Delivery.ID()},
		{"dev.hookline.DeliveryAttempt", c.Attempt.ID()},
		{"dev.hookline.EventType", c.EventType.ID()},
		{"dev.hookline.Notification", c.Notification.ID()},
	}
	seen := map[uint32]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, ok := ids[tc.name]
			if !ok {
				t.Fatalf("%s missing from ids.json", tc.name)
			}
			if tc.got != want {
				t.Errorf("codec id = %d, want %d", tc.got, want)
			}
			if other, dup := seen[tc.got]; dup {
				t.Errorf("id %d also used by %s", tc.got, other)
			}
			seen[tc.got] = tc.name
		})
	}
}

// TestUnmarshalIntoReusedValue decodes into a value that already holds
// another record: nothing of the old record may survive or be aliased.
func TestUnmarshalIntoReusedValue(t *testing.T) {
	c := codecs(t)

	t.Run("event", func(t *testing.T) {
		b, err := c.Event.Marshal(&Event{ID: "new", Changed: nil, Previous: nil})
		if err != nil {
			t.Fatal(err)
		}
		v := sampleEvent()
		if err := c.Event.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if v.ID != "new" || len(v.Changed) != 0 || v.Previous != nil || v.Subject != "" {
			t.Errorf("stale fields after decode: %+v", v)
		}
	})

	t.Run("subscription", func(t *testing.T) {
		b, err := c.Subscription.Marshal(&Subscription{ID: "new", Auth: &Auth{Type: "bearer"}, Secrets: []Secret{{Sealed: []byte("n")}}})
		if err != nil {
			t.Fatal(err)
		}
		v := sampleSubscription()
		oldAuth, oldSecrets := v.Auth, v.Secrets
		if err := c.Subscription.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Headers) != 0 || len(v.Metadata) != 0 || len(v.Routes) != 0 || len(v.Derive) != 0 || v.Batch != nil || v.Condition != nil {
			t.Errorf("stale fields after decode: %+v", v)
		}
		if v.Auth.Username != "" {
			t.Errorf("auth username = %q, want empty", v.Auth.Username)
		}
		// A caller that kept the old record must not see it rewritten.
		if oldAuth.Type != "basic" || oldAuth.Username != "erp" {
			t.Errorf("old Auth was overwritten in place: %+v", oldAuth)
		}
		if string(oldSecrets[0].Sealed) != "sealed-new" {
			t.Errorf("old Secrets were overwritten in place: %q", oldSecrets[0].Sealed)
		}
	})
}

func TestUnmarshalErrors(t *testing.T) {
	c := codecs(t)
	ev := sampleEvent()
	good, err := c.Event.Marshal(&ev)
	if err != nil {
		t.Fatal(err)
	}
	withByte := func(i int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = v
		return b
	}
	withID := func(id uint32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[1:5], id)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr string
		is      error
	}{
		{name: "nil", in: nil, is: avro.ErrNotFramed},
		{name: "empty", in: []byte{}, is: avro.ErrNotFramed},
		{name: "shorter than header", in: good[:4], is: avro.ErrNotFramed},
		{name: "wrong magic byte", in: withByte(0, 1), is: avro.ErrNotFramed},
		{name: "json instead of avro", in: []byte(`{"id":"e1"}`), is: avro.ErrNotFramed},
		{name: "subscription schema id", in: withID(c.Subscription.ID()), wantErr: fmt.Sprintf("schema id %d, want 1", c.Subscription.ID())},
		{name: "unknown schema id", in: withID(99), wantErr: "schema id 99, want 1"},
		{name: "header only", in: good[:5], wantErr: "decode dev.hookline.Event"},
		{name: "truncated in a string", in: good[:12], wantErr: "decode dev.hookline.Event"},
		{name: "truncated at last field", in: good[:len(good)-1], wantErr: "decode dev.hookline.Event"},
		{name: "negative string length", in: append(append([]byte(nil), good[:5]...), 0x01), wantErr: "decode dev.hookline.Event"},
		{name: "string longer than input", in: append(append([]byte(nil), good[:5]...), 0xfe, 0xff, 0x7f), wantErr: "decode dev.hookline.Event"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v Event
			err := c.Event.Unmarshal(tc.in, &v)
			if err == nil {
				t.Fatalf("Unmarshal(% x) = nil error, decoded %+v", tc.in, v)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %q", err, tc.is)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

// TestUnmarshalTruncatedEverywhere cuts every valid encoding at every
// length: each prefix must be refused, never decoded as a shorter record.
func TestUnmarshalTruncatedEverywhere(t *testing.T) {
	c := codecs(t)
	ev, sub, dlv, att := sampleEvent(), sampleSubscription(), sampleDelivery(`{"k":"v"}`), sampleAttempt()
	tests := []struct {
		name      string
		marshal   func() ([]byte, error)
		unmarshal func([]byte) error
	}{
		{"event", func() ([]byte, error) { return c.Event.Marshal(&ev) }, func(b []byte) error { return c.Event.Unmarshal(b, new(Event)) }},
		{"subscription", func() ([]byte, error) { return c.Subscription.Marshal(&sub) }, func(b []byte) error { return c.Subscription.Unmarshal(b, new(Subscription)) }},
		{"delivery", func() ([]byte, error) { return c.Delivery.Marshal(&dlv) }, func(b []byte) error { return c.Delivery.Unmarshal(b, new(Delivery)) }},
		{"attempt", func() ([]byte, error) { return c.Attempt.Marshal(&att) }, func(b []byte) error { return c.Attempt.Unmarshal(b, new(DeliveryAttempt)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.unmarshal(b); err != nil {
				t.Fatalf("full value: %v", err)
			}
			for n := 0; n < len(b); n++ {
				if err := tc.unmarshal(b[:n]); err == nil {
					t.Errorf("prefix of %d/%d bytes decoded without error", n, len(b))
				}
			}
		})
	}
}

func TestMarshalResultIsNotShared(t *testing.T) {
	c := codecs(t)
	a, err := c.Delivery.Marshal(&Delivery{ID: "first"})
	if err != nil {
		t.Fatal(err)
	}
	keep := append([]byte(nil), a...)
	if _, err := c.Delivery.Marshal(&Delivery{ID: "second-and-longer"}); err != nil {
		t.Fatal(err)
	}
	if string(a) != string(keep) {
		t.Errorf("first result changed by a later Marshal: % x, want % x", a, keep)
	}
}

// TestDecodedBytesDoNotAlias: appending to one decoded bytes field (an
// in-place seal or open, say) must not rewrite another field.
func TestDecodedBytesDoNotAlias(t *testing.T) {
	c := codecs(t)
	sub := sampleSubscription()
	b, err := c.Subscription.Marshal(&sub)
	if err != nil {
		t.Fatal(err)
	}
	var v Subscription
	if err := c.Subscription.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	_ = append(v.Auth.SealedCredential, make([]byte, 256)...)
	_ = append(v.Secrets[0].Sealed, make([]byte, 256)...)
	if string(v.Secrets[0].Sealed) != "sealed-new" || string(v.Secrets[1].Sealed) != "sealed-old" {
		t.Errorf("secrets rewritten by an append to another field: %q, %q", v.Secrets[0].Sealed, v.Secrets[1].Sealed)
	}
	if v.Routes[0].URL != "https://eu.example.com/hooks" {
		t.Errorf("route URL rewritten by an append to another field: %q", v.Routes[0].URL)
	}
}

// TestCodecConcurrent shares one codec between goroutines, as a service's
// partition workers do: the pooled writers and readers must not mix values.
func TestCodecConcurrent(t *testing.T) {
	c := codecs(t)
	const workers, rounds = 8, 200
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range rounds {
				in := sampleDelivery(strings.Repeat("p", w*100+i))
				in.ID = fmt.Sprintf("d-%d-%d", w, i)
				b, err := c.Delivery.Marshal(&in)
				if err != nil {
					errs <- err
					return
				}
				var out Delivery
				if err := c.Delivery.Unmarshal(b, &out); err != nil {
					errs <- err
					return
				}
				if out.ID != in.ID || out.Payload != in.Payload {
					errs <- fmt.Errorf("worker %d round %d decoded %s with %d-byte payload", w, i, out.ID, len(out.Payload))
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
