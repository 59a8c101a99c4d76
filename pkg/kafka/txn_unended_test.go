package kafka_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

// TestTransactorUnendedIsFatal: a transaction the broker lets the producer
// neither commit nor abort leaves the producer inside it, so every later
// transaction failed to begin and the retry service released nothing
// until it was restarted by hand (found by make test-faults when the
// broker was killed). The transactor must report it as fatal, so that the
// service exits and its restart finishes the transaction. An in-process
// broker (kfake) refuses the EndTxn requests.
func TestTransactorUnendedIsFatal(t *testing.T) {
	const topic = "p.deliveries"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var refuse atomic.Bool
	refuse.Store(true)
	cluster.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		resp := req.(*kmsg.EndTxnRequest).ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil, true
	})
	cfg := kafka.Config{Brokers: cluster.ListenAddrs(), ClientID: "test", Topics: wire.NewTopics("p.")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	noop := func(context.Context, kafka.Batch) error { return nil }
	txn, err := kafka.NewTransactor(ctx, cfg, newConsumer(t, cfg, "g", []string{topic}, noop), "unended", testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()

	err = txn.Commit(ctx, []*kgo.Record{{Topic: topic, Value: []byte("x")}})
	if err == nil {
		t.Fatal("a transaction committed though the broker refused to end it")
	}
	select {
	case <-txn.Fatal():
	case <-time.After(5 * time.Second):
		t.Fatalf("Fatal not closed after a transaction could not be ended (%v)", err)
	}
	if e := txn.Err(); e == nil || !strings.Contains(e.Error(), "could not be ended") {
		t.Errorf("Err = %v, want one saying the transaction could not be ended", e)
	}
	// Later calls fail at once with that reason rather than trying to
	// begin another transaction inside the open one.
	refuse.Store(false)
	if err := txn.Commit(ctx, []*kgo.Record{{Topic: topic, Value: []byte("y")}}); err == nil || !strings.Contains(err.Error(), "could not be ended") {
		t.Errorf("a later commit: %v, want the fatal error", err)
	}
}
