package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

// produceTo writes n records to each of topic's partitions, values
// "<partition>/<i>", plainly or in one committed transaction.
func produceTo(t *testing.T, cl *kgo.Client, topic string, partitions, n int, txn bool) {
	t.Helper()
	ctx := context.Background()
	if txn {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	for p := range partitions {
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: int32(p), Value: fmt.Appendf(nil, "%d/%d", p, i)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if txn {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
}

func manual() kgo.Opt { return kgo.RecordPartitioner(kgo.ManualPartitioner()) }

// TestReadToEnd reads what a topic held when it began, every partition,
// plain and transactional (whose last offset is a commit marker), and no
// further.
func TestReadToEnd(t *testing.T) {
	cfg := testinfra.Kafka(t)
	prod := client(t, cfg, manual())
	txn := client(t, cfg, manual(), kgo.TransactionalID(cfg.Topics.Prefix+"reader"))
	produceTo(t, prod, cfg.Topics.Events, int(cfg.Partitions), 5, false)
	produceTo(t, txn, cfg.Topics.Deliveries, int(cfg.Partitions), 4, true)

	for _, tc := range []struct {
		name, topic string
		want        int
	}{
		{"plain", cfg.Topics.Events, 5 * int(cfg.Partitions)},
		{"transactional", cfg.Topics.Deliveries, 4 * int(cfg.Partitions)},
		{"empty", cfg.Topics.DLQ, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			seen := map[string]bool{}
			r := kafka.NewReader(tc.topic)
			var caughtUp int
			r.OnCaughtUp(func() { caughtUp++ })
			err := r.ReadToEnd(ctx, cfg, testinfra.Logger(), func(rec *kgo.Record) bool {
				if seen[string(rec.Value)] {
					t.Errorf("%s read twice", rec.Value)
				}
				seen[string(rec.Value)] = true
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != tc.want || caughtUp != 1 || r.Ready() != nil {
				t.Errorf("read %d records, caught up %d times, ready %v; want %d, once, ready", len(seen), caughtUp, r.Ready(), tc.want)
			}
		})
	}
}

// TestReadToEndOptions: FromLast reads only each partition's tail, and fn
// returning false stops the read.
func TestReadToEndOptions(t *testing.T) {
	cfg := testinfra.Kafka(t)
	prod := client(t, cfg, manual())
	produceTo(t, prod, cfg.Topics.Events, int(cfg.Partitions), 10, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var tail []string
	if err := kafka.NewReader(cfg.Topics.Events).FromLast(3).ReadToEnd(ctx, cfg, testinfra.Logger(), func(rec *kgo.Record) bool {
		tail = append(tail, string(rec.Value))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(tail) != 3*int(cfg.Partitions) {
		t.Errorf("FromLast(3) read %v, want the last 3 of each of %d partitions", tail, cfg.Partitions)
	}
	for _, v := range tail {
		var p, i int
		if _, err := fmt.Sscanf(v, "%d/%d", &p, &i); err != nil || i < 7 {
			t.Errorf("FromLast(3) read %s, not among the last three", v)
		}
	}

	n := 0
	if err := kafka.NewReader(cfg.Topics.Events).ReadToEnd(ctx, cfg, testinfra.Logger(), func(*kgo.Record) bool {
		n++
		return n < 4
	}); err != nil || n != 4 {
		t.Errorf("a read stopped by fn at the 4th record: %d records, %v", n, err)
	}
}

// TestReadToEndPastExpiredRecords: a partition whose records have all
// gone (retention, or deleted records) is read to its end at once; a
// reader waiting for offsets that no longer exist would never finish,
// as a DLQ replay did once its oldest letters expired.
func TestReadToEndPastExpiredRecords(t *testing.T) {
	cfg := testinfra.Kafka(t)
	prod := client(t, cfg, manual())
	produceTo(t, prod, cfg.Topics.DLQ, 2, 3, false)
	adm := kadm.NewClient(client(t, cfg))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var gone kadm.Offsets
	gone.AddOffset(cfg.Topics.DLQ, 0, 3, -1) // all of partition 0
	gone.AddOffset(cfg.Topics.DLQ, 1, 1, -1) // the first of partition 1
	res, err := adm.DeleteRecords(ctx, gone)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := kafka.NewReader(cfg.Topics.DLQ).ReadToEnd(ctx, cfg, testinfra.Logger(), func(rec *kgo.Record) bool {
		got = append(got, string(rec.Value))
		return true
	}); err != nil {
		t.Fatalf("read past deleted records: %v (read %v)", err, got)
	}
	if len(got) != 2 || got[0] != "1/1" || got[1] != "1/2" {
		t.Errorf("read %v, want 1/1 and 1/2", got)
	}
}

// TestReaderFollows: Run catches up, then follows; WaitFor returns once
// fn has handled the record, Sync once everything written before it was
// read.
func TestReaderFollows(t *testing.T) {
	cfg := testinfra.Kafka(t)
	prod := client(t, cfg)
	topic := cfg.Topics.Events
	produceTo(t, client(t, cfg, manual()), topic, 1, 3, false)

	var handled atomic.Int64
	var caughtUp atomic.Int32
	r := kafka.NewReader(topic).OnCaughtUp(func() { caughtUp.Add(1) })
	if err := r.Sync(context.Background()); err == nil {
		t.Error("Sync of a reader that is not running succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, cfg, testinfra.Logger(), func(rec *kgo.Record) bool {
			time.Sleep(time.Millisecond) // fn's work finishes before the record counts as read
			handled.Add(1)
			return true
		})
	}()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := r.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if n := handled.Load(); n != 3 {
		t.Errorf("ready after %d records, want 3", n)
	}
	for i := range 5 {
		// Counted before the write: the reader may handle the record
		// before ProduceSync returns.
		before := handled.Load()
		res, err := prod.ProduceSync(wctx, &kgo.Record{Topic: topic, Value: []byte("new " + strconv.Itoa(i))}).First()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WaitFor(wctx, topic, res.Partition, res.Offset); err != nil {
			t.Fatal(err)
		}
		if handled.Load() <= before {
			t.Errorf("WaitFor returned before fn handled offset %d", res.Offset)
		}
	}
	if _, err := prod.ProduceSync(wctx, &kgo.Record{Topic: topic, Value: []byte("last")}).First(); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(wctx); err != nil {
		t.Fatal(err)
	}
	if n := handled.Load(); n != 9 {
		t.Errorf("after Sync %d records handled, want 9", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once ctx ends", err)
	}
	if n := caughtUp.Load(); n != 1 {
		t.Errorf("OnCaughtUp called %d times, want once", n)
	}
}
