package match

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/match"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/routeurl"
	"github.com/hookline/hookline/pkg/wire"
)

// codecs loads the record codecs.
func codecs(tb testing.TB) *record.Codecs {
	tb.Helper()
	c, err := record.LoadCodecs()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func ptr(s string) *string { return &s }

// encodeEvent is ev as the events topic holds it.
func encodeEvent(tb testing.TB, c *record.Codecs, ev *record.Event) []byte {
	tb.Helper()
	b, err := c.Event.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var (
	occurred = time.Date(2025, 6, 1, 14, 30, 45, 123_000_000, time.FixedZone("CEST", 2*60*60))
	fixedNow = time.Date(2025, 6, 1, 12, 31, 0, 0, time.UTC)
)

// testMatcher indexes subs and returns a matcher whose clock is fixedNow.
func testMatcher(tb testing.TB, subs ...*record.Subscription) *Matcher {
	tb.Helper()
	ix := index.New(zerolog.Nop())
	for _, s := range subs {
		ix.Update(nil, s)
	}
	if ix.Len() != len(subs) {
		tb.Fatalf("indexed %d of %d subscriptions", ix.Len(), len(subs))
	}
	return &Matcher{Index: ix, Codecs: codecs(tb), Topics: wire.NewTopics("test."), Now: func() time.Time { return fixedNow }}
}

func testSub(tenant, id string, types ...string) *record.Subscription {
	return &record.Subscription{ID: id, Tenant: tenant, URL: "https://example.com/" + id, EventTypes: types, Payload: "full", Enabled: true}
}

// deliveries decodes the records Process returned, checking what every
// delivery record must satisfy, and returns them by subscription id.
func deliveries(t *testing.T, m *Matcher, ev *record.Event, recs []*kgo.Record) map[string]record.Delivery {
	t.Helper()
	out := map[string]record.Delivery{}
	for _, r := range recs {
		if r.Topic != m.Topics.Deliveries {
			t.Fatalf("record for topic %s, want %s", r.Topic, m.Topics.Deliveries)
		}
		var d record.Delivery
		if err := m.Codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
			t.Fatalf("delivery does not decode: %v", err)
		}
		if string(r.Key) != d.SubscriptionID {
			t.Errorf("key %q, want the subscription id %q", r.Key, d.SubscriptionID)
		}
		if want := id.Delivery(ev.ID, d.SubscriptionID); d.ID != want {
			t.Errorf("delivery id %s, want %s", d.ID, want)
		}
		if d.Tenant != ev.Tenant || d.EventID != ev.ID || d.EventType != ev.Type {
			t.Errorf("delivery %+v does not carry the event's tenant, id and type", d)
		}
		if !d.CreatedAt.Equal(fixedNow) || !d.EventTime.Equal(ev.OccurredAt) {
			t.Errorf("created_at %v event_time %v, want %v and %v", d.CreatedAt, d.EventTime, fixedNow, ev.OccurredAt)
		}
		if d.Attempt != 0 || d.DueAt != nil {
			t.Errorf("a new delivery has attempt %d due_at %v", d.Attempt, d.DueAt)
		}
		var body match.Body
		if err := json.Unmarshal([]byte(d.Payload), &body); err != nil || body.ID != ev.ID {
			t.Errorf("payload %s is not the event's body: %v", d.Payload, err)
		}
		if _, dup := out[d.SubscriptionID]; dup {
			t.Errorf("two deliveries for subscription %s", d.SubscriptionID)
		}
		out[d.SubscriptionID] = d
	}
	return out
}

func TestProcess(t *testing.T) {
	cond := testSub("acme", "big-orders", "order.created")
	cond.Condition = ptr(`{"field":"data.total","op":"gt","value":100}`)
	expr := testSub("acme", "cel", "order.created")
	expr.Expression = ptr(`event.data.total > 100 && event.data.region == "eu"`)
	routed := testSub("acme", "routed", "order.created")
	routed.Routes = []record.Route{
		{Condition: `{"field":"data.region","op":"eq","value":"eu"}`, URL: "https://eu.example.com/hook"},
		{Condition: `{"field":"data.region","op":"in","value":["eu","us"]}`, URL: "https://amer.example.com/hook"},
	}
	m := testMatcher(t,
		testSub("acme", "orders", "order.*"),
		cond, expr, routed,
		testSub("acme", "customers", "customer.created"),
		testSub("globex", "globex-orders", "order.created"),
	)
	tests := []struct {
		name        string
		tenant, typ string
		data        string
		want        map[string]string // subscription id -> URL; nil: rejected
	}{
		{"condition, expression and first route match", "acme", "order.created", `{"total":150,"region":"eu"}`, map[string]string{
			"orders":     "https://example.com/orders",
			"big-orders": "https://example.com/big-orders",
			"cel":        "https://example.com/cel",
			"routed":     "https://eu.example.com/hook",
		}},
		{"condition false, second route", "acme", "order.created", `{"total":50,"region":"us"}`, map[string]string{
			"orders": "https://example.com/orders",
			"routed": "https://amer.example.com/hook",
		}},
		{"no route matches: subscription URL", "acme", "order.created", `{"total":101,"region":"apac"}`, map[string]string{
			"orders":     "https://example.com/orders",
			"big-orders": "https://example.com/big-orders",
			"routed":     "https://example.com/routed",
		}},
		{"expression error on a missing field is no match", "acme", "order.created", `{"total":500}`, map[string]string{
			"orders":     "https://example.com/orders",
			"big-orders": "https://example.com/big-orders",
			"routed":     "https://example.com/routed",
		}},
		{"type matched by the pattern only", "acme", "order.paid", `{"total":500}`, map[string]string{
			"orders": "https://example.com/orders",
		}},
		{"other tenant", "globex", "order.created", `{"total":500}`, map[string]string{
			"globex-orders": "https://example.com/globex-orders",
		}},
		{"no subscription for the type", "acme", "invoice.sent", `{}`, map[string]string{}},
		{"unknown tenant", "initech", "order.created", `{}`, map[string]string{}},
		{"data that is not JSON is rejected", "acme", "order.created", `{"total":`, nil},
		{"data not JSON but nobody subscribed: nothing owed", "acme", "invoice.sent", `{"total":`, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &record.Event{ID: "evt_" + strings.ReplaceAll(tc.name, " ", "_"), Tenant: tc.tenant, Type: tc.typ,
				Subject: "ord_1", OccurredAt: occurred.UTC(), Data: tc.data}
			in := &kgo.Record{Topic: m.Topics.Events, Key: []byte("ord_1"), Value: encodeEvent(t, m.Codecs, ev)}
			recs := m.Process(in)
			if tc.want == nil {
				if len(recs) != 1 || recs[0].Topic != m.Topics.IngestRejected {
					t.Fatalf("got %d records, want one for %s", len(recs), m.Topics.IngestRejected)
				}
				if !bytes.Equal(recs[0].Value, in.Value) || !bytes.Equal(recs[0].Key, in.Key) {
					t.Error("the rejected record is not the original")
				}
				return
			}
			got := deliveries(t, m, ev, recs)
			if len(got) != len(tc.want) {
				t.Errorf("deliveries for %v, want %v", keys(got), keys(tc.want))
			}
			for sub, url := range tc.want {
				d, ok := got[sub]
				if !ok {
					t.Errorf("no delivery for %s", sub)
				} else if d.URL != url {
					t.Errorf("%s: URL %s, want %s", sub, d.URL, url)
				}
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestProcessDeterministicIDs(t *testing.T) {
	m := testMatcher(t, testSub("acme", "a", "order.created"), testSub("acme", "b", "order.*"))
	process := func(eventID string) []string {
		t.Helper()
		ev := &record.Event{ID: eventID, Tenant: "acme", Type: "order.created", Subject: "s", OccurredAt: occurred, Data: `{}`}
		recs := m.Process(&kgo.Record{Value: encodeEvent(t, m.Codecs, ev)})
		var ids []string
		for _, d := range deliveries(t, m, ev, recs) {
			ids = append(ids, d.ID)
		}
		slices.Sort(ids)
		return ids
	}
	first, again, other := process("evt_1"), process("evt_1"), process("evt_2")
	if len(first) != 2 || !slices.Equal(first, again) {
		t.Errorf("reprocessing gave %v then %v, want the same two ids", first, again)
	}
	if first[0] == first[1] {
		t.Errorf("two subscriptions got the same delivery id %s", first[0])
	}
	for _, id := range other {
		if slices.Contains(first, id) {
			t.Errorf("another event reused delivery id %s", id)
		}
	}
}

// TestOversizedDeliveryIsDeadLettered: a delivery over the record limit
// is dead-lettered with the reason, visibly (hookline.dlq and an attempt
// on the delivery log), for its own subscription only; the event's other
// subscriptions still get theirs. Before, the whole event went to the
// rejected topic and no subscription heard of it.
func TestOversizedDeliveryIsDeadLettered(t *testing.T) {
	withMeta := testSub("acme", "meta", "order.created")
	withMeta.Metadata = map[string]string{"pad": strings.Repeat("m", 20_000)}
	m := testMatcher(t, testSub("acme", "plain", "order.created"), withMeta)
	tests := []struct {
		name      string
		dataBytes int
		delivered []string // the rest are dead-lettered
	}{
		{"fits", match.MaxDeliveryBytes - 30_000, []string{"meta", "plain"}},
		{"delivery with metadata too large", match.MaxDeliveryBytes - 10_000, []string{"plain"}},
		{"too large", match.MaxDeliveryBytes, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &record.Event{ID: "e", Tenant: "acme", Type: "order.created", OccurredAt: occurred,
				Data: `{"x":"` + strings.Repeat("x", tc.dataBytes) + `"}`}
			recs := m.Process(&kgo.Record{Value: encodeEvent(t, m.Codecs, ev)})
			got := outcomes(t, m, recs)
			for _, sub := range []string{"meta", "plain"} {
				want := "dead-lettered"
				if slices.Contains(tc.delivered, sub) {
					want = "delivered"
				}
				if !strings.HasPrefix(got[sub], want) {
					t.Errorf("%s: %s, want %s", sub, got[sub], want)
				}
				if want == "dead-lettered" && !strings.Contains(got[sub], "bytes, more than") {
					t.Errorf("%s: dead letter says %q, want the size", sub, got[sub])
				}
			}
		})
	}
}

// TestRouteTargetsAndTheirDeadLetters: a delivery names its target for
// the sender to resolve at each attempt (resolve_url, and the route by
// its condition with the values its URL was filled with). A route URL the
// event cannot fill is dead-lettered for that subscription alone, visibly,
// still naming the route, so that a replay after the owner fixed the
// subscription finds it; the event's other subscriptions get theirs.
func TestRouteTargetsAndTheirDeadLetters(t *testing.T) {
	const cond = `{"field":"data.region","op":"eq","value":"eu"}`
	routed := testSub("acme", "routed", "order.created")
	routed.AllowedHosts = []string{"*.hooks.example"}
	routed.Routes = []record.Route{{Condition: cond, URL: "https://{{data.shop}}.hooks.example/in"}}
	m := testMatcher(t, routed, testSub("acme", "plain", "order.created"))
	tests := []struct {
		name, data, url, values string // values: the route's recorded values as JSON
		deadLettered            bool
	}{
		{"route filled", `{"region":"eu","shop":"acme"}`, "https://acme.hooks.example/in", `{"data.shop":"acme"}`, false},
		{"route value missing", `{"region":"eu"}`, "", `{}`, true},
		{"route URL refused", `{"region":"eu","shop":"a.b/c"}`, "", `{"data.shop":"a.b/c"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &record.Event{ID: "evt_1", Tenant: "acme", Type: "order.created", OccurredAt: occurred, Data: tc.data}
			recs := m.Process(&kgo.Record{Value: encodeEvent(t, m.Codecs, ev)})
			got := outcomes(t, m, recs)
			if got["plain"] != "delivered" {
				t.Errorf("plain: %s, want delivered", got["plain"])
			}
			if dead := strings.HasPrefix(got["routed"], "dead-lettered"); dead != tc.deadLettered {
				t.Fatalf("routed: %s, dead-lettered %v wanted", got["routed"], tc.deadLettered)
			}
			for _, r := range recs {
				var d record.Delivery
				if r.Topic == m.Topics.DeliveryLog || m.Codecs.Delivery.Unmarshal(r.Value, &d) != nil || d.SubscriptionID != "routed" {
					continue
				}
				values, _ := json.Marshal(d.Route.Values)
				if !d.ResolveURL || d.Route == nil || d.Route.Condition != routeurl.ConditionID(cond) || string(values) != tc.values || d.URL != tc.url {
					t.Errorf("delivery %+v route %+v: want resolve_url, the route's id, values %s and URL %q", d, d.Route, tc.values, tc.url)
				}
			}
		})
	}
}

// outcomes sorts the records Process returned by subscription: "delivered"
// for a Delivery on the deliveries topic, "dead-lettered: <reason>" for a
// dead letter that has its attempt on the delivery log. It fails on
// anything else.
func outcomes(t *testing.T, m *Matcher, recs []*kgo.Record) map[string]string {
	t.Helper()
	out := map[string]string{}
	logged := map[string]record.DeliveryAttempt{}
	for _, r := range recs {
		switch r.Topic {
		case m.Topics.Deliveries, m.Topics.DLQ:
			if len(r.Value) > match.MaxDeliveryBytes {
				t.Fatalf("a %d-byte record for %s", len(r.Value), r.Topic)
			}
			var d record.Delivery
			if err := m.Codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
				t.Fatal(err)
			}
			if r.Topic == m.Topics.Deliveries {
				out[d.SubscriptionID] = "delivered"
			} else if d.LastError == "" {
				t.Fatalf("dead letter of %s without a reason", d.SubscriptionID)
			} else {
				out[d.SubscriptionID] = "dead-lettered: " + d.LastError
			}
		case m.Topics.DeliveryLog:
			var a record.DeliveryAttempt
			if err := m.Codecs.Attempt.Unmarshal(r.Value, &a); err != nil {
				t.Fatal(err)
			}
			logged[a.SubscriptionID] = a
		default:
			t.Fatalf("record for %s", r.Topic)
		}
	}
	for sub, o := range out {
		a, ok := logged[sub]
		dead := strings.HasPrefix(o, "dead-lettered")
		if dead != ok || (ok && (a.Outcome != record.OutcomeDeadLettered || "dead-lettered: "+a.Error != o || a.Attempt != 0)) {
			t.Fatalf("%s: %s with delivery-log attempt %+v (logged %v)", sub, o, a, ok)
		}
	}
	return out
}

func TestProcessRejectsUndecodable(t *testing.T) {
	m := testMatcher(t, testSub("acme", "a", "*"))
	good := encodeEvent(t, m.Codecs, &record.Event{ID: "e", Tenant: "acme", Type: "x", Data: `{}`})
	ctx := context.WithValue(context.Background(), struct{}{}, "trace")
	tests := []struct {
		name  string
		value []byte
	}{
		{"not the wire format", []byte("{\"id\":\"e\"}")},
		{"empty", nil},
		{"unknown schema id", append([]byte{0, 0, 0, 0x7f, 0x7f}, good[5:]...)},
		{"truncated", good[:len(good)-3]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &kgo.Record{Key: []byte("k"), Value: tc.value, Context: ctx,
				Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-x")}}}
			recs := m.Process(in)
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1", len(recs))
			}
			r := recs[0]
			if r.Topic != m.Topics.IngestRejected || string(r.Key) != "k" || !bytes.Equal(r.Value, tc.value) || r.Context != ctx {
				t.Errorf("rejected record %+v is not the original for %s", r, m.Topics.IngestRejected)
			}
			if len(r.Headers) != 3 || r.Headers[0].Key != wire.HeaderError || len(r.Headers[0].Value) == 0 ||
				r.Headers[1].Key != wire.HeaderSource || r.Headers[2].Key != "traceparent" {
				t.Errorf("headers %v, want %s with the reason, %s, then the original headers", r.Headers, wire.HeaderError, wire.HeaderSource)
			}
		})
	}
}

func TestShape(t *testing.T) {
	const head = `{"id":"evt_1","type":"%s","timestamp":"2025-06-01T12:30:45.123Z","subject":"ord_1","data":`
	tests := []struct {
		name     string
		typ      string
		data     string
		changed  []string
		previous *string
		payload  string
		metadata map[string]string
		want     string // the body after head
	}{
		{"created, full", "order.created", `{"id":"ord_1","status":"new","total":10}`, nil, nil, "full", nil,
			`{"id":"ord_1","status":"new","total":10}}`},
		{"created, changed mode sends all", "order.created", `{"id":"ord_1","status":"new","total":10}`, nil, nil, "changed", nil,
			`{"id":"ord_1","status":"new","total":10}}`},
		{"updated, changed list", "order.updated", `{"id":"ord_1","status":"paid","total":10}`, []string{"status"}, nil, "changed", nil,
			`{"id":"ord_1","status":"paid"}}`},
		{"updated, full mode ignores changed", "order.updated", `{"id":"ord_1","status":"paid","total":10}`, []string{"status"}, nil, "full", nil,
			`{"id":"ord_1","status":"paid","total":10}}`},
		{"updated, diff against previous", "order.updated", `{"id":"ord_1","status":"paid","total":10,"tracking":"T1","lines":[1,2]}`, nil,
			ptr(`{"id":"ord_1","status":"new","total":10,"note":"x","lines":[1,2]}`), "changed", nil,
			`{"id":"ord_1","status":"paid","tracking":"T1"}}`},
		{"updated, nested change diffs the top-level field", "order.updated", `{"id":"ord_1","address":{"city":"Berlin","zip":"10115"}}`, nil,
			ptr(`{"id":"ord_1","address":{"city":"Bonn","zip":"10115"}}`), "changed", nil,
			`{"address":{"city":"Berlin","zip":"10115"},"id":"ord_1"}}`},
		{"updated, changed list names an absent field", "order.updated", `{"id":"ord_1","status":"paid"}`, []string{"status", "gone"}, nil, "changed", nil,
			`{"id":"ord_1","status":"paid"}}`},
		{"updated, no id in data: the subject is the id", "order.updated", `{"status":"paid","total":10}`, []string{"status"}, nil, "changed", nil,
			`{"id":"ord_1","status":"paid"}}`},
		{"updated, numbers keep their digits", "order.updated", `{"id":12345678901234567890,"total":1.50,"qty":3}`, []string{"total"}, nil, "changed", nil,
			`{"id":12345678901234567890,"total":1.50}}`},
		{"updated, previous equal to data: only the id", "order.updated", `{"id":"ord_1","total":10}`, nil, ptr(`{"id":"ord_1","total":10}`), "changed", nil,
			`{"id":"ord_1"}}`},
		{"deleted, changed mode sends all", "order.deleted", `{"id":"ord_1","status":"paid","total":10}`, nil, nil, "changed", nil,
			`{"id":"ord_1","status":"paid","total":10}}`},
		{"data not an object sends all", "order.updated", `[1,2]`, []string{"status"}, nil, "changed", nil,
			`[1,2]}`},
		{"metadata injected", "order.created", `{"id":"ord_1"}`, nil, nil, "full", map[string]string{"team": "billing", "env": "prod"},
			`{"id":"ord_1"},"metadata":{"env":"prod","team":"billing"}}`},
		{"metadata with changed data", "order.updated", `{"id":"ord_1","status":"paid","total":10}`, []string{"total"}, nil, "changed", map[string]string{"a": "<b>"},
			`{"id":"ord_1","total":10},"metadata":{"a":"\u003cb\u003e"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &record.Event{ID: "evt_1", Tenant: "acme", Type: tc.typ, Subject: "ord_1", OccurredAt: occurred,
				Data: tc.data, Changed: tc.changed, Previous: tc.previous}
			doc, err := match.Document(ev)
			if err != nil {
				t.Fatal(err)
			}
			s := testSub("acme", "a", tc.typ)
			s.Payload, s.Metadata = tc.payload, tc.metadata
			e, err := index.Compile(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := match.Shape(ev, doc, e)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Replace(head, "%s", tc.typ, 1) + tc.want; string(got) != want {
				t.Errorf("body\n got %s\nwant %s", got, want)
			}
			var body match.Body
			if err := json.Unmarshal([]byte(got), &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if !body.Timestamp.Equal(occurred) || len(body.Metadata) != len(tc.metadata) {
				t.Errorf("decoded body %+v lost the timestamp or metadata", body)
			}
		})
	}
}

