package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestTransactorFencedIsFatal checks that a transactor fenced by a newer
// instance with the same transactional id reports it on Fatal, so that its
// service exits instead of retrying forever, and never commits again.
func TestTransactorFencedIsFatal(t *testing.T) {
	cfg := testinfra.Kafka(t)
	noop := func(context.Context, kafka.Batch) error { return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	txnID := cfg.Topics.Prefix + "fenced"
	old, err := kafka.NewTransactor(ctx, cfg, newConsumer(t, cfg, cfg.Topics.Prefix+"g1", []string{cfg.Topics.Events}, noop), txnID, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	rec := func() []*kgo.Record { return []*kgo.Record{{Topic: cfg.Topics.Deliveries, Value: []byte("x")}} }
	if err := old.Commit(ctx, rec()); err != nil {
		t.Fatalf("first commit: %v", err)
	}
	if old.Err() != nil {
		t.Fatalf("Err before any fencing: %v", old.Err())
	}

	// A restarted instance with the same id fences the old one.
	newer, err := kafka.NewTransactor(ctx, cfg, newConsumer(t, cfg, cfg.Topics.Prefix+"g2", []string{cfg.Topics.Events}, noop), txnID, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Close()
	if err := old.Commit(ctx, rec()); err == nil {
		t.Fatal("a fenced transactor committed")
	}
	select {
	case <-old.Fatal():
	case <-time.After(5 * time.Second):
		t.Fatal("Fatal not closed after the transactor was fenced")
	}
	if err := old.Err(); !errors.Is(err, kerr.ProducerFenced) {
		t.Errorf("Err = %v, want producer fenced", err)
	}
	if err := old.Commit(ctx, rec()); err == nil {
		t.Error("a fenced transactor committed on a later call")
	}
	if err := newer.Commit(ctx, rec()); err != nil {
		t.Errorf("the newer instance cannot commit: %v", err)
	}
	select {
	case <-newer.Fatal():
		t.Errorf("the newer instance reports fatal: %v", newer.Err())
	default:
	}
}
