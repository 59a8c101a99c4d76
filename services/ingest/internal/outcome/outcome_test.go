package outcome_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/services/ingest/internal/outcome"
)

// TestWatcherHandsEachCallerItsAttempt: attempts written after Watch reach
// the caller waiting for their delivery, whatever partition the sender's
// producer put them in; other deliveries' attempts reach nobody.
func TestWatcherHandsEachCallerItsAttempt(t *testing.T) {
	cfg := testinfra.Kafka(t)
	testinfra.WaitTopic(t, cfg, cfg.Topics.DeliveryLog)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	w, err := outcome.New(cfg, codecs, testinfra.Logger(), 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	producer, err := kafka.NewClient(cfg, testinfra.Logger()) // as the sender produces
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	write := func(id string, status int32) {
		t.Helper()
		v, err := codecs.Attempt.Marshal(&record.DeliveryAttempt{DeliveryID: id, Tenant: "acme", Attempt: 1, StatusCode: status, Outcome: record.OutcomeDelivered, StartedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topics.DeliveryLog, Key: []byte(id), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	write("dlv_before", 500) // before anyone waits: never handed out

	ids := []string{"dlv_a", "dlv_b", "dlv_c", "dlv_d"} // spread over the partitions
	waits := map[string]*outcome.Wait{}
	for i, id := range ids {
		tenant := []string{"acme", "acme", "globex", "globex"}[i]
		wt, err := w.Watch(ctx, tenant, id)
		if err != nil {
			t.Fatalf("watch %s: %v", id, err)
		}
		waits[id] = wt
	}
	if _, err := w.Watch(ctx, "initech", "dlv_e"); !errors.Is(err, outcome.ErrBusy) {
		t.Errorf("a fifth caller: %v, want ErrBusy (at most 4)", err)
	}
	for i, id := range ids {
		write("dlv_unrelated", 418)
		write(id, int32(200+i))
	}
	for i, id := range ids {
		wctx, stop := context.WithTimeout(ctx, 30*time.Second)
		a, ok := waits[id].Attempt(wctx)
		stop()
		if !ok || a.DeliveryID != id || a.StatusCode != int32(200+i) {
			t.Errorf("%s: got %+v (%v), want its own attempt", id, a, ok)
		}
		waits[id].Close()
	}
	if w.Waiting() != 0 {
		t.Errorf("%d still waiting after Close", w.Waiting())
	}
	// A new wait after all closed: the partition is tailed again from its end.
	wt, err := w.Watch(ctx, "acme", "dlv_before")
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Close()
	short, stop := context.WithTimeout(ctx, 2*time.Second)
	defer stop()
	if a, ok := wt.Attempt(short); ok {
		t.Errorf("an attempt written before the wait was handed out: %+v", a)
	}
}

func TestWatcherLimitsEachTenant(t *testing.T) {
	cfg := testinfra.Kafka(t)
	testinfra.WaitTopic(t, cfg, cfg.Topics.DeliveryLog)
	codecs, _ := record.LoadCodecs()
	w, err := outcome.New(cfg, codecs, testinfra.Logger(), 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	first, err := w.Watch(ctx, "acme", "dlv_1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Watch(ctx, "acme", "dlv_2"); !errors.Is(err, outcome.ErrBusy) {
		t.Errorf("acme's second caller: %v, want ErrBusy", err)
	}
	other, err := w.Watch(ctx, "globex", "dlv_3")
	if err != nil {
		t.Fatalf("another tenant is not held back: %v", err)
	}
	other.Close()
	first.Close()
	again, err := w.Watch(ctx, "acme", "dlv_2")
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}
