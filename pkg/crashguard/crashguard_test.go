package crashguard

import (
	"context"
	"testing"

	"github.com/hookline/hookline/pkg/testinfra"
)

// consumer plays a consumer of one partition against the real Redis: each
// call is one batch, and crash leaves it begun without a Done, as a
// process killed mid-batch does.
type consumer struct {
	t      *testing.T
	g      *Guard
	prefix string
}

func (c consumer) begin(first, last int64) Plan {
	c.t.Helper()
	p, err := c.g.Begin(context.Background(), "events", 0, first, last)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c consumer) done(first, last int64, ok bool) {
	c.t.Helper()
	if err := c.g.Done(context.Background(), "events", 0, first, last, ok); err != nil {
		c.t.Fatal(err)
	}
}

// restart is a new process: the guard's memory is gone, Redis is not.
func (c *consumer) restart() { c.g = New(c.g.rdb, c.prefix, "matcher", c.g.limit) }

// TestCrashSequence follows a poison record at offset 12 in a batch of
// 10..19 through the crashes it causes: the batch is isolated, the records
// before it are processed alone once each, and the poison is quarantined
// on its third crash; the records after it and the batches after the
// crashed one are processed normally again.
func TestCrashSequence(t *testing.T) {
	rdb := testinfra.Redis(t)
	prefix := testinfra.Prefix(t)
	c := &consumer{t: t, g: New(rdb, prefix, "matcher", 3), prefix: prefix}
	t.Cleanup(func() { rdb.Del(context.Background(), prefix+"crash:matcher:events:0") })

	if p := c.begin(0, 9); p != (Plan{}) {
		t.Fatalf("first batch: %+v", p)
	}
	c.done(0, 9, true)

	c.begin(10, 19) // crash 1: the process dies mid-batch
	c.restart()
	if p := c.begin(10, 19); !p.Isolate {
		t.Fatalf("batch in flight at the crash: %+v, want Isolate", p)
	}
	if !c.g.Isolating() {
		t.Fatal("Isolating() = false after an isolated batch")
	}
	for off := int64(10); off < 12; off++ {
		if p := c.begin(off, off); p.Isolate || p.Quarantine || p.Crashes != 1 {
			t.Fatalf("record %d alone: %+v", off, p)
		}
		c.done(off, off, true)
	}
	for crash := 2; crash <= 3; crash++ {
		p := c.begin(12, 12) // crash 2 and 3: it dies again
		if p.Quarantine || p.Crashes != crash-1 {
			t.Fatalf("poison begun alone after %d crashes: %+v", crash-1, p)
		}
		c.restart()
		if p := c.begin(12, 19); !p.Isolate {
			t.Fatalf("after crash %d: %+v, want Isolate", crash, p)
		}
	}
	p := c.begin(12, 12)
	if !p.Quarantine || p.Crashes != 3 || p.Reason("matcher") != "quarantined: this record crashed the matcher 3 times" {
		t.Fatalf("poison after 3 crashes: %+v %q", p, p.Reason("matcher"))
	}
	c.done(12, 12, true)
	for off := int64(13); off <= 19; off++ {
		if p := c.begin(off, off); p.Quarantine || p.Crashes != 1 {
			t.Fatalf("record %d after the poison: %+v", off, p)
		}
		c.done(off, off, true)
	}
	if p := c.begin(20, 29); p != (Plan{}) || c.g.Isolating() {
		t.Fatalf("batch past the crashed one: %+v, isolating %v", p, c.g.Isolating())
	}
	c.done(20, 29, true)
	n, err := rdb.HLen(context.Background(), prefix+"crash:matcher:events:0").Result()
	if err != nil || n != 0 {
		t.Fatalf("state left after recovery: %d fields, %v", n, err)
	}
}

// TestFailuresSeenAreNotCrashes: a batch that fails in a way the process
// sees (an aborted transaction) is read again normally, and a record alone
// that fails so keeps its crash count rather than gaining one.
func TestFailuresSeenAreNotCrashes(t *testing.T) {
	rdb := testinfra.Redis(t)
	prefix := testinfra.Prefix(t)
	c := &consumer{t: t, g: New(rdb, prefix, "matcher", 2), prefix: prefix}
	t.Cleanup(func() { rdb.Del(context.Background(), prefix+"crash:matcher:events:0") })

	for range 5 {
		if p := c.begin(0, 9); p != (Plan{}) {
			t.Fatalf("batch after aborts: %+v", p)
		}
		c.done(0, 9, false)
	}
	c.begin(0, 9) // a crash
	c.restart()
	c.begin(0, 9)
	for range 5 {
		if p := c.begin(0, 0); p.Quarantine || p.Crashes != 1 {
			t.Fatalf("record alone after aborts: %+v", p)
		}
		c.done(0, 0, false)
	}
	if ttl := rdb.TTL(context.Background(), prefix+"crash:matcher:events:0").Val(); ttl <= 0 || ttl > stateTTL {
		t.Fatalf("state TTL %v, want up to %v", ttl, stateTTL)
	}
}
