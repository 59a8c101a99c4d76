package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestTransactorCommitsOffsetsWithoutRecords: a batch that produced
// nothing (the matcher's events that match no subscription) still has its
// offsets committed, without a transaction.
func TestTransactorCommitsOffsetsWithoutRecords(t *testing.T) {
	cfg := testinfra.Kafka(t)
	in, group := cfg.Topics.Events, cfg.Topics.Prefix+"empty"
	produced := produce(t, client(t, cfg), in, "e", 40)
	var tx *kafka.Transactor
	c := newConsumer(t, cfg, group, []string{in}, func(ctx context.Context, b kafka.Batch) error {
		return tx.Commit(ctx, nil, b.Records[len(b.Records)-1])
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tx, err := kafka.NewTransactor(ctx, cfg, c, cfg.Topics.Prefix+"empty-1", testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	stop := run(t, c)
	defer stop()
	adm := kadm.NewClient(client(t, cfg))
	waitCommitted(t, adm, group, in, ends(produced), 30*time.Second)
	if err := tx.Commit(ctx, nil); err != nil {
		t.Errorf("a commit of nothing: %v", err)
	}
}

// endTxns records when a client sends EndTxn: one per transaction.
type endTxns struct {
	mu sync.Mutex
	at []time.Time
}

func (e *endTxns) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key == kmsg.EndTxn.Int16() {
		e.mu.Lock()
		e.at = append(e.at, time.Now())
		e.mu.Unlock()
	}
}

// TestTransactorPacesASteadyLoad: callers that commit without pause
// share transactions that begin TxnInterval apart, instead of running
// them back to back (the broker's work is per transaction).
func TestTransactorPacesASteadyLoad(t *testing.T) {
	cfg := testinfra.Kafka(t)
	noop := func(context.Context, kafka.Batch) error { return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends := &endTxns{}
	tx, err := kafka.NewTransactor(ctx, cfg, newConsumer(t, cfg, cfg.Topics.Prefix+"paced", []string{cfg.Topics.Events}, noop),
		cfg.Topics.Prefix+"paced-1", testinfra.Logger(), kgo.WithHooks(ends))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()

	const callers = 8
	var calls atomic.Int64
	deadline := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := tx.Commit(ctx, []*kgo.Record{{Topic: cfg.Topics.Deliveries, Value: []byte("x")}}); err != nil {
					t.Errorf("commit: %v", err)
					return
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()

	ends.mu.Lock()
	at := ends.at
	ends.mu.Unlock()
	if len(at) < 10 {
		t.Fatalf("%d transactions in a second of steady calls", len(at))
	}
	// The first few come before the calls' average gap has fallen.
	gaps := make([]time.Duration, 0, len(at))
	for i := 5; i < len(at); i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]))
	}
	slices.Sort(gaps)
	median := gaps[len(gaps)/2]
	t.Logf("%d calls in %d transactions; median time between transactions %s", calls.Load(), len(at), median)
	if median < kafka.TxnInterval-2*time.Millisecond {
		t.Errorf("median time between transactions %s, want about %s or more: not paced", median, kafka.TxnInterval)
	}
	if n := calls.Load(); n < int64(2*len(at)) {
		t.Errorf("%d calls in %d transactions: calls did not share them", n, len(at))
	}
}

// TestGatherJoinsRecordsFetchedWhileTheTransactionWaits: under a steady
// stream over several partitions (so the transactions are paced), a
// handler that calls Gather before committing takes into its batch the
// records fetched while the next transaction waits its turn, rather than
// leaving them for the transaction after; and every record is still
// handled exactly once, in order, with its offset committed. The batch's
// Fetched stays a moment by which all its records, those gathered too,
// had been written.
func TestGatherJoinsRecordsFetchedWhileTheTransactionWaits(t *testing.T) {
	cfg := testinfra.Kafka(t)
	in, group := cfg.Topics.Events, cfg.Topics.Prefix+"gather"
	var (
		tx       *kafka.Transactor
		mu       sync.Mutex
		handled  = map[int32][]int64{}
		batches  int
		gathered int // batches that Gather extended
		late     []string
	)
	c := newConsumer(t, cfg, group, []string{in}, func(ctx context.Context, b kafka.Batch) error {
		n := len(b.Records)
		b = tx.Gather(ctx, b)
		for _, r := range b.Records {
			// Produced (and timed) on this machine before it was fetched.
			if r.Timestamp.After(b.Fetched) {
				mu.Lock()
				late = append(late, fmt.Sprintf("offset %d written at %v, batch fetched by %v", r.Offset, r.Timestamp, b.Fetched))
				mu.Unlock()
			}
		}
		last := b.Records[len(b.Records)-1]
		if err := tx.Commit(ctx, []*kgo.Record{{Topic: cfg.Topics.Deliveries, Value: last.Value}}, last); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		batches++
		if len(b.Records) > n {
			gathered++
		}
		for _, r := range b.Records {
			handled[r.Partition] = append(handled[r.Partition], r.Offset)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := kafka.NewTransactor(ctx, cfg, c, cfg.Topics.Prefix+"gather-1", testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	stop := run(t, c)
	defer stop()

	// A steady stream: a record every millisecond for 1.5 s, each
	// produced on its own, over a dozen subjects (so several partitions).
	cl := client(t, cfg)
	var (
		pmu      sync.Mutex
		produced []pos
	)
	for i := range 1500 {
		rec := &kgo.Record{Topic: in, Key: fmt.Appendf(nil, "subject-%d", i%12), Value: fmt.Appendf(nil, "%d", i)}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			pmu.Lock()
			produced = append(produced, pos{r.Partition, r.Offset})
			pmu.Unlock()
		})
		time.Sleep(time.Millisecond)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := ends(produced)
	waitCommitted(t, kadm.NewClient(cl), group, in, want, 30*time.Second)

	mu.Lock()
	defer mu.Unlock()
	if len(want) < 2 {
		t.Fatalf("the stream went to %d partitions, want several", len(want))
	}
	for p, end := range want {
		offsets := handled[p]
		if int64(len(offsets)) != end {
			t.Fatalf("partition %d: handled %d records, want %d", p, len(offsets), end)
		}
		for i, o := range offsets {
			if o != int64(i) {
				t.Fatalf("partition %d: record %d handled has offset %d: out of order, lost or twice", p, i, o)
			}
		}
	}
	if len(late) > 0 {
		t.Errorf("%d records written after their batch's Fetched, the first: %s", len(late), late[0])
	}
	t.Logf("%d records in %d batches, %d of them extended by Gather", 1500, batches, gathered)
	if gathered == 0 {
		t.Errorf("Gather extended none of %d batches of a steady stream", batches)
	}
}
