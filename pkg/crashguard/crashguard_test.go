package crashguard

import (
	"context"
	"testing"

	"github.com/hookline/hookline/pkg/testinfra"
)

// consumer plays a consumer of one partition against the real Redis. A
// crash is a Begin or Next left without its Done, as a process killed
// mid-batch leaves it; restart is a new process (nothing in memory).
type consumer struct {
	t *testing.T
	g *Guard
}

func newConsumer(t *testing.T, limit int) *consumer {
	rdb := testinfra.Redis(t)
	c := &consumer{t: t, g: New(rdb, testinfra.Prefix(t), "matcher", limit)}
	t.Cleanup(func() { rdb.Del(context.Background(), c.g.partitionKey("events", 0)) })
	return c
}

// restart is a new process: a new Guard over the same Redis state.
func (c *consumer) restart() { c.g = &Guard{rdb: c.g.rdb, key: c.g.key, limit: c.g.limit} }

func (c *consumer) begin(first, last int64) bool {
	c.t.Helper()
	suspect, err := c.g.Begin(context.Background(), "events", 0, first, last)
	if err != nil {
		c.t.Fatal(err)
	}
	return suspect
}

func (c *consumer) next(off, prev int64) Plan {
	c.t.Helper()
	p, err := c.g.Next(context.Background(), "events", 0, off, prev)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *consumer) done(last int64, ok bool) {
	c.t.Helper()
	if err := c.g.Done(context.Background(), "events", 0, last, ok); err != nil {
		c.t.Fatal(err)
	}
}

// suspectBatch processes first..last record by record, as a consumer
// does after a crash, up to the record crashAt (where the process dies:
// no Done), or to the end (Done). It returns the plans Next gave.
func (c *consumer) suspectBatch(first, last, crashAt int64) map[int64]Plan {
	c.t.Helper()
	plans := map[int64]Plan{}
	prev := int64(-1)
	for off := first; off <= last; off++ {
		plans[off] = c.next(off, prev)
		if off == crashAt && !plans[off].Quarantine {
			return plans
		}
		prev = off
	}
	c.done(prev, true)
	return plans
}

// TestCrashSequence follows a poison record at offset 12 in a batch of
// 10..19 through the crashes it causes: after the batch's crash its
// records are processed one by one, the poison is quarantined on its
// third crash, no other record is, and the batches after the crashed one
// are processed normally again with nothing left in Redis.
func TestCrashSequence(t *testing.T) {
	c := newConsumer(t, 3)
	if c.begin(0, 9) {
		t.Fatal("first batch is suspect")
	}
	c.done(-1, true)

	c.begin(10, 19) // crash 1: the process dies mid-batch
	for crash := 2; crash <= 3; crash++ {
		c.restart()
		if !c.begin(10, 19) {
			t.Fatalf("after crash %d: the batch is not suspect", crash-1)
		}
		plans := c.suspectBatch(10, 19, 12) // crash 2 and 3: dies on 12 again
		for off, p := range plans {
			if p.Quarantine || p.Crashes != map[bool]int{true: crash - 1, false: 1}[off == 12] {
				t.Fatalf("after crash %d, record %d: %+v", crash-1, off, p)
			}
		}
	}
	c.restart()
	if !c.begin(10, 19) {
		t.Fatal("after crash 3: the batch is not suspect")
	}
	plans := c.suspectBatch(10, 19, -1)
	for off, p := range plans {
		if p.Quarantine != (off == 12) {
			t.Fatalf("record %d: %+v; only 12 is quarantined", off, p)
		}
	}
	if p := plans[12]; p.Crashes != 3 || p.Reason("matcher") != "quarantined: this record crashed the matcher 3 times" {
		t.Fatalf("poison after 3 crashes: %+v %q", p, p.Reason("matcher"))
	}
	if c.begin(20, 29) {
		t.Fatal("the batch after the crashed one is suspect")
	}
	c.done(-1, true)
	n, err := c.g.rdb.HLen(context.Background(), c.g.partitionKey("events", 0)).Result()
	if err != nil || n != 0 {
		t.Fatalf("state left after recovery: %d fields, %v", n, err)
	}
}

// TestFailuresSeenAreNotCrashes: a batch that fails in a way the process
// sees (an aborted transaction) is read again normally, and a record of a
// suspect batch that fails so does not gain a crash.
func TestFailuresSeenAreNotCrashes(t *testing.T) {
	c := newConsumer(t, 2)
	for range 5 {
		if c.begin(0, 9) {
			t.Fatal("a batch after aborts is suspect")
		}
		c.done(-1, false)
	}
	c.begin(0, 9) // a crash
	c.restart()
	for range 5 {
		if !c.begin(0, 9) {
			t.Fatal("the crashed batch is not suspect")
		}
		if p := c.next(0, -1); p.Quarantine || p.Crashes != 1 {
			t.Fatalf("record after aborts: %+v", p)
		}
		c.done(0, false)
	}
	if ttl := c.g.rdb.TTL(context.Background(), c.g.partitionKey("events", 0)).Val(); ttl <= 0 || ttl > stateTTL {
		t.Fatalf("state TTL %v, want up to %v", ttl, stateTTL)
	}
}