// TestShapeEscapes checks the envelope stays valid JSON whatever the event's
// strings hold.
func TestShapeEscapes(t *testing.T) {
	ev := &record.Event{ID: `evt_"1"`, Type: "a\\b", Subject: "<script>\n\u2028", OccurredAt: occurred, Data: `{"x":"\"quoted\""}`}
	doc, err := match.Document(ev)
	if err != nil {
		t.Fatal(err)
	}
	e, err := index.Compile(testSub("acme", "a", "x"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := match.Shape(ev, doc, e)
	if err != nil {
		t.Fatal(err)
	}
	var body match.Body
	if err := json.Unmarshal([]byte(got), &body); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if body.ID != ev.ID || body.Type != ev.Type || body.Subject != ev.Subject || string(body.Data) != ev.Data {
		t.Errorf("decoded %+v, want the event's fields back", body)
	}
}

func TestDocument(t *testing.T) {
	ev := &record.Event{ID: "e", Type: "t", Subject: "s", Source: "src", Data: `{"a":{"b":[1,"x"]}}`,
		Changed: []string{"a"}, Previous: ptr(`{"a":null}`)}
	doc, err := match.Document(ev)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want any
	}{
		{"id", "e"}, {"type", "t"}, {"subject", "s"}, {"source", "src"},
		{"data.a.b.1", "x"}, {"changed.0", "a"}, {"previous.a", nil},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			path, err := condition.ParsePath(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := doc.Lookup(path); !ok || got != tc.want {
				t.Errorf("%s = %v (%v), want %v", tc.path, got, ok, tc.want)
			}
		})
	}
	ev.Previous = ptr(`{`)
	if _, err := match.Document(ev); err == nil {
		t.Error("invalid previous accepted")
	}
}

