package history

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func testConverter(t *testing.T) converter {
	t.Helper()
	c, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	return converter{codecs: c, topics: wire.NewTopics("t.")}
}

func sampleDelivery() record.Delivery {
	return record.Delivery{ID: "dlv_1", Tenant: "acme", SubscriptionID: "sub_1", EventID: "evt_1", EventType: "order.created",
		URL: "https://example.com/h", Payload: `{"id":"evt_1"}`, CreatedAt: t0, EventTime: t0, ResolveURL: true,
		Route: &record.RouteRef{Condition: "c0ffee", Values: map[string]string{"data.shop": "eu"}}}
}

// TestConvertStates: what each topic's record says of its delivery's
// state, and when.
func TestConvertStates(t *testing.T) {
	c := testConverter(t)
	at := t0.Add(time.Minute)
	fresh := sampleDelivery()
	requeued := fresh
	requeued.Attempt, requeued.DueAt = 2, &at
	replay := fresh
	replay.Replay = true
	dead := fresh
	dead.Attempt, dead.LastStatus, dead.LastError = 3, 500, "gave up after 3 attempts: HTTP 500"
	tests := []struct {
		name    string
		topic   string
		d       record.Delivery
		state   logstore.State
		updated time.Time
	}{
		{"new delivery: pending, no time of its own", c.topics.Deliveries, fresh, logstore.StatePending, time.Time{}},
		{"re-queued by the retry service: adds nothing", c.topics.Deliveries, requeued, logstore.StatePending, time.Time{}},
		{"a fresh replay: pending again as of the record", c.topics.Deliveries, replay, logstore.StatePending, at},
		{"dead letter: failed as of the record", c.topics.DLQ, dead, logstore.StateFailed, at},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.codecs.Delivery.Marshal(&tc.d)
			if err != nil {
				t.Fatal(err)
			}
			var b logstore.Batch
			if skip, err := c.add(&b, &kgo.Record{Topic: tc.topic, Value: v, Timestamp: at}); skip || err != nil {
				t.Fatalf("add: skip %v, %v", skip, err)
			}
			d := b.Deliveries[0]
			if d.State != tc.state || !d.UpdatedAt.Equal(tc.updated) || string(d.Payload) != tc.d.Payload ||
				d.Route == nil || d.Route.Values["data.shop"] != "eu" || d.Attempts != tc.d.Attempt {
				t.Errorf("delivery %+v, want %s as of %v with its payload and route", d, tc.state, tc.updated)
			}
		})
	}
}

// TestConvertAttempts: version 2 attempts carry their delivery's
// created_at and a batch's body by reference; version 1 attempts are
// stored with what they have.
func TestConvertAttempts(t *testing.T) {
	c := testConverter(t)
	d := sampleDelivery()
	created := d.CreatedAt
	array := []byte(`[{"id":"evt_1"},{"id":"evt_2"}]`)
	sum := sha256.Sum256(array)
	v2 := record.DeliveryAttempt{DeliveryID: d.ID, Tenant: d.Tenant, SubscriptionID: d.SubscriptionID, EventID: d.EventID,
		Attempt: 1, StartedAt: t0.Add(time.Second), Outcome: record.OutcomeDeadLettered, StatusCode: 400,
		DeliveryCreatedAt: &created, RequestBodySHA256: sum[:], ResponseBody: []byte("no"), ResponseSnippet: "no"}
	a := convertAttempt(t, c, &v2)
	if !a.DeliveryCreatedAt.Equal(created) || a.Outcome != logstore.StateFailed || a.RequestBody != nil ||
		!bytes.Equal(a.RequestBodyHash, logstore.BodyHash(array)) {
		t.Errorf("v2 attempt %+v", a)
	}
	v1 := v2
	v1.DeliveryCreatedAt, v1.RequestBodySHA256, v1.ResponseBody = nil, nil, nil
	v1.ResponseSnippet = "bad request"
	a = convertAttempt(t, c, &v1)
	if !a.DeliveryCreatedAt.Equal(v1.StartedAt) || string(a.ResponseBody) != "bad request" || a.RequestBodyHash != nil {
		t.Errorf("v1 attempt %+v, want its start as created_at and the snippet as body", a)
	}
	bad := v2
	bad.Outcome = "exploded"
	value, _ := c.codecs.Attempt.Marshal(&bad)
	var b logstore.Batch
	if _, err := c.add(&b, &kgo.Record{Topic: c.topics.DeliveryLog, Value: value}); !errors.Is(err, logstore.ErrInvalid) || b.Len() != 0 {
		t.Errorf("an attempt with an unknown outcome: %v (batch of %d), want refused, nothing added", err, b.Len())
	}
	if skip, err := c.add(&b, &kgo.Record{Topic: "t.other", Value: []byte("x")}); !skip || err != nil {
		t.Errorf("a record of another topic: skip %v, %v", skip, err)
	}
}

func convertAttempt(t *testing.T, c converter, a *record.DeliveryAttempt) logstore.Attempt {
	t.Helper()
	v, err := c.codecs.Attempt.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var b logstore.Batch
	if _, err := c.add(&b, &kgo.Record{Topic: c.topics.DeliveryLog, Value: v}); err != nil {
		t.Fatal(err)
	}
	return b.Attempts[0]
}
