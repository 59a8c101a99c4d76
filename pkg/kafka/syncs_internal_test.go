package kafka

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// logLines hands each line written to it to the test.
type logLines chan string

func (c logLines) Write(p []byte) (int, error) {
	c <- string(p)
	return len(p), nil
}

// fakeSyncs returns Syncs on a clock the test sets (ms after t0) whose
// syncs each take the next error sent on release.
func fakeSyncs(t *testing.T) (s *Syncs, clock *atomic.Int64, release chan error, begun *atomic.Int32, logged logLines) {
	t.Helper()
	t0 := time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC)
	clock, begun = new(atomic.Int64), new(atomic.Int32)
	release, logged = make(chan error), make(logLines, 16)
	s = NewSyncs(func(context.Context) error {
		begun.Add(1)
		return <-release
	}, zerolog.New(logged))
	s.now = func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Millisecond) }
	return s, clock, release, begun, logged
}

// watchedCtx tells when a Wait begins waiting on it (selects on Done).
type watchedCtx struct {
	context.Context
	waiting chan struct{}
}

func (c watchedCtx) Done() <-chan struct{} {
	c.waiting <- struct{}{}
	return c.Context.Done()
}

// waitUntil polls cond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// TestSyncsPoll: the rules the sender's lanes rely on to tell a deleted
// subscription from one not read yet. Poll answers true only once a sync
// that began after the moment asked about has ended well; until then it
// starts one unless one runs; a failed one is logged and tried again.
func TestSyncsPoll(t *testing.T) {
	s, clock, release, begun, logged := fakeSyncs(t)
	idle := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.run == nil
	}
	waitIdle := func() { t.Helper(); waitUntil(t, "the sync did not end", idle) }
	waitBegun := func(n int32) {
		t.Helper()
		waitUntil(t, "too few syncs began", func() bool { return begun.Load() >= n })
	}

	clock.Store(10)
	waitingSince := s.now() // a lane finds its subscription unknown
	clock.Store(20)
	if s.Poll(waitingSince) {
		t.Fatal("gone before any sync")
	}
	waitBegun(1)
	if s.Poll(waitingSince) {
		t.Fatal("gone while the first sync runs")
	}
	release <- errors.New("broker away")
	waitIdle()
	if begun.Load() != 1 {
		t.Fatalf("%d syncs after two looks while one ran, want 1", begun.Load())
	}
	select {
	case line := <-logged:
		if !strings.Contains(line, "broker away") {
			t.Errorf("the failed sync logged %q, want its error", line)
		}
	case <-time.After(5 * time.Second):
		t.Error("the failed sync logged nothing")
	}
	if s.Poll(waitingSince) {
		t.Fatal("gone after a failed sync")
	}
	// The failed one is tried again; this one began at 20 ms, after 10.
	waitBegun(2)
	release <- nil
	waitIdle()
	if !s.Poll(waitingSince) {
		t.Fatal("still looking after a sync that began after the lane waited")
	}
	if !s.Last().Equal(s.now()) {
		t.Errorf("the last sync began at %v, want %v", s.Last(), s.now())
	}

	// A lane that began waiting when that sync began needs a newer one.
	later := s.now()
	if s.Poll(later) {
		t.Fatal("gone on a sync that began at the lane's own time, not after it")
	}
	waitBegun(3) // it began at 20 ms too
	clock.Store(40)
	release <- nil
	waitIdle()
	if s.Poll(later) {
		t.Fatal("gone on a second sync that began at 20 ms")
	}
	waitBegun(4) // at 40 ms
	release <- nil
	waitIdle()
	if !s.Poll(later) {
		t.Fatal("still looking after a sync that began at 40 ms")
	}
}

// TestSyncsWaitersShareTheNext: callers that come while a sync runs that
// began before their moment (three partitions' batches at once) all wait
// for one more sync, instead of returning early or running one each; one
// that finds no sync running is served by the one it starts.
func TestSyncsWaitersShareTheNext(t *testing.T) {
	s, clock, release, begun, _ := fakeSyncs(t)
	var ended atomic.Int32 // syncs that have ended
	ctx := context.Background()
	type result struct {
		err   error
		ended int32 // syncs ended when Wait returned
	}
	results := make(chan result, 4)
	waiting := make(chan struct{}, 16)
	wait := func(at time.Time) {
		err := s.Wait(watchedCtx{ctx, waiting}, at)
		results <- result{err, ended.Load()}
	}
	releaseOne := func() {
		ended.Add(1) // before the sync ends: a Wait it frees sees it
		release <- nil
	}

	go wait(s.now()) // at 0 ms: starts the first sync
	waitUntil(t, "no sync began", func() bool { return begun.Load() == 1 })
	<-waiting
	clock.Store(1)
	for range 3 {
		go wait(s.now()) // at 1 ms: after the first sync began
	}
	for range 3 { // each waits on the first sync
		<-waiting
	}
	clock.Store(2)
	releaseOne()
	first := <-results
	if first.err != nil || first.ended != 1 {
		t.Fatalf("the first caller: %v after %d syncs, want nil after its own", first.err, first.ended)
	}
	waitUntil(t, "no second sync began", func() bool { return begun.Load() == 2 })
	releaseOne()
	for range 3 {
		r := <-results
		if r.err != nil || r.ended != 2 {
			t.Fatalf("a caller that came during the first sync: %v after %d syncs, want nil after the second", r.err, r.ended)
		}
	}
	for len(waiting) > 0 { // their second waits'
		<-waiting
	}
	if n := begun.Load(); n != 2 {
		t.Errorf("%d syncs for a batch and three that came during its sync, want 2", n)
	}
	if err := s.Wait(ctx, s.now().Add(-time.Millisecond)); err != nil || begun.Load() != 2 {
		t.Errorf("a caller whose moment is before the last sync: %v, %d syncs, want nil and none more", err, begun.Load())
	}

	// A caller whose context ends stops waiting; the sync goes on for
	// whoever else waits.
	clock.Store(5)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Wait(cctx, s.now()) }() // starts one at 5 ms
	waitUntil(t, "no third sync began", func() bool { return begun.Load() == 3 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled caller got %v, want context.Canceled", err)
	}
	go wait(s.now().Add(-time.Millisecond)) // at 4 ms: the third sync began after it
	<-waiting
	releaseOne()
	if r := <-results; r.err != nil || r.ended != 3 {
		t.Errorf("a caller of the sync a cancelled one started: %v after %d syncs, want nil after the third", r.err, r.ended)
	}
}
