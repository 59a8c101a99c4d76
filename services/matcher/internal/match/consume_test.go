package match

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/match"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestConditionMatrix publishes subscriptions and events to the real
// broker, runs the matcher, and checks which deliveries come out of
// hookline.deliveries, read_committed: every condition leaf and group kind,
// nested fields, arrays, missing fields and type-aware comparisons.
func TestConditionMatrix(t *testing.T) {
	cfg := testinfra.Kafka(t)
	c := codecs(t)

	subs := []struct {
		id, condition string
		matches       []string // events, by name
	}{
		{"and", `{"all":[{"field":"data.status","op":"eq","value":"paid"},{"field":"data.total","op":"gte","value":100}]}`,
			[]string{"paid-de", "exact-100"}},
		{"or", `{"any":[{"field":"data.status","op":"eq","value":"refunded"},{"field":"data.tags","op":"contains","value":"vip"}]}`,
			[]string{"refund-at"}},
		{"not", `{"not":{"field":"data.status","op":"eq","value":"paid"}}`,
			[]string{"refund-at", "draft-strings", "empty"}},
		{"nested", `{"field":"data.customer.address.country","op":"eq","value":"DE"}`,
			[]string{"paid-de"}},
		{"array-index", `{"field":"data.items[0].sku","op":"prefix","value":"GIFT-"}`,
			[]string{"paid-de", "draft-strings"}}, // draft-strings: items is an object with key "0"
		{"array-contains", `{"field":"data.tags","op":"contains","value":"urgent"}`,
			[]string{"paid-de", "refund-at", "draft-strings"}}, // draft-strings: a substring of a string
		{"ne-matches-missing", `{"field":"data.status","op":"ne","value":"draft"}`,
			[]string{"paid-de", "refund-at", "empty", "exact-100"}},
		{"absent", `{"field":"data.coupon","op":"exists","value":false}`,
			[]string{"refund-at", "empty", "exact-100"}}, // draft-strings has coupon: null, which exists
		{"number-not-string", `{"field":"data.total","op":"eq","value":100}`,
			[]string{"exact-100"}},
		{"string-not-number", `{"field":"data.code","op":"eq","value":"1"}`,
			[]string{"paid-de"}},
		{"bool-not-string", `{"field":"data.gift","op":"eq","value":true}`,
			[]string{"paid-de"}},
		{"null-not-missing", `{"field":"data.deleted_at","op":"eq","value":null}`,
			[]string{"paid-de"}},
		{"in-case-sensitive", `{"field":"data.currency","op":"in","value":["EUR","USD"]}`,
			[]string{"paid-de", "draft-strings"}},
		{"regex", `{"field":"data.email","op":"regex","value":"@example\\.com$"}`,
			[]string{"paid-de"}},
		{"nested-groups", `{"all":[
			{"any":[{"field":"data.customer.address.country","op":"eq","value":"DE"},{"field":"data.customer.address.country","op":"eq","value":"AT"}]},
			{"not":{"any":[{"field":"data.test","op":"eq","value":true},{"field":"data.total","op":"lt","value":10}]}}]}`,
			[]string{"paid-de", "exact-100"}},
		{"no-condition", ``,
			[]string{"paid-de", "refund-at", "draft-strings", "empty", "exact-100"}},
	}
	events := map[string]string{
		"paid-de": `{"status":"paid","total":150,"currency":"EUR","customer":{"address":{"country":"DE"}},
			"items":[{"sku":"GIFT-1"},{"sku":"X"}],"tags":["urgent"],"coupon":"C1","gift":true,"deleted_at":null,
			"email":"a@example.com","code":"1"}`,
		"refund-at": `{"status":"refunded","total":5,"currency":"GBP","customer":{"address":{"country":"AT"}},
			"items":[],"tags":["vip","urgent"],"code":1,"gift":"true","email":"b@example.org"}`,
		"draft-strings": `{"status":"draft","total":"100","currency":"USD","customer":{"address":"DE"},
			"items":{"0":{"sku":"GIFT-9"}},"tags":"urgent","coupon":null,"deleted_at":"2025-01-01","email":null,"test":true}`,
		"empty": `{}`,
		"exact-100": `{"status":"paid","total":100,"currency":"usd","customer":{"address":{"country":"AT"}},
			"items":[{"sku":"gift-1"}],"tags":["URGENT"],"code":"01","gift":false,"email":"c@EXAMPLE.com","test":false}`,
	}

	// want holds the expected deliveries as "subscription event".
	want := map[string]bool{}
	var all []*record.Subscription
	for _, s := range subs {
		sub := testSub("acme", s.id, "order.*")
		if s.condition != "" {
			sub.Condition = ptr(s.condition)
		}
		all = append(all, sub)
		for _, ev := range s.matches {
			want[s.id+" "+ev] = true
		}
	}
	// A route and a payload mode, checked below, and subscriptions no event
	// of acme's order.* family may reach.
	all[len(all)-1].Routes = []record.Route{{Condition: `{"field":"data.currency","op":"eq","value":"EUR"}`, URL: "https://eu.example.com/hook"}}
	all[0].Payload = "changed"
	disabled := testSub("acme", "disabled", "order.*")
	disabled.Enabled = false
	all = append(all, testSub("acme", "invoices", "invoice.*"), testSub("globex", "other-tenant", "*"), disabled)

	produceSubscriptions(t, cfg, c, all)
	ix := startIndex(t, cfg, c)
	if ix.Len() != len(all)-1 {
		t.Fatalf("index holds %d subscriptions, want %d", ix.Len(), len(all)-1)
	}

	var recs []*kgo.Record
	for name, data := range events {
		ev := &record.Event{ID: "evt_" + name, Tenant: "acme", Type: "order.updated", Subject: "ord_" + name,
			OccurredAt: time.Now(), Data: data, Changed: []string{"status"}}
		recs = append(recs, &kgo.Record{Topic: cfg.Topics.Events, Key: []byte(ev.Subject), Value: encodeEvent(t, c, ev)})
	}
	produce(t, client(t, cfg), recs)

	m := &Matcher{Index: ix, Codecs: c, Topics: cfg.Topics, Now: time.Now}
	group := cfg.Topics.Prefix + "matcher"
	s := startSession(t, cfg, m, group, cfg.Topics.Prefix+"matcher-1")
	waitCommitted(t, cfg, group, 30*time.Second)
	s.stop(t)

	got := map[string]record.Delivery{}
	for _, d := range readDeliveries(t, cfg, c, kgo.ReadCommitted()) {
		key := d.SubscriptionID + " " + d.EventID[len("evt_"):]
		if _, dup := got[key]; dup {
			t.Errorf("delivery %s twice", key)
		}
		got[key] = d
		if d.ID != id.Delivery(d.EventID, d.SubscriptionID) {
			t.Errorf("%s: delivery id %s is not derived from the event and subscription", key, d.ID)
		}
	}
	for _, s := range subs {
		t.Run(s.id, func(t *testing.T) {
			for name := range events {
				key := s.id + " " + name
				if _, ok := got[key]; ok != want[key] {
					t.Errorf("event %s: delivered %v, want %v", name, ok, want[key])
				}
			}
		})
	}
	if len(got) != len(want) {
		t.Errorf("%d deliveries, want %d", len(got), len(want))
	}

	t.Run("route and payload", func(t *testing.T) {
		if d := got["no-condition paid-de"]; d.URL != "https://eu.example.com/hook" {
			t.Errorf("EUR event went to %q, want the route's URL", d.URL)
		}
		if d := got["no-condition empty"]; d.URL != "https://example.com/no-condition" {
			t.Errorf("event without currency went to %q, want the subscription URL", d.URL)
		}
		var body match.Body
		if err := json.Unmarshal([]byte(got["and paid-de"].Payload), &body); err != nil {
			t.Fatal(err)
		}
		if string(body.Data) != `{"id":"ord_paid-de","status":"paid"}` {
			t.Errorf("changed payload data %s, want only status and the id", body.Data)
		}
	})
}