func TestShapeDerived(t *testing.T) {
	const data = `{"id":"ord_1","status":"paid","total_cents":1999,"big":12345678901234567890,"customer":{"email":"Ann@Example.com"},"note":"<b>"}`
	type derive struct{ field, expr, def string } // def "": no default
	tests := []struct {
		name    string
		payload string
		changed []string
		derive  []derive
		want    string // data
		// failures counts the failed derived fields by fallback.
		defaulted, omitted float64
	}{
		{name: "computed field, other values as written", payload: "full",
			derive: []derive{{"data.total_eur", `event.data.total_cents / 100.0`, ""}},
			want:   `{"big":12345678901234567890,"customer":{"email":"Ann@Example.com"},"id":"ord_1","note":"<b>","status":"paid","total_cents":1999,"total_eur":19.99}`},
		{name: "fallback in CEL", payload: "full",
			derive: []derive{
				{"data.name", `has(event.data.name) ? event.data.name : "unknown"`, ""},
				{"data.state", `event.data.?status.orValue("none")`, ""},
			},
			want: `{"big":12345678901234567890,"customer":{"email":"Ann@Example.com"},"id":"ord_1","name":"unknown","note":"<b>","state":"paid","status":"paid","total_cents":1999}`},
		{name: "runtime error: the default", payload: "full",
			derive:    []derive{{"data.name", `event.data.name`, `{"first":null}`}},
			want:      `{"big":12345678901234567890,"customer":{"email":"Ann@Example.com"},"id":"ord_1","name":{"first":null},"note":"<b>","status":"paid","total_cents":1999}`,
			defaulted: 1},
		{name: "runtime error without default: left out, the event's own value stays", payload: "full",
			derive:  []derive{{"data.status", `event.data.status + 1.0`, ""}, {"data.x", `event.data.total_cents / 100`, ""}},
			want:    `{"big":12345678901234567890,"customer":{"email":"Ann@Example.com"},"id":"ord_1","note":"<b>","status":"paid","total_cents":1999}`,
			omitted: 2},
		{name: "overwrite, nested set, created parents", payload: "full",
			derive: []derive{
				{"data.status", `event.data.status.upperAscii()`, ""},
				{"data.customer.email", `event.data.customer.email.lowerAscii()`, ""},
				{"data.shipping.address.country", `"DE"`, ""},
			},
			want: `{"big":12345678901234567890,"customer":{"email":"ann@example.com"},"id":"ord_1","note":"<b>","shipping":{"address":{"country":"DE"}},"status":"PAID","total_cents":1999}`},
		{name: "parent not an object: left out", payload: "full",
			derive:  []derive{{"data.status.code", `1.0`, `2`}},
			want:    `{"big":12345678901234567890,"customer":{"email":"Ann@Example.com"},"id":"ord_1","note":"<b>","status":"paid","total_cents":1999}`,
			omitted: 1},
		{name: "in order: the later one wins", payload: "full",
			derive: []derive{{"data.n", `1.0`, ""}, {"data.n", `2.0`, ""}},
			want:   `{"big":12345678901234567890,"customer":{"email":"Ann@Example.com"},"id":"ord_1","n":2,"note":"<b>","status":"paid","total_cents":1999}`},
		{name: "changed payload: computed from the whole event", payload: "changed", changed: []string{"status"},
			derive: []derive{{"data.total_eur", `event.data.total_cents / 100.0`, ""}},
			want:   `{"id":"ord_1","status":"paid","total_eur":19.99}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &record.Event{ID: "evt_1", Tenant: "acme", Type: "order.updated", Subject: "ord_1", OccurredAt: occurred,
				Data: data, Changed: tc.changed}
			doc, err := match.Document(ev)
			if err != nil {
				t.Fatal(err)
			}
			s := testSub("acme", "a", ev.Type)
			s.Payload, s.Metadata = tc.payload, map[string]string{"team": "billing"}
			for _, d := range tc.derive {
				rd := record.Derive{Field: d.field, Expression: d.expr}
				if d.def != "" {
					rd.DefaultJSON = ptr(d.def)
				}
				s.Derive = append(s.Derive, rd)
			}
			e, err := index.Compile(s)
			if err != nil {
				t.Fatal(err)
			}
			metrics := NewMetrics(prometheus.NewRegistry())
			got, err := match.NewShaper(ev, doc, metrics.deriveFailer()).Body(e)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"id":"evt_1","type":"order.updated","timestamp":"2025-06-01T12:30:45.123Z","subject":"ord_1","data":` +
				tc.want + `,"metadata":{"team":"billing"}}`
			if got != want {
				t.Errorf("body\n got %s\nwant %s", got, want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("body is not JSON")
			}
			for fallback, n := range map[string]float64{"default": tc.defaulted, "omitted": tc.omitted} {
				if c := testutil.ToFloat64(metrics.DeriveFailures.WithLabelValues(fallback)); c != n {
					t.Errorf("failures with fallback %s = %v, want %v", fallback, c, n)
				}
			}
		})
	}
}

