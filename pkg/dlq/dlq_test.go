package dlq_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/dlq"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

func TestReplayPicksAndResets(t *testing.T) {
	cfg := testinfra.Kafka(t)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	letters := []struct {
		id, tenant, sub string
		at              time.Time
	}{
		{"dlv_1", "acme", "sub_a", base},
		{"dlv_2", "acme", "sub_a", base.Add(10 * time.Minute)},
		{"dlv_3", "acme", "sub_b", base.Add(20 * time.Minute)},
		{"dlv_4", "globex", "sub_a", base.Add(30 * time.Minute)}, // another tenant's
		{"dlv_2", "acme", "sub_a", base.Add(40 * time.Minute)},   // dead-lettered twice
		{"dlv_5", "acme", "sub_a", base.Add(50 * time.Minute)},   // by the matcher, without a body
	}
	for _, l := range letters {
		d := record.Delivery{ID: l.id, Tenant: l.tenant, SubscriptionID: l.sub, EventID: "evt", EventType: "a.b",
			URL: "https://x.example", Payload: "{}", Attempt: 8, LastStatus: 500, LastError: "HTTP 500"}
		if l.id == "dlv_5" {
			d.Payload, d.LastError = "", "the delivery is 3000000 bytes, more than the 2080768 a record may hold; its body is not kept"
		}
		v, err := codecs.Delivery.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		r := &kgo.Record{Topic: cfg.Topics.DLQ, Key: []byte(l.sub), Value: v, Timestamp: l.at}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		f    dlq.Filter
		want []string
	}{
		{"by delivery id", dlq.Filter{Tenant: "acme", DeliveryIDs: []string{"dlv_3"}}, []string{"dlv_3"}},
		{"all of a subscription, once each", dlq.Filter{Tenant: "acme", SubscriptionID: "sub_a"}, []string{"dlv_1", "dlv_2"}},
		{"time window", dlq.Filter{Tenant: "acme", SubscriptionID: "sub_a", Since: base.Add(5 * time.Minute), Until: base.Add(15 * time.Minute)}, []string{"dlv_2"}},
		{"another tenant's id is not found", dlq.Filter{Tenant: "acme", DeliveryIDs: []string{"dlv_4"}}, nil},
		{"within: only those subscriptions", dlq.Filter{Tenant: "acme", DeliveryIDs: []string{"dlv_1", "dlv_3"}, Within: []string{"sub_b"}}, []string{"dlv_3"}},
		{"a subscription outside within: nothing", dlq.Filter{Tenant: "acme", SubscriptionID: "sub_a", Within: []string{"sub_b"}}, nil},
		{"a dead letter without a body is not replayed", dlq.Filter{Tenant: "acme", DeliveryIDs: []string{"dlv_5"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dlq.Replay(ctx, cfg, codecs, cl, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("replayed %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := dlq.Replay(ctx, cfg, codecs, cl, dlq.Filter{Tenant: "acme"}); !errors.Is(err, dlq.ErrNoSelection) {
		t.Fatalf("empty filter: %v", err)
	}

	// The copies on the deliveries topic start afresh and say they are replays.
	rd, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(cfg.Topics.Deliveries), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var got []record.Delivery
	for len(got) < 5 && tctx.Err() == nil {
		rd.PollFetches(tctx).EachRecord(func(r *kgo.Record) {
			var d record.Delivery
			if err := codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
				t.Error(err)
			}
			got = append(got, d)
		})
	}
	if len(got) != 5 { // 1 + 2 + 1 + the one "within" picks
		t.Fatalf("%d replayed records on the deliveries topic, want 5", len(got))
	}
	for _, d := range got {
		if !d.Replay || d.Attempt != 0 || d.LastError != "" || d.Tenant != "acme" {
			t.Errorf("replayed record %+v", d)
		}
	}
}
