package match

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// TestImmediateMark: every delivery of an event ingest wrote in immediate
// mode carries the mark (wire.HeaderImmediate), so that the sender reads
// its claim; a delivery of any other event does not, and costs no read.
// A redelivery is the pipeline's own: not marked, whatever its record.
func TestImmediateMark(t *testing.T) {
	m := testMatcher(t, testSub("acme", "sub_a", "order.*"), testSub("acme", "sub_b", "*"), testSub("globex", "sub_c", "*"))
	ev := &record.Event{ID: "evt_1", Tenant: "acme", Type: "order.created", Subject: "ord_1", OccurredAt: occurred,
		ReceivedAt: occurred, Data: `{"total":42}`, Changed: []string{}}
	event := func(topic string, immediate bool, headers ...kgo.RecordHeader) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(ev.Subject), Value: encodeEvent(t, m.Codecs, ev), Headers: headers}
		if immediate {
			wire.MarkImmediate(r)
		}
		return r
	}
	tests := []struct {
		name   string
		rec    *kgo.Record
		n      int // deliveries
		marked bool
	}{
		{name: "immediate mode", rec: event(m.Topics.Events, true), n: 2, marked: true},
		{name: "queue mode", rec: event(m.Topics.Events, false), n: 2},
		{name: "redelivery", rec: event(m.Topics.Redeliveries, true, kgo.RecordHeader{Key: wire.HeaderSubscription, Value: []byte("sub_a")}), n: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := m.Process(tc.rec)
			if len(out) != tc.n {
				t.Fatalf("%d records, want %d deliveries", len(out), tc.n)
			}
			for _, r := range out {
				if r.Topic != m.Topics.Deliveries {
					t.Fatalf("a record for %s, want %s", r.Topic, m.Topics.Deliveries)
				}
				if got := wire.Immediate(r); got != tc.marked {
					t.Errorf("delivery to %s marked immediate %v, want %v (headers %q)", r.Key, got, tc.marked, r.Headers)
				}
			}
		})
	}
}