// TestDerivedFieldsEndToEnd writes a subscription with derived fields to
// the subscriptions topic, as ingest does, runs the matcher as main wires
// it, and reads the committed deliveries: each body's data carries the
// derived values, the CEL fallback, and the default where an expression
// failed.
func TestDerivedFieldsEndToEnd(t *testing.T) {
	cfg := testinfra.Kafka(t)
	c := codecs(t)
	sub := testSub("acme", "derived", "order.*")
	sub.Derive = []record.Derive{
		{Field: "data.total_eur", Expression: "event.data.total_cents / 100.0"},
		{Field: "data.customer.name", Expression: `event.data.customer.?name.orValue("unknown")`},
		{Field: "data.region", Expression: "event.data.address.country.lowerAscii()", DefaultJSON: ptr(`"unknown"`)},
	}
	produceSubscriptions(t, cfg, c, []*record.Subscription{sub})
	ix := startIndex(t, cfg, c)

	events := map[string]string{ // event id -> data
		"evt_full":    `{"total_cents":1999,"customer":{"name":"Ann"},"address":{"country":"DE"}}`,
		"evt_partial": `{"total_cents":500,"customer":{}}`,
	}
	var recs []*kgo.Record
	for id, data := range events {
		ev := &record.Event{ID: id, Tenant: "acme", Type: "order.created", Subject: id, OccurredAt: time.Now(), Data: data}
		recs = append(recs, &kgo.Record{Topic: cfg.Topics.Events, Key: []byte(ev.Subject), Value: encodeEvent(t, c, ev)})
	}
	produce(t, client(t, cfg), recs)

	metrics := NewMetrics(prometheus.NewRegistry())
	m := &Matcher{Index: ix, Codecs: c, Topics: cfg.Topics, Now: time.Now, Metrics: metrics}
	group := cfg.Topics.Prefix + "matcher"
	s := startSession(t, cfg, m, group, cfg.Topics.Prefix+"matcher-1")
	waitCommitted(t, cfg, group, 30*time.Second)
	s.stop(t)

	want := map[string]string{
		"evt_full":    `{"address":{"country":"DE"},"customer":{"name":"Ann"},"region":"de","total_cents":1999,"total_eur":19.99}`,
		"evt_partial": `{"customer":{"name":"unknown"},"region":"unknown","total_cents":500,"total_eur":5}`,
	}
	got := readDeliveries(t, cfg, c, kgo.ReadCommitted())
	if len(got) != len(want) {
		t.Fatalf("%d deliveries, want %d", len(got), len(want))
	}
	for _, d := range got {
		var body match.Body
		if err := json.Unmarshal([]byte(d.Payload), &body); err != nil {
			t.Fatalf("%s: payload %s: %v", d.EventID, d.Payload, err)
		}
		if string(body.Data) != want[d.EventID] {
			t.Errorf("%s: data\n got %s\nwant %s", d.EventID, body.Data, want[d.EventID])
		}
	}
	if n := testutil.ToFloat64(metrics.DeriveFailures.WithLabelValues("default")); n != 1 {
		t.Errorf("%v derived fields fell back to their default, want 1", n)
	}
}