// TestShapeSharesBodies shapes one event for subscriptions that share a
// body and some that do not, in an order that mixes them: each body must
// be what that subscription gets on its own.
func TestShapeSharesBodies(t *testing.T) {
	ev := &record.Event{ID: "evt_1", Tenant: "acme", Type: "order.updated", Subject: "ord_1", OccurredAt: occurred,
		Data: `{"id":"ord_1","status":"paid","total":10}`, Changed: []string{"status"}}
	doc, err := match.Document(ev)
	if err != nil {
		t.Fatal(err)
	}
	full := testSub("acme", "full", ev.Type)
	changed := testSub("acme", "changed", ev.Type)
	changed.Payload = "changed"
	meta := testSub("acme", "meta", ev.Type)
	meta.Metadata = map[string]string{"k": "v"}
	derived := testSub("acme", "derived", ev.Type)
	derived.Derive = []record.Derive{{Field: "data.x", Expression: "1.0"}}
	changedMeta := testSub("acme", "changed-meta", ev.Type)
	changedMeta.Payload, changedMeta.Metadata = "changed", map[string]string{"k": "v"}

	shape := match.NewShaper(ev, doc, nil)
	distinct := map[string]bool{}
	for _, s := range []*record.Subscription{changed, full, meta, changedMeta, derived, full, changed, derived, meta} {
		e, err := index.Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := shape.Body(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := match.Shape(ev, doc, e)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: body\n got %s\nwant %s", s.ID, got, want)
		}
		distinct[got] = true
	}
	if len(distinct) != 5 {
		t.Errorf("%d distinct bodies for 5 kinds of subscription", len(distinct))
	}
}

