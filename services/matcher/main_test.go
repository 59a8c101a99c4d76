package main

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
)

func TestReadiness(t *testing.T) {
	tests := []struct {
		name     string
		view     error
		matching bool
		want     error
	}{
		{"view catching up", subscription.ErrNotReady, false, subscription.ErrNotReady},
		{"view catching up, session started", subscription.ErrNotReady, true, subscription.ErrNotReady},
		{"view caught up, no session yet", nil, false, errNotMatching},
		{"matching", nil, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var matching atomic.Bool
			matching.Store(tc.matching)
			if err := readiness(func() error { return tc.view }, &matching)(); !errors.Is(err, tc.want) {
				t.Errorf("ready() = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestRun starts the matcher as main does, waits for /readyz, and follows
// one subscription and one event through to a committed delivery.
func TestRun(t *testing.T) {
	kcfg := testinfra.Kafka(t)
	sch, err := backoff.Parse("1s,2s") // the tiers testinfra created
	if err != nil {
		t.Fatal(err)
	}
	cfg := settings{
		Base:          service.Base{Name: "matcher", LogLevel: "warn", OpsAddr: testinfra.FreeAddr(t), Kafka: kcfg, Schedule: sch},
		Group:         kcfg.Topics.Prefix + "matcher",
		TransactionID: kcfg.Topics.Prefix + "matcher-1",
	}
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(kcfg, testinfra.Logger(),
		kgo.ConsumeTopics(kcfg.Topics.Deliveries), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	sub := &record.Subscription{ID: "sub_1", Tenant: "acme", URL: "https://example.com/hook", EventTypes: []string{"order.*"}, Payload: "full", Enabled: true}
	produceValue(ctx, t, cl, kcfg.Topics.Subscriptions, sub.ID, mustMarshal(t, codecs.Subscription.Marshal, sub))

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, cfg, testinfra.Logger()) }()
	waitReady(ctx, t, "http://"+cfg.OpsAddr+"/readyz")

	ev := &record.Event{ID: "evt_1", Tenant: "acme", Type: "order.created", Subject: "ord_1", OccurredAt: time.Now(), Data: `{"id":"ord_1"}`}
	produceValue(ctx, t, cl, kcfg.Topics.Events, ev.Subject, mustMarshal(t, codecs.Event.Marshal, ev))
	fetches := cl.PollRecords(ctx, 1)
	if ctx.Err() != nil {
		t.Fatal("no delivery within 45 s")
	}
	var d record.Delivery
	if err := codecs.Delivery.Unmarshal(fetches.Records()[0].Value, &d); err != nil {
		t.Fatal(err)
	}
	if d.ID != id.Delivery(ev.ID, sub.ID) || d.URL != sub.URL {
		t.Errorf("delivery %+v, want %s to %s", d, id.Delivery(ev.ID, sub.ID), sub.URL)
	}

	stop()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func mustMarshal[T any](t *testing.T, marshal func(*T) ([]byte, error), v *T) []byte {
	t.Helper()
	b, err := marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func produceValue(ctx context.Context, t *testing.T, cl *kgo.Client, topic, key string, value []byte) {
	t.Helper()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	last := "no answer"
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not ready: %s", url, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
