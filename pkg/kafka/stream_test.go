package kafka_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

// oneKey produces n records to one partition of topic and returns them as
// acknowledged (with their offsets).
func oneKey(t *testing.T, prod *kgo.Client, topic string, n int) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte("one-partition"), Value: []byte{byte(i)}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestStreamCommitsBelowTheOldestUnfinished: a stream handler that holds
// one record back while finishing the ones behind it keeps the committed
// offset at that record, and moves it to the end once it is finished.
func TestStreamCommitsBelowTheOldestUnfinished(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"stream"
	prod := client(t, cfg)
	recs := oneKey(t, prod, topic, 20)
	part, held := recs[0].Partition, recs[5]
	release := make(chan struct{})
	c, err := kafka.NewStreamConsumer(cfg, group, []string{topic}, func(ctx context.Context, p *kafka.Partition) error {
		var hold *kgo.Record
		for taken := 0; taken < len(recs); {
			got := p.Next(ctx)
			if got == nil {
				return nil
			}
			taken += len(got)
			for _, r := range got {
				if r.Offset == held.Offset {
					hold = r
					continue
				}
				p.Finish(r) // the records behind the held one finish first
			}
		}
		select {
		case <-release:
			p.Finish(hold)
		case <-p.Stopping():
		}
		<-p.Stopping()
		return nil
	}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, c)
	adm := kadm.NewClient(prod)
	waitFor(t, 30*time.Second, "the offset committed up to the held record", func() bool {
		return committed(t, adm, group, topic)[part] == held.Offset
	})
	time.Sleep(1500 * time.Millisecond) // past an autocommit: it must not move on
	if got := committed(t, adm, group, topic)[part]; got != held.Offset {
		t.Fatalf("committed %d while offset %d was unfinished", got, held.Offset)
	}
	close(release)
	end := recs[len(recs)-1].Offset + 1
	waitFor(t, 30*time.Second, "the offset committed to the end", func() bool {
		return committed(t, adm, group, topic)[part] == end
	})
	stop()
}

// TestStreamRunsAgainWithWhatItLeftUnfinished: a stream handler that fails
// is run again, and its first Next hands out exactly the records it took
// and did not finish, in order; then the records fetched since.
func TestStreamRunsAgainWithWhatItLeftUnfinished(t *testing.T) {
	cfg := testinfra.Kafka(t)
	topic, group := cfg.Topics.Events, cfg.Topics.Prefix+"redo"
	prod := client(t, cfg)
	recs := oneKey(t, prod, topic, 10)
	var (
		mu    sync.Mutex
		calls int
		redo  []int64
		later []int64
	)
	again := make(chan struct{})
	c, err := kafka.NewStreamConsumer(cfg, group, []string{topic}, func(ctx context.Context, p *kafka.Partition) error {
		if p.Partition != recs[0].Partition {
			<-p.Stopping() // the other partitions hold nothing
			return nil
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			for taken := 0; taken < len(recs); {
				got := p.Next(ctx)
				if got == nil {
					return nil
				}
				taken += len(got)
				for _, r := range got {
					if r.Offset%2 == 0 {
						p.Finish(r)
					}
				}
			}
			return errors.New("fail with the odd offsets unfinished")
		}
		first := p.Next(ctx)
		mu.Lock()
		for _, r := range first {
			redo = append(redo, r.Offset)
		}
		mu.Unlock()
		p.Finish(first...)
		close(again)
		for {
			got := p.Next(ctx)
			if got == nil {
				return nil
			}
			mu.Lock()
			for _, r := range got {
				later = append(later, r.Offset)
			}
			mu.Unlock()
			p.Finish(got...)
		}
	}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, c)
	select {
	case <-again:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler was not run again after failing")
	}
	more := oneKey(t, prod, topic, 3)
	adm := kadm.NewClient(prod)
	end := more[len(more)-1].Offset + 1
	waitFor(t, 30*time.Second, "everything committed", func() bool {
		return committed(t, adm, group, topic)[recs[0].Partition] == end
	})
	stop()
	mu.Lock()
	defer mu.Unlock()
	var odd []int64
	for _, r := range recs {
		if r.Offset%2 != 0 {
			odd = append(odd, r.Offset)
		}
	}
	if !slices.Equal(redo, odd) {
		t.Errorf("the second run first got offsets %v, want the unfinished %v", redo, odd)
	}
	want := []int64{more[0].Offset, more[1].Offset, more[2].Offset}
	if !slices.Equal(later, want) {
		t.Errorf("then it got %v, want the new records %v", later, want)
	}
}

// TestNewPartitionTracksFinished: a Partition made over records hands
// them out once and reports how far they are finished.
func TestNewPartitionTracksFinished(t *testing.T) {
	recs := []*kgo.Record{{Offset: 3}, {Offset: 4}, {Offset: 7}}
	p := kafka.NewPartition("t", 0, recs)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if got := p.Next(ctx); len(got) != 3 {
		t.Fatalf("Next = %d records, want 3", len(got))
	}
	tests := []struct {
		name   string
		finish *kgo.Record
		want   int64
	}{
		{"out of order: nothing yet", recs[1], -1},
		{"the oldest: through the next", recs[0], 4},
		{"the last", recs[2], 7},
	}
	for _, tc := range tests {
		p.Finish(tc.finish)
		if got := p.Finished(); got != tc.want {
			t.Errorf("%s: Finished = %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := p.Next(ctx); got != nil {
		t.Errorf("a second Next = %v, want nil once ctx ends", got)
	}
}