// TestProcessBatch checks that a batch yields, record by record and in the
// records' order, what Process yields for each record alone, although the
// batch matches its events grouped by tenant and type.
func TestProcessBatch(t *testing.T) {
	var subs []*record.Subscription
	for _, tenant := range []string{"acme", "globex", "initech"} {
		all := testSub(tenant, tenant+"-all", "*")
		big := testSub(tenant, tenant+"-big", "order.*")
		big.Condition = ptr(`{"field":"data.total","op":"gt","value":100}`)
		big.Metadata = map[string]string{"tenant": tenant}
		subs = append(subs, all, big)
	}
	m := testMatcher(t, subs...)
	var recs []*kgo.Record
	for i := range 30 {
		tenant := []string{"initech", "acme", "globex", "unknown"}[i%4]
		typ := []string{"order.created", "invoice.paid", "order.updated"}[i%3]
		ev := &record.Event{ID: fmt.Sprintf("evt_%02d", i), Tenant: tenant, Type: typ, Subject: fmt.Sprintf("s%d", i%5),
			OccurredAt: occurred, Data: fmt.Sprintf(`{"total":%d}`, i*10)}
		if i == 8 {
			ev.Data = `{"total":` // not JSON: rejected
		}
		recs = append(recs, &kgo.Record{Key: []byte(ev.Subject), Value: encodeEvent(t, m.Codecs, ev)})
	}
	recs = append(recs[:12], append([]*kgo.Record{{Key: []byte("bad"), Value: []byte("not avro")}}, recs[12:]...)...)

	got := m.ProcessBatch(recs)
	if len(got) != len(recs) {
		t.Fatalf("%d outputs for %d records", len(got), len(recs))
	}
	var deliveries, rejected int
	for i, r := range recs {
		want := m.Process(r)
		if len(got[i]) != len(want) {
			t.Errorf("record %d: %d records, alone %d", i, len(got[i]), len(want))
			continue
		}
		for j := range want {
			g, w := got[i][j], want[j]
			if g.Topic != w.Topic || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
				t.Errorf("record %d output %d: %s %s, alone %s %s", i, j, g.Topic, g.Key, w.Topic, w.Key)
			}
			if g.Topic == m.Topics.IngestRejected {
				rejected++
			} else {
				deliveries++
			}
		}
	}
	if rejected != 2 || deliveries == 0 {
		t.Errorf("%d rejected and %d deliveries; want the 2 bad records rejected and deliveries for the rest", rejected, deliveries)
	}
}

