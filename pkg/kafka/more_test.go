package kafka_test

import (
	"context"
	"errors"
	"sync"
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
