package match

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/crashguard"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestFreshSyncsForEventsNewerThanTheLastSync: an event written after the
// last sync began makes the index sync first; one older (a backlog) does
// not, nor does a batch fetched before the last sync began; a failed sync
// is returned and counts for nothing. How batches
// share syncs is kafka.Syncs's (TestSyncsWaitersShareTheNext).
func TestFreshSyncsForEventsNewerThanTheLastSync(t *testing.T) {
	var syncs int
	fail := false
	fresh := Fresh(kafka.NewSyncs(func(context.Context) error {
		syncs++
		if fail {
			return errors.New("no end offsets")
		}
		return nil
	}, zerolog.Nop()), time.Second)
	ctx := context.Background()
	if err := fresh(ctx, time.Now(), time.Time{}); err != nil || syncs != 1 {
		t.Fatalf("a new event: %v, %d syncs, want 1", err, syncs)
	}
	if err := fresh(ctx, time.Now().Add(-time.Minute), time.Time{}); err != nil || syncs != 1 {
		t.Fatalf("an event older than the sync: %v, %d syncs, want none more", err, syncs)
	}
	if err := fresh(ctx, time.Now(), time.Time{}); err != nil || syncs != 2 {
		t.Fatalf("an event within the clock margin of the sync: %v, %d syncs, want 2", err, syncs)
	}
	fail = true
	if err := fresh(ctx, time.Now().Add(time.Minute), time.Time{}); err == nil {
		t.Fatal("a failed sync was not returned")
	}
	fail = false
	if err := fresh(ctx, time.Now().Add(30*time.Second), time.Time{}); err != nil || syncs != 4 {
		t.Fatalf("after a failed sync: %v, %d syncs, want 4", err, syncs)
	}
	// A batch fetched before the last sync began needs none, however new
	// its events; one fetched after it does.
	last := time.Now()
	if err := fresh(ctx, last, time.Time{}); err != nil || syncs != 5 {
		t.Fatalf("a new event: %v, %d syncs, want 5", err, syncs)
	}
	if err := fresh(ctx, time.Now().Add(time.Minute), last); err != nil || syncs != 5 {
		t.Fatalf("a batch fetched before the sync began: %v, %d syncs, want none more", err, syncs)
	}
	if err := fresh(ctx, time.Now().Add(time.Minute), time.Now()); err != nil || syncs != 6 {
		t.Fatalf("a batch fetched after the sync began: %v, %d syncs, want 6", err, syncs)
	}
}

// TestBatchWaitsForFreshSubscriptions: a batch is neither matched nor
// committed while the index cannot be brought up to its events; the
// consumer gets the error and hands the batch back. The crash guard,
// told of the batch meanwhile (real Redis), hears that it is done: taken
// again, the batch is not suspect.
func TestBatchWaitsForFreshSubscriptions(t *testing.T) {
	m := testMatcher(t)
	m.Guard = crashguard.New(testinfra.Redis(t), fmt.Sprintf("hookline-test-%d:crash:", time.Now().UnixNano()), "matcher", 3)
	var asked time.Time
	var fetched time.Time
	m.Fresh = func(_ context.Context, newest, at time.Time) error {
		asked, fetched = newest, at
		return errors.New("broker unreachable")
	}
	committed := false
	h := m.Handler(func(context.Context, []*kgo.Record, ...*kgo.Record) error {
		committed = true
		return nil
	}, zerolog.Nop())
	t0 := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	recs := []*kgo.Record{{Topic: "events", Timestamp: t0.Add(2 * time.Second)}, {Topic: "events", Offset: 1, Timestamp: t0.Add(5 * time.Second)}, {Topic: "events", Offset: 2, Timestamp: t0}}
	at := t0.Add(6 * time.Second)
	if err := h(context.Background(), kafka.Batch{Topic: "events", Records: recs, Fetched: at}); err == nil {
		t.Fatal("the batch was handled without fresh subscriptions")
	}
	if committed {
		t.Error("the batch was committed without fresh subscriptions")
	}
	if !asked.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("asked for subscriptions up to %v, want the newest event's %v", asked, t0.Add(5*time.Second))
	}
	if !fetched.Equal(at) {
		t.Errorf("told the batch was fetched at %v, want %v", fetched, at)
	}
	suspect, err := m.Guard.Begin(context.Background(), crashguard.Span{Topic: "events", First: 0, Last: 2})
	if err != nil || suspect[0] {
		t.Errorf("the batch taken again is suspect (%v): the guard still had it in flight", err)
	}
}