// TestPanicsAreContained: a panic in one subscription's work dead-letters
// that subscription's delivery with the reason, and the event's other
// subscriptions get theirs; a panic in an event's own work rejects that
// event with the reason, and the other events of the batch are matched.
func TestPanicsAreContained(t *testing.T) {
	m := testMatcher(t, testSub("acme", "a", "order.*"), testSub("acme", "b", "order.*"), testSub("globex", "g", "order.*"))
	m.Fault = func(ev *record.Event, e *index.Entry) {
		switch {
		case ev.Type == "order.poison" && e == nil:
			panic("poison event")
		case ev.Type == "order.bad" && e != nil && e.Sub.ID == "b":
			panic("poison subscription")
		}
	}
	events := []*record.Event{
		{ID: "e1", Tenant: "acme", Type: "order.bad", OccurredAt: occurred, Data: `{}`},
		{ID: "e2", Tenant: "acme", Type: "order.poison", OccurredAt: occurred, Data: `{}`},
		{ID: "e3", Tenant: "globex", Type: "order.created", OccurredAt: occurred, Data: `{}`},
	}
	recs := make([]*kgo.Record, len(events))
	for i, ev := range events {
		recs[i] = &kgo.Record{Key: []byte(ev.ID), Value: encodeEvent(t, m.Codecs, ev)}
	}
	out := m.ProcessBatch(recs)

	got := outcomes(t, m, out[0])
	if got["a"] != "delivered" || !strings.Contains(got["b"], "dead-lettered: the matcher panicked building this delivery: poison subscription") {
		t.Errorf("event with a panicking subscription: %v", got)
	}
	if len(out[1]) != 1 || out[1][0].Topic != m.Topics.IngestRejected ||
		!strings.Contains(string(out[1][0].Headers[0].Value), "the matcher panicked on this event: poison event") {
		t.Errorf("panicking event: got %d records, want it rejected with the reason", len(out[1]))
	}
	if got := outcomes(t, m, out[2]); len(got) != 1 || got["g"] != "delivered" {
		t.Errorf("another tenant's event after the panics: %v", got)
	}
}

