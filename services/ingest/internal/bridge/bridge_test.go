package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

// running is the bridge consuming the JSON ingest topic of a fresh topic
// set on the real broker, as main runs it.
type running struct {
	cfg      kafka.Config
	codecs   *record.Codecs
	producer *kgo.Client
}

func runBridge(t *testing.T) *running {
	t.Helper()
	cfg := testinfra.Kafka(t)
	rdb := testinfra.Redis(t)
	log := testinfra.Logger()
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	producer, err := kafka.NewClient(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	br := &Bridge{
		Producer: producer, Codecs: codecs, Topics: cfg.Topics, Log: log, Now: time.Now,
		Events: idempotency.New(rdb, cfg.Topics.Keys().EventIDs(), time.Hour),
	}
	consumer, err := kafka.NewConsumer(cfg, cfg.Topics.Prefix+"ingest", []string{cfg.Topics.IngestJSON}, br.Handle, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- consumer.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	return &running{cfg: cfg, codecs: codecs, producer: producer}
}

// send writes records to the JSON ingest topic.
func (b *running) send(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	for _, r := range recs {
		r.Topic = b.cfg.Topics.IngestJSON
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (b *running) events(t *testing.T, n int) map[string]record.Event {
	t.Helper()
	out := map[string]record.Event{}
	for _, r := range testinfra.WaitRecords(t, b.cfg, b.cfg.Topics.Events, n, 30*time.Second) {
		var ev record.Event
		if err := b.codecs.Event.Unmarshal(r.Value, &ev); err != nil {
			t.Fatalf("event record: %v", err)
		}
		if string(r.Key) != ev.Subject {
			t.Errorf("event keyed %q, want its subject %q", r.Key, ev.Subject)
		}
		if _, seen := out[ev.Subject]; seen {
			t.Errorf("subject %s written twice", ev.Subject)
		}
		out[ev.Subject] = ev
	}
	return out
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestBridge(t *testing.T) {
	b := runBridge(t)
	tenant := func(v string) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: wire.HeaderTenant, Value: []byte(v)}}
	}
	valid := []struct {
		name, value string
		headers     []kgo.RecordHeader
		tenant      string
	}{
		{"tenant header", `{"type":"order.created","subject":"s-header","data":{"id":1}}`, tenant("acme"), "acme"},
		{"tenant field", `{"type":"order.created","subject":"s-field","tenant":"globex","data":{"id":2}}`, nil, "globex"},
		{"field wins over header", `{"type":"order.created","subject":"s-both","tenant":"globex","data":{}}`, tenant("acme"), "globex"},
		{"producer id", `{"id":"ord-9:paid","type":"order.paid","subject":"s-id","data":{"id":9}}`, tenant("acme"), "acme"},
		{"update with previous", `{"type":"order.updated","subject":"s-prev","data":{"s":"b"},"changed":["s"],"previous":{"s":"a"}}`, tenant("acme"), "acme"},
	}
	invalid := []struct {
		name, value string
		field       string
	}{
		{"malformed JSON", `{"type":`, ""},
		{"missing type", `{"subject":"x","data":{}}`, "type"},
		{"data not an object", `{"type":"a","data":[1]}`, "data"},
		{"unknown field", `{"type":"a","data":{},"colour":1}`, "colour"},
		{"no tenant", `{"type":"a","data":{}}`, "tenant"},
		{"array", `[{"type":"a","data":{}}]`, ""},
		{"empty value", ``, ""},
		{"bad time", `{"type":"a","data":{},"occurred_at":"soon"}`, "occurred_at"},
	}

	var recs []*kgo.Record
	for i, v := range valid {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("v%d", i)), Value: []byte(v.value), Headers: v.headers})
	}
	for i, v := range invalid {
		h := tenant("acme")
		if v.field == "tenant" {
			h = []kgo.RecordHeader{{Key: "x-origin", Value: []byte("test")}}
		}
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("i%d", i)), Value: []byte(v.value), Headers: h})
	}
	b.send(t, recs...)

	events := b.events(t, len(valid))
	rejected := testinfra.WaitRecords(t, b.cfg, b.cfg.Topics.IngestRejected, len(invalid), 30*time.Second)
	if len(events)+len(rejected) != len(recs) {
		t.Fatalf("%d records in, %d events and %d rejected out", len(recs), len(events), len(rejected))
	}

	t.Run("valid records become events", func(t *testing.T) {
		for _, v := range valid {
			t.Run(v.name, func(t *testing.T) {
				var in struct{ Subject string }
				_ = json.Unmarshal([]byte(v.value), &in)
				ev, ok := events[in.Subject]
				if !ok {
					t.Fatalf("no event for subject %s", in.Subject)
				}
				if ev.Tenant != v.tenant || ev.ID == "" || ev.ReceivedAt.IsZero() || !json.Valid([]byte(ev.Data)) {
					t.Errorf("event %+v", ev)
				}
			})
		}
		if ev := events["s-id"]; ev.ID != "ord-9:paid" {
			t.Errorf("producer id became %q", ev.ID)
		}
		if ev := events["s-prev"]; ev.Previous == nil || *ev.Previous != `{"s":"a"}` || len(ev.Changed) != 1 {
			t.Errorf("update event %+v", ev)
		}
	})

	t.Run("invalid records are rejected with the reason", func(t *testing.T) {
		byKey := map[string]*kgo.Record{}
		for _, r := range rejected {
			byKey[string(r.Key)] = r
		}
		for i, v := range invalid {
			t.Run(v.name, func(t *testing.T) {
				r, ok := byKey[fmt.Sprintf("i%d", i)]
				if !ok {
					t.Fatal("not on the rejected topic")
				}
				if string(r.Value) != v.value {
					t.Errorf("value %q, want the original %q", r.Value, v.value)
				}
				// One line of text, the same format as every diverted
				// record's (wire.Divert): the first problem names its field.
				reason, ok := header(r, wire.HeaderError)
				want := "invalid event: "
				if v.field != "" {
					want += v.field + ": "
				}
				if !ok || !strings.HasPrefix(reason, want) || len(reason) == len(want) || strings.Contains(reason, "\n") {
					t.Fatalf("%s header %q, want a line starting %q", wire.HeaderError, reason, want)
				}
				if src, _ := header(r, wire.HeaderSource); !strings.HasPrefix(src, b.cfg.Topics.IngestJSON+"/") {
					t.Errorf("%s header %q", wire.HeaderSource, src)
				}
				if v.field == "tenant" {
					if origin, _ := header(r, "x-origin"); origin != "test" {
						t.Error("the original headers are not kept")
					}
				}
			})
		}
	})

	t.Run("a repeated producer id is written once", func(t *testing.T) {
		// One key, so one partition, handled in order: once the last event
		// is out, the repeat before it has been handled.
		key := []byte("one-partition")
		b.send(t,
			&kgo.Record{Key: key, Value: []byte(`{"id":"ord-9:paid","type":"order.paid","subject":"s-id-again","data":{}}`), Headers: tenant("acme")},
			&kgo.Record{Key: key, Value: []byte(`{"id":"ord-9:paid","type":"order.paid","subject":"s-id-globex","data":{}}`), Headers: tenant("globex")},
			&kgo.Record{Key: key, Value: []byte(`{"type":"a","subject":"s-after","data":{}}`), Headers: tenant("acme")},
		)
		events := b.events(t, len(valid)+2)
		if _, ok := events["s-id-again"]; ok {
			t.Error("the repeated id was written again")
		}
		if _, ok := events["s-id-globex"]; !ok {
			t.Error("another tenant's event with the same id was dropped")
		}
		if _, ok := events["s-after"]; !ok {
			t.Error("the event after the repeat is missing")
		}
		if got := len(testinfra.Records(t, b.cfg, b.cfg.Topics.IngestRejected)); got != len(invalid) {
			t.Errorf("%d rejected records, want %d", got, len(invalid))
		}
	})
}
