package kafka_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestBatchMoreJoinsTheBatch checks that records a handler takes with More
// belong to its batch: a failed call is retried with them, and their
// offsets are committed once the retry succeeds.
func TestBatchMoreJoinsTheBatch(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"more"
	prod := client(t, cfg)
	wave := func(n int) []*kgo.Record {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topic, Key: []byte("one-partition"), Value: []byte{byte(i)}}
		}
		if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	first := wave(10)
	const total = 20

	var (
		mu      sync.Mutex
		calls   int
		retried []int64
	)
	started := make(chan struct{})
	c := newConsumer(t, cfg, group, []string{topic}, func(ctx context.Context, b kafka.Batch) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n > 1 {
			mu.Lock()
			for _, r := range b.Records {
				retried = append(retried, r.Offset)
			}
			mu.Unlock()
			return nil
		}
		close(started)
		mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for have := len(b.Records); have < total; {
			recs := b.More(mctx)
			if recs == nil {
				return errors.New("More ended before the second wave arrived")
			}
			have += len(recs)
		}
		return errors.New("fail once, after taking more")
	})
	stop := run(t, c)
	<-started
	second := wave(total - len(first))

	adm := kadm.NewClient(prod)
	part := first[0].Partition
	end := second[len(second)-1].Offset + 1
	waitFor(t, 40*time.Second, "the offsets of both waves committed", func() bool {
		return committed(t, adm, group, topic)[part] == end
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("handler called %d times, want 2 (a failure, then its retry)", calls)
	}
	if len(retried) != total || retried[0] != first[0].Offset || retried[total-1] != end-1 {
		t.Errorf("the retry got offsets %v, want the %d records from %d through %d", retried, total, first[0].Offset, end-1)
	}
}

// TestNextTakesEveryQueuedFetch: records fetched while the handler is busy
// come to it in one batch, however many fetches brought them, so that a
// transactional handler that fell behind catches up in one transaction
// (the matcher made one per fetch of a few records, and fell ever further
// behind at 1,000 events/s). The later records are produced one at a
// time, so most fetches bring one; a batch takes queued fetches up to the
// size of one full partition fetch, here 2 MiB.
func TestNextTakesEveryQueuedFetch(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"queued"
	prod := client(t, cfg)
	send := func() *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte("one-partition"), Value: []byte("x")}
		if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	const later = 12 // more than the fetches that paused a partition before
	var fetched atomic.Int64
	release := make(chan struct{})
	var (
		mu      sync.Mutex
		batches [][]int64
	)
	c := newConsumer(t, cfg, group, []string{topic}, func(ctx context.Context, b kafka.Batch) error {
		var offs []int64
		for _, r := range b.Records {
			offs = append(offs, r.Offset)
		}
		mu.Lock()
		batches = append(batches, offs)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			select { // busy until every later record is fetched
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}, kgo.WithHooks(countFetched{&fetched}))
	stop := run(t, c)
	defer stop()
	first := send()
	waitFor(t, 30*time.Second, "the first record handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(batches) == 1
	})
	var last *kgo.Record
	for range later {
		last = send()
	}
	waitFor(t, 30*time.Second, "every later record fetched", func() bool { return fetched.Load() == later+1 })
	close(release)
	waitFor(t, 30*time.Second, "every later record handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, b := range batches {
			n += len(b)
		}
		return n >= later+1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || len(batches[1]) != later || batches[1][0] != first.Offset+1 || batches[1][later-1] != last.Offset {
		t.Errorf("batches %v: want [%d] and then the %d later records, %d through %d, in one batch", batches, first.Offset, later, first.Offset+1, last.Offset)
	}
}

// countFetched counts the records a client fetches.
type countFetched struct{ n *atomic.Int64 }

func (c countFetched) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	c.n.Add(int64(m.NumRecords))
}