// TestLargestEventFits builds the largest delivery an accepted event can
// yield: a 1 MiB body (the API's limit) of characters JSON encoders like
// to escape, every envelope field at its longest, the largest metadata
// ingest accepts, derived fields up to condition.MaxDerivedBytes and a
// URL of the longest length. It must be delivered, within
// match.MaxDeliveryBytes, in every payload mode.
func TestLargestEventFits(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	sub := testSub("acme", "sub_"+long("s", 60), "*")
	sub.URL = "https://example.com/" + long("u", 2048-len("https://example.com/"))
	sub.Metadata = map[string]string{}
	for i := range 16 {
		sub.Metadata[fmt.Sprintf("k%02d%s", i, long("k", 120))] = long("<", 170) // 6 bytes each as JSON: ~16 KiB
	}
	for i := range 20 {
		sub.Derive = append(sub.Derive, record.Derive{
			Field:      fmt.Sprintf("data.d%d", i),
			Expression: `'` + long("x", condition.MaxDerivedBytes/20-16) + `'`,
		})
	}
	changed := *sub
	changed.ID, changed.Payload = "sub_changed", "changed"
	m := testMatcher(t, sub, &changed)
	// What POST /v1/events accepts at most: 1 MiB of body around data.
	envelope := `{"id":"` + long("i", 128) + `","type":"` + long("t", 128) + `","subject":"` + long("j", 128) +
		`","source":"` + long("o", 256) + `","changed":["s"],"data":{"s":""}}`
	data := `{"s":"` + long("<", event1MiB-len(envelope)) + `"}`
	ev := &record.Event{ID: long("i", 128), Tenant: "acme", Type: long("t", 128), Subject: long("j", 128), Source: long("o", 256),
		OccurredAt: occurred, Data: data, Changed: []string{"s"}}
	recs := m.Process(&kgo.Record{Value: encodeEvent(t, m.Codecs, ev)})
	got := outcomes(t, m, recs)
	if got[sub.ID] != "delivered" || got[changed.ID] != "delivered" {
		t.Fatalf("largest event: %.300v", got)
	}
	for _, r := range recs {
		if len(r.Value) > match.MaxDeliveryBytes {
			t.Errorf("delivery of %d bytes, more than %d", len(r.Value), match.MaxDeliveryBytes)
		}
		var d record.Delivery
		if err := m.Codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if !strings.Contains(d.Payload, fmt.Sprintf(`"d%d":"xxx`, i)) {
				t.Errorf("%s: derived field d%d missing", d.SubscriptionID, i)
			}
		}
	}
}

// event1MiB is ingest's body limit (event.MaxBodyBytes, in another module).
const event1MiB = 1 << 20
