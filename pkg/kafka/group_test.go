package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

// TestGroupProduceSync has many callers produce through one Group at once,
// one of them a record too large for the client, and checks that each
// gets the results of its own records in order, the oversized one failing
// alone, and that every other record is in the topic exactly once.
func TestGroupProduceSync(t *testing.T) {
	cfg := testinfra.Kafka(t)
	cl, err := kafka.NewClient(cfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	g := kafka.NewGroup(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const callers, perCall, tooBig = 64, 3, 17
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for c := range callers {
		wg.Go(func() {
			recs := make([]*kgo.Record, perCall)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: cfg.Topics.Events, Key: fmt.Appendf(nil, "k%d", c), Value: fmt.Appendf(nil, "%d/%d", c, i)}
			}
			if c == tooBig {
				recs[1].Value = bytes.Repeat([]byte("x"), wire.MaxRecordBytes+1)
			}
			res := g.ProduceSync(ctx, recs...)
			if len(res) != perCall {
				errs[c] = fmt.Errorf("%d results for %d records", len(res), perCall)
				return
			}
			for i, r := range res {
				switch {
				case r.Record != recs[i]:
					errs[c] = fmt.Errorf("result %d is of another record: %q", i, r.Record.Value)
				case c == tooBig && i == 1:
					if !errors.Is(r.Err, kerr.MessageTooLarge) {
						errs[c] = fmt.Errorf("oversized record: err %v, want MessageTooLarge", r.Err)
					}
				case r.Err != nil:
					errs[c] = fmt.Errorf("record %d: %w", i, r.Err)
				}
			}
		})
	}
	wg.Wait()
	for c, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", c, err)
		}
	}
	if g.ProduceSync(ctx) != nil {
		t.Error("no records: want no results")
	}

	got := map[string]int{}
	for _, r := range testinfra.WaitRecords(t, cfg, cfg.Topics.Events, callers*perCall-1, 30*time.Second) {
		got[string(r.Value)]++
	}
	for c := range callers {
		for i := range perCall {
			if c == tooBig && i == 1 {
				continue
			}
			if n := got[fmt.Sprintf("%d/%d", c, i)]; n != 1 {
				t.Errorf("record %d/%d is in the topic %d times, want once", c, i, n)
			}
		}
	}
	if len(got) != callers*perCall-1 {
		t.Errorf("%d distinct records in the topic, want %d", len(got), callers*perCall-1)
	}
}

// TestGroupStalledSendHandsOn has a call stall (its topic does not exist,
// and the client never gives up on that) and checks that a call made
// after it is still produced, once GroupHandOff has passed, and that the
// stalled call gets its own error when its context ends.
func TestGroupStalledSendHandsOn(t *testing.T) {
	cfg := testinfra.Kafka(t)
	buffered := make(chan string, 8)
	cl, err := kafka.NewClient(cfg, testinfra.Logger(), kgo.UnknownTopicRetries(-1),
		kgo.WithHooks(bufferedHook(func(r *kgo.Record) { buffered <- r.Topic })))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	g := kafka.NewGroup(cl)

	missing := cfg.Topics.Prefix + "no-such-topic"
	stallCtx, unstall := context.WithCancel(context.Background())
	defer unstall()
	stalled := make(chan error, 1)
	go func() {
		stalled <- g.ProduceSync(stallCtx, &kgo.Record{Topic: missing, Value: []byte("stuck"), Context: stallCtx}).FirstErr()
	}()
	if topic := <-buffered; topic != missing { // the stalled call holds the turn
		t.Fatalf("first record buffered is for %s", topic)
	}

	after := make(chan error, 1)
	go func() {
		after <- g.ProduceSync(context.Background(), &kgo.Record{Topic: cfg.Topics.Events, Value: []byte("after")}).FirstErr()
	}()
	select {
	case err := <-after:
		if err != nil {
			t.Fatalf("the call after a stalled one: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the call after a stalled one waits for it")
	}
	select {
	case err := <-stalled:
		t.Fatalf("the stalled call returned first (%v): the test proved nothing", err)
	default:
	}
	unstall()
	if err := <-stalled; err == nil {
		t.Fatal("the stalled call: no error after its context ended")
	}
}

// bufferedHook calls its function for each record the client buffers.
type bufferedHook func(*kgo.Record)

func (h bufferedHook) OnProduceRecordBuffered(r *kgo.Record) { h(r) }
