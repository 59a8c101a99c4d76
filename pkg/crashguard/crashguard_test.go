package crashguard

import (
	"context"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
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
	c := &consumer{t: t, g: New(rdb, wire.NewTopics(testinfra.Prefix(t)).Keys().Crash(), "matcher", limit)}
	t.Cleanup(func() { rdb.Del(context.Background(), c.g.partitionKey("events", 0)) })
	return c
}

// restart is a new process: a new Guard over the same Redis state.
func (c *consumer) restart() { c.g = &Guard{rdb: c.g.rdb, key: c.g.key, limit: c.g.limit} }

func (c *consumer) begin(first, last int64) bool {
	c.t.Helper()
	suspect, err := c.g.Begin(context.Background(), Span{"events", 0, first, last})
	if err != nil {
		c.t.Fatal(err)
	}
	return suspect[0]
}

func (c *consumer) next(off int64) Plan {
	c.t.Helper()
	p, err := c.g.Next(context.Background(), "events", 0, off)
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *consumer) done() {
	c.t.Helper()
	if err := c.g.Done(context.Background(), Span{Topic: "events"}); err != nil {
		c.t.Fatal(err)
	}
}

// suspectBatch processes first..last record by record, as a consumer
// does after a crash, up to a record of crashAt that is not quarantined
// (where the process dies: no Done), or to the end (Passed, Done). It
// returns the plans Next gave.
func (c *consumer) suspectBatch(first, last int64, crashAt ...int64) map[int64]Plan {
	c.t.Helper()
	plans := map[int64]Plan{}
	for off := first; off <= last; off++ {
		plans[off] = c.next(off)
		if slices.Contains(crashAt, off) && !plans[off].Quarantine {
			return plans
		}
	}
	if err := c.g.Passed(context.Background(), "events", 0, first, last); err != nil {
		c.t.Fatal(err)
	}
	c.done()
	return plans
}

// TestCrashSequence follows two poison records, 12 and 14, in a batch of
// 10..19 through the crashes they cause: after the batch's crash its
// records are processed one by one; 12 is quarantined on its third crash
// (the batch's and two charged to it), and is still quarantined when the
// crash of 14 makes the uncommitted quarantine be read again; no other
// record is; the batches after the crashed one are processed normally
// again, with nothing left in Redis.
func TestCrashSequence(t *testing.T) {
	c := newConsumer(t, 3)
	if c.begin(0, 9) {
		t.Fatal("first batch is suspect")
	}
	c.done()

	c.begin(10, 19) // crash 1: the process dies mid-batch
	deaths := 1
	for {
		c.restart()
		if !c.begin(10, 19) {
			t.Fatalf("after %d crashes the batch is not suspect", deaths)
		}
		plans := c.suspectBatch(10, 19, 12, 14)
		for off, p := range plans {
			if p.Quarantine && off != 12 && off != 14 {
				t.Fatalf("innocent record %d quarantined: %+v", off, p)
			}
		}
		if len(plans) == 10 {
			if !plans[12].Quarantine || !plans[14].Quarantine || plans[12].Crashes != 3 || plans[14].Crashes != 3 {
				t.Fatalf("the poison records at the end: 12 %+v, 14 %+v", plans[12], plans[14])
			}
			break
		}
		deaths++
		if deaths > 5 {
			t.Fatalf("%d crashes and the poison records are not quarantined", deaths)
		}
	}
	if deaths != 5 {
		t.Errorf("%d crashes, want 5: the batch's and two for each poison record", deaths)
	}
	if want := "quarantined: the matcher crashed 3 times while processing this record"; c.next(12).Reason("matcher") != want {
		t.Errorf("reason %q, want %q", c.next(12).Reason("matcher"), want)
	}
	c.done()
	if c.begin(20, 29) {
		t.Fatal("the batch after the crashed one is suspect")
	}
	c.done()
	n, err := c.g.rdb.HLen(context.Background(), c.g.partitionKey("events", 0)).Result()
	if err != nil || n != 0 {
		t.Fatalf("state left after recovery: %d fields, %v", n, err)
	}
}

