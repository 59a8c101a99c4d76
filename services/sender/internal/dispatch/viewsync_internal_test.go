package dispatch

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/testinfra"
)

func TestViewSync(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC)
	var clock atomic.Int64 // ms after t0
	now := func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Millisecond) }
	release := make(chan error)
	var syncs atomic.Int32
	v := &viewSync{now: now, sync: func(ctx context.Context) error {
		syncs.Add(1)
		return <-release
	}}
	var logged testinfra.SyncBuffer
	ctx, log := context.Background(), zerolog.New(&logged)
	waitIdle := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			v.mu.Lock()
			running := v.running
			v.mu.Unlock()
			if !running {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the sync did not end")
			}
			time.Sleep(time.Millisecond)
		}
	}

	// waitSyncs waits until n syncs have begun (each reads the clock
	// before it calls sync).
	waitSyncs := func(n int32) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); syncs.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d syncs began, want %d", syncs.Load(), n)
			}
		}
	}

	clock.Store(10)
	waitingSince := now() // a lane finds its subscription unknown
	clock.Store(20)
	if v.after(ctx, waitingSince, log) {
		t.Fatal("gone before any sync")
	}
	waitSyncs(1)
	if v.after(ctx, waitingSince, log) {
		t.Fatal("gone while the first sync runs")
	}
	release <- errors.New("broker away")
	waitIdle()
	if syncs.Load() != 1 {
		t.Fatalf("%d syncs after two looks while one ran, want 1", syncs.Load())
	}
	if v.after(ctx, waitingSince, log) {
		t.Fatal("gone after a failed sync")
	}
	if got := logged.String(); !strings.Contains(got, "broker away") {
		t.Errorf("the failed sync logged %q, want its error", got)
	}
	// The failed one is tried again; this one began at 20 ms, after 10.
	waitSyncs(2)
	release <- nil
	waitIdle()
	if !v.after(ctx, waitingSince, log) {
		t.Fatal("still looking after a sync that began after the lane waited")
	}

	// A lane that began waiting when that sync began needs a newer one.
	clock.Store(20)
	later := now()
	if v.after(ctx, later, log) {
		t.Fatal("gone on a sync that began at the lane's own time, not after it")
	}
	waitSyncs(3) // it began at 20 ms too
	clock.Store(40)
	release <- nil
	waitIdle()
	if v.after(ctx, later, log) {
		t.Fatal("gone on a second sync that began at 20 ms")
	}
	waitSyncs(4) // at 40 ms
	release <- nil
	waitIdle()
	if !v.after(ctx, later, log) {
		t.Fatal("still looking after a sync that began at 40 ms")
	}
}