// TestRestartMidStream stops a matcher in the middle of a transaction,
// gracefully or by closing its client as a crash would, and starts another
// with the same group and transactional id: the committed deliveries hold
// every expected delivery id exactly once.
func TestRestartMidStream(t *testing.T) {
	tests := []struct {
		name string
		stop func(*session)
		// aborted: the stop leaves deliveries of an unfinished
		// transaction on the topic, which read_committed must hide.
		aborted bool
	}{
		{"graceful", func(s *session) { s.cancel() }, false},
		{"crash", func(s *session) {
			// What this transaction produced so far reaches the broker,
			// then the client dies with the transaction open.
			if err := s.txn.Producer().Flush(context.Background()); err != nil {
				panic(err)
			}
			s.kill()
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testinfra.Kafka(t)
			c := codecs(t)
			all := testSub("acme", "all", "order.*")
			even := testSub("acme", "even", "order.created")
			even.Condition = ptr(`{"field":"data.n","op":"in","value":[0,2,4,6,8]}`)
			big := testSub("acme", "big", "order.*")
			big.Condition = ptr(`{"all":[{"field":"data.total","op":"gte","value":50},{"not":{"field":"data.test","op":"eq","value":true}}]}`)
			produceSubscriptions(t, cfg, c, []*record.Subscription{all, even, big})
			ix := startIndex(t, cfg, c)

			// Events in produce requests of batchLen with one key, so that
			// they are one batch each, and the first matcher's small
			// fetches take about one batch per transaction.
			const n, batchLen = 120, 6
			want := map[string]bool{}
			producer := client(t, cfg)
			var batch []*kgo.Record
			for i := range n {
				ev := &record.Event{ID: fmt.Sprintf("evt_%03d", i), Tenant: "acme", Type: "order.created", Subject: fmt.Sprintf("ord_%d", i/batchLen),
					OccurredAt: time.Now(), Data: fmt.Sprintf(`{"n":%d,"total":%d,"test":%t}`, i%10, i, i%3 == 0)}
				batch = append(batch, &kgo.Record{Topic: cfg.Topics.Events, Key: []byte(ev.Subject), Value: encodeEvent(t, c, ev)})
				if len(batch) == batchLen {
					produce(t, producer, batch)
					batch = nil
				}
				want[id.Delivery(ev.ID, "all")] = true
				if i%2 == 0 {
					want[id.Delivery(ev.ID, "even")] = true
				}
				if i >= 50 && i%3 != 0 {
					want[id.Delivery(ev.ID, "big")] = true
				}
			}

			group, txnID := cfg.Topics.Prefix+"matcher", cfg.Topics.Prefix+"matcher-1"
			// The first matcher stops itself between Begin and End of a
			// transaction, in the middle of producing its deliveries: the
			// transaction holding its n/3rd event has produced one
			// delivery and is producing the next.
			var processed, producedAfter atomic.Int64
			started := make(chan *session, 1)
			m1 := &Matcher{Index: ix, Codecs: c, Topics: cfg.Topics, Now: func() time.Time {
				processed.Add(1)
				return time.Now()
			}}
			stopHook := onProduce(func() {
				if processed.Load() >= n/3 && producedAfter.Add(1) == 2 {
					tc.stop(<-started)
				}
			})
			first := startSession(t, cfg, m1, group, txnID, kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1), kgo.WithHooks(stopHook))
			started <- first
			select {
			case err := <-first.done:
				if err != nil {
					t.Fatalf("first matcher: %v", err)
				}
				first.done <- nil
			case <-time.After(30 * time.Second):
				t.Fatal("first matcher did not stop")
			}
			first.stop(t)
			done := committedNow(t, cfg, group)
			if done == 0 || done >= n {
				t.Fatalf("first matcher committed %d of %d events: not stopped mid-stream", done, n)
			}

			m2 := &Matcher{Index: ix, Codecs: c, Topics: cfg.Topics, Now: time.Now}
			second := startSession(t, cfg, m2, group, txnID)
			waitCommitted(t, cfg, group, 30*time.Second)
			second.stop(t)

			got := map[string]int{}
			for _, d := range readDeliveries(t, cfg, c, kgo.ReadCommitted()) {
				got[d.ID]++
			}
			raw := len(readDeliveries(t, cfg, c, kgo.ReadUncommitted()))
			if tc.aborted && raw <= len(want) {
				t.Errorf("%d deliveries read uncommitted, want more than the %d committed: the stop left no transaction to abort", raw, len(want))
			}
			var dups, missing, extra []string
			for id, k := range got {
				if k > 1 {
					dups = append(dups, id)
				}
				if !want[id] {
					extra = append(extra, id)
				}
			}
			for id := range want {
				if got[id] == 0 {
					missing = append(missing, id)
				}
			}
			slices.Sort(dups)
			if len(dups)+len(missing)+len(extra) > 0 {
				t.Errorf("after a restart at event %d of %d: %d duplicate, %d missing, %d unexpected delivery ids (duplicates: %v)",
					done, n, len(dups), len(missing), len(extra), dups)
			}
			if len(got) != len(want) {
				t.Errorf("%d distinct deliveries, want %d", len(got), len(want))
			}
		})
	}
}

// onProduce is a client hook calling f in the goroutine that produces a
// record, before the record is buffered.
type onProduce func()

func (f onProduce) OnProduceRecordBuffered(*kgo.Record) { f() }

// committedNow is how many events group has committed.
func committedNow(tb testing.TB, cfg kafka.Config, group string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := committed(ctx, kadm.NewClient(client(tb, cfg)), cfg, group)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