// TestSpansArePartitions: one Begin covers several partitions, each with
// its own state.
func TestSpansArePartitions(t *testing.T) {
	c := newConsumer(t, 3)
	ctx := context.Background()
	t.Cleanup(func() { c.g.rdb.Del(ctx, c.g.partitionKey("events", 1)) })
	spans := []Span{{"events", 0, 0, 9}, {"events", 1, 100, 109}}
	if _, err := c.g.Begin(ctx, spans...); err != nil { // a crash
		t.Fatal(err)
	}
	if err := c.g.Done(ctx, spans[1]); err != nil { // partition 1 had finished
		t.Fatal(err)
	}
	got, err := c.g.Begin(ctx, Span{"events", 0, 0, 9}, Span{"events", 1, 110, 119})
	if err != nil || !got[0] || got[1] {
		t.Fatalf("Begin after a crash in partition 0 = %v, %v; want [true false]", got, err)
	}
}

// TestFailuresSeenAreNotCrashes: a batch that fails in a way the process
// sees (an aborted transaction) is read again normally, and a record of a
// suspect batch that fails so is charged no crash; nor is one that passed
// when another partition's record crashes the process later.
func TestFailuresSeenAreNotCrashes(t *testing.T) {
	c := newConsumer(t, 2)
	for range 5 {
		if c.begin(0, 9) {
			t.Fatal("a batch after aborts is suspect")
		}
		c.done()
	}
	c.begin(0, 9) // a crash
	for range 5 {
		c.restart()
		if !c.begin(0, 9) {
			t.Fatal("the crashed batch is not suspect")
		}
		if p := c.next(0); p.Quarantine || p.Crashes != 1 {
			t.Fatalf("record after aborts: %+v", p)
		}
		if err := c.g.Passed(context.Background(), "events", 0, 0, 9); err != nil {
			t.Fatal(err)
		}
		// The process dies now, in another partition's record, or the
		// transaction aborts: either way record 0 is not charged.
	}
	if ttl := c.g.rdb.TTL(context.Background(), c.g.partitionKey("events", 0)).Val(); ttl <= 0 || ttl > stateTTL {
		t.Fatalf("state TTL %v, want up to %v", ttl, stateTTL)
	}
}

// roundTrips counts the commands and pipelines a Redis client sends.
type roundTrips struct{ n int }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n++; return next(ctx, cmd) }
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n++; return next(ctx, cmds) }
}

// TestBeginCostsOneRoundTripUsually: Begin runs on every batch, ahead of
// its matching, so in the usual case (no partition has state: Done left
// none) it must cost one Redis round trip, and a crashed batch's state
// still makes the next batch suspect.
func TestBeginCostsOneRoundTripUsually(t *testing.T) {
	rdb := testinfra.Redis(t)
	trips := &roundTrips{}
	rdb.AddHook(trips)
	g := New(rdb, wire.NewTopics(testinfra.Prefix(t)).Keys().Crash(), "matcher", 0)
	ctx := context.Background()
	spans := []Span{{"events", 0, 10, 19}, {"events", 1, 5, 8}}
	t.Cleanup(func() { rdb.Del(ctx, g.partitionKey("events", 0), g.partitionKey("events", 1)) })

	suspects, err := g.Begin(ctx, spans...)
	if err != nil {
		t.Fatal(err)
	}
	if trips.n != 1 || slices.Contains(suspects, true) {
		t.Errorf("Begin without state: %d round trips, suspects %v; want 1, none", trips.n, suspects)
	}
	// The process dies here, with both batches in flight: a new one
	// reads them again.
	trips.n = 0
	suspects, err = g.Begin(ctx, spans...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(suspects, []bool{true, true}) {
		t.Errorf("Begin after a crash: suspects %v, want both", suspects)
	}
	if trips.n != 2 {
		t.Errorf("Begin after a crash: %d round trips, want 2", trips.n)
	}
	if err := g.Done(ctx, spans...); err != nil {
		t.Fatal(err)
	}
	// Past the crashed batches: normal again, and cheap again once the
	// state is gone.
	next := []Span{{"events", 0, 20, 29}, {"events", 1, 9, 9}}
	if suspects, err = g.Begin(ctx, next...); err != nil || slices.Contains(suspects, true) {
		t.Fatalf("Begin past the crashed batches: suspects %v, %v; want none", suspects, err)
	}
	if err := g.Done(ctx, next...); err != nil {
		t.Fatal(err)
	}
	trips.n = 0
	if _, err := g.Begin(ctx, Span{"events", 0, 30, 31}); err != nil {
		t.Fatal(err)
	}
	if trips.n != 1 {
		t.Errorf("Begin once the crash is forgotten: %d round trips, want 1", trips.n)
	}
}
