package match

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/match"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// TestRedeliver: an event of hookline.redeliveries goes to the one
// subscription its header names, shaped for it (payload mode, metadata,
// routes) whatever its event types and condition, with the delivery id a
// match would give, marked as a replay, carrying the redelivery id when
// one was asked for; a subscription that is not the tenant's, or not
// enabled, gets nothing and the record goes to the rejected topic.
func TestRedeliver(t *testing.T) {
	target := testSub("acme", "sub_new", "invoice.*") // does not subscribe to order.*
	target.Metadata = map[string]string{"team": "billing"}
	target.Condition = ptr(`{"field":"data.total","op":"gt","value":1000}`) // not met
	other := testSub("globex", "sub_globex", "*")
	m := testMatcher(t, target, other)
	ev := &record.Event{ID: "evt_old", Tenant: "acme", Type: "order.created", Subject: "ord_1", OccurredAt: occurred,
		ReceivedAt: occurred, Data: `{"total":42}`, Changed: []string{}}
	rec := func(sub, redelivery string) *kgo.Record {
		r := &kgo.Record{Topic: m.Topics.Redeliveries, Key: []byte(ev.Subject), Value: encodeEvent(t, m.Codecs, ev),
			Headers: []kgo.RecordHeader{{Key: wire.HeaderSubscription, Value: []byte(sub)}}}
		if redelivery != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: wire.HeaderRedelivery, Value: []byte(redelivery)})
		}
		return r
	}
	out := m.ProcessBatch([]*kgo.Record{rec("sub_new", ""), rec("sub_new", "rdl_1"), rec("sub_globex", ""), rec("sub_gone", "")})

	for i, want := range []string{"", "rdl_1"} {
		if len(out[i]) != 1 || out[i][0].Topic != m.Topics.Deliveries {
			t.Fatalf("record %d yielded %v, want one delivery", i, out[i])
		}
		var d record.Delivery
		if err := m.Codecs.Delivery.Unmarshal(out[i][0].Value, &d); err != nil {
			t.Fatal(err)
		}
		var body match.Body
		if err := json.Unmarshal([]byte(d.Payload), &body); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.ID != id.Delivery(ev.ID, target.ID) || d.SubscriptionID != target.ID || string(out[i][0].Key) != target.ID:
			t.Errorf("delivery %s to %s, want %s to %s", d.ID, d.SubscriptionID, id.Delivery(ev.ID, target.ID), target.ID)
		case !d.Replay || d.Redelivery != want || !d.ResolveURL:
			t.Errorf("delivery replay %v, redelivery %q, resolve %v; want a replay, %q, resolved", d.Replay, d.Redelivery, d.ResolveURL, want)
		case body.ID != ev.ID || body.Metadata["team"] != "billing" || string(body.Data) != ev.Data:
			t.Errorf("body %s, not shaped for the subscription", d.Payload)
		}
	}
	for i, why := range map[int]string{2: "another tenant's subscription", 3: "an unknown subscription"} {
		if len(out[i]) != 1 || out[i][0].Topic != m.Topics.IngestRejected {
			t.Fatalf("%s: yielded %v, want the record on the rejected topic", why, out[i])
		}
		if h := out[i][0].Headers[0]; h.Key != wire.HeaderError || !strings.Contains(string(h.Value), "not enabled") {
			t.Errorf("%s: rejected with %s=%s", why, h.Key, h.Value)
		}
	}
}
