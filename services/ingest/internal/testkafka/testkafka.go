// Package testkafka reads back what ingest's integration tests wrote to
// the real broker: every record of a topic up to its current end.
package testkafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

// Records returns every record of topic, from the start to the end offsets
// at the time of the call, in partition then offset order. It is for
// topics written without transactions, whose last offset is a record.
func Records(t testing.TB, cfg kafka.Config, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(cfg, testinfra.Logger(),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (still to read: %v)", topic, ctx.Err(), want)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			out = append(out, r)
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// WaitRecords polls topic until it holds at least n records or the
// deadline passes, and returns what it holds then.
func WaitRecords(t testing.TB, cfg kafka.Config, topic string, n int, within time.Duration) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		recs := Records(t, cfg, topic)
		if len(recs) >= n || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// WaitTopic waits until the brokers answer for topic's partitions: a topic
// just created may be unknown to a broker for a moment, and a client that
// lists its offsets then (the subscriptions view does, once, at start)
// fails.
func WaitTopic(t testing.TB, cfg kafka.Config, topic string) {
	t.Helper()
	cl, err := kafka.NewClient(cfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ends, err := adm.ListEndOffsets(ctx, topic)
		cancel()
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
