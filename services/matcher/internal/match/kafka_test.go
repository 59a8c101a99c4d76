package match

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
)

// The helpers here run the matcher against the real broker as main wires
// it: a subscriptions view feeding an index, and a consumer committing
// through a transactor.

// client is a plain client of the test cluster, closed with the test.
func client(tb testing.TB, cfg kafka.Config, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kafka.NewClient(cfg, testinfra.Logger(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// produceSubscriptions writes subs to the subscriptions topic.
func produceSubscriptions(tb testing.TB, cfg kafka.Config, c *record.Codecs, subs []*record.Subscription) {
	tb.Helper()
	recs := make([]*kgo.Record, len(subs))
	for i, s := range subs {
		v, err := c.Subscription.Marshal(s)
		if err != nil {
			tb.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: cfg.Topics.Subscriptions, Key: []byte(s.ID), Value: v}
	}
	produce(tb, client(tb, cfg), recs)
}

// produce writes recs and waits for every acknowledgement.
func produce(tb testing.TB, cl *kgo.Client, recs []*kgo.Record) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		tb.Fatalf("produce: %v", err)
	}
}

// startIndex runs a subscriptions view into a new index until the test
// ends and returns the index once the view has caught up.
func startIndex(tb testing.TB, cfg kafka.Config, c *record.Codecs) *index.Index {
	ix, _ := startView(tb, cfg, c)
	return ix
}

// startView is startIndex, with the view that fills the index; extra goes
// to the view's client.
func startView(tb testing.TB, cfg kafka.Config, c *record.Codecs, extra ...kgo.Opt) (*index.Index, *subscription.View) {
	tb.Helper()
	ix := index.New(testinfra.Logger())
	view := subscription.NewView(cfg.Topics, c, testinfra.Logger())
	view.OnChange(ix.Update)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx, cfg, extra...) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("view: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := view.WaitReady(wctx); err != nil {
		tb.Fatalf("subscriptions view not ready: %v", err)
	}
	return ix, view
}

// session is one matcher instance as main runs it: a consumer whose
// batches the matcher's Handler commits through a Transactor.
type session struct {
	consumer *kafka.Consumer
	txn      *kafka.Transactor
	cancel   context.CancelFunc
	done     chan error
	close    sync.Once
}

// startSession starts m consuming in group as transactionalID. extra
// options go after the matcher's own, on the consumer's client and on the
// transactional producer's.
func startSession(tb testing.TB, cfg kafka.Config, m *Matcher, group, transactionalID string, extra ...kgo.Opt) *session {
	tb.Helper()
	log := testinfra.Logger()
	s := &session{done: make(chan error, 1)}
	handle := m.Handler(func(ctx context.Context, records []*kgo.Record, through ...*kgo.Record) error {
		return s.txn.Commit(ctx, records, through...)
	}, log)
	consumer, err := kafka.NewConsumer(cfg, group, []string{cfg.Topics.Events, cfg.Topics.Redeliveries}, handle, log, extra...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.consumer, s.cancel = consumer, cancel
	ictx, icancel := context.WithTimeout(ctx, 30*time.Second)
	defer icancel()
	if s.txn, err = kafka.NewTransactor(ictx, cfg, consumer, transactionalID, log, extra...); err != nil {
		consumer.Client().Close()
		tb.Fatal(err)
	}
	go func() { s.done <- consumer.Run(ctx) }()
	tb.Cleanup(func() { s.stop(tb) })
	return s
}

// kill closes the session's clients at once, as a crash would: whatever
// transaction is open stays open until the next session with the same
// transactional id fences it. The consumer's client is closed in the
// background: closing it waits for its partitions' handlers, and kill may
// be called from one of them (a produce hook).
func (s *session) kill() {
	s.close.Do(func() {
		s.txn.Close()
		go s.consumer.Client().Close()
	})
}

// stop cancels the consumer, waits for it and closes the clients.
func (s *session) stop(tb testing.TB) {
	tb.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			tb.Errorf("consumer: %v", err)
		}
		s.done <- nil // a second stop returns at once
	case <-time.After(30 * time.Second):
		tb.Error("the consumer did not return 30 s after its context ended")
	}
	s.kill()
}

// eventEnds is the end offset of each events partition: what a group has
// committed once it has read everything.
func eventEnds(tb testing.TB, cfg kafka.Config) kadm.ListedOffsets {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(client(tb, cfg)).ListEndOffsets(ctx, cfg.Topics.Events)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return ends
}

// committed is how many events the group has committed, summed over the
// events partitions.
func committed(ctx context.Context, adm *kadm.Client, cfg kafka.Config, group string) (int64, error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == cfg.Topics.Events {
			n += o.At
		}
	})
	return n, nil
}

// waitCommitted waits until group has committed every event in the topic.
func waitCommitted(tb testing.TB, cfg kafka.Config, group string, timeout time.Duration) {
	tb.Helper()
	var want int64
	eventEnds(tb, cfg).Each(func(o kadm.ListedOffset) { want += o.Offset })
	adm := kadm.NewClient(client(tb, cfg))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		n, err := committed(ctx, adm, cfg, group)
		if err == nil && n == want {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("group %s committed %d of %d events within %v (last error: %v)", group, n, want, timeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readDeliveries returns the records of the deliveries topic, decoded, as
// a consumer with isolation level sees them. Call it once no matcher is
// running: it writes a marker to each partition and reads until it has
// seen them all, which read_committed can only do once no transaction is
// left open before them.
func readDeliveries(tb testing.TB, cfg kafka.Config, c *record.Codecs, isolation kgo.IsolationLevel) []record.Delivery {
	tb.Helper()
	const marker = "end-of-test"
	var markers []*kgo.Record
	for p := range cfg.Partitions {
		markers = append(markers, &kgo.Record{Topic: cfg.Topics.Deliveries, Partition: p, Key: []byte(marker)})
	}
	produce(tb, client(tb, cfg, kgo.RecordPartitioner(kgo.ManualPartitioner())), markers)

	cl := client(tb, cfg,
		kgo.ConsumeTopics(cfg.Topics.Deliveries),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(isolation),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []record.Delivery
	seen := map[int32]bool{}
	for len(seen) < int(cfg.Partitions) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("read %d deliveries and %d of %d end markers in 30 s: a transaction was left open?", len(out), len(seen), cfg.Partitions)
		}
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				tb.Errorf("fetch deliveries: %v", err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == marker {
				seen[r.Partition] = true
				return
			}
			var d record.Delivery
			if err := c.Delivery.Unmarshal(r.Value, &d); err != nil {
				tb.Errorf("delivery at %d/%d: %v", r.Partition, r.Offset, err)
				return
			}
			out = append(out, d)
		})
	}
	return out
}
