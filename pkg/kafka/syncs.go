package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// SyncTimeout bounds one sync that Syncs runs.
const SyncTimeout = 10 * time.Second

// Syncs shares the syncs of a view (Reader.Sync: read everything written
// to the view's topics before the call) among the goroutines that need
// one. Each needs a sync that began after some moment: the matcher after
// it fetched a batch of events, the sender after it found a delivery's
// subscription unknown. Everything written before that moment is in the
// view once such a sync has ended. One sync runs at a time, and all who
// wait while it runs share the next one, instead of queueing for a sync
// each.
//
// The syncs run on their own goroutine, bounded by SyncTimeout, so that a
// caller that stops waiting (Wait's ctx ends) or never waits (Poll) does
// not cut short a sync others share. A failed sync is logged and counts
// for nothing: the next look starts another.
type Syncs struct {
	sync func(context.Context) error
	now  func() time.Time
	log  zerolog.Logger

	mu     sync.Mutex
	run    *syncRun  // the sync under way, nil when none
	synced time.Time // when the last successful sync began
}

type syncRun struct {
	started time.Time
	done    chan struct{}
	err     error // set before done is closed
}

// NewSyncs returns the shared syncs of sync (a view's Sync); log reports
// the ones that fail.
func NewSyncs(sync func(context.Context) error, log zerolog.Logger) *Syncs {
	return &Syncs{sync: sync, now: time.Now, log: log}
}

// Last returns when the last successful sync began (zero before one).
func (s *Syncs) Last() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// Poll reports whether a sync that began after t has ended. If not, it
// starts one unless one is under way, and the caller looks again later.
func (s *Syncs) Poll(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.synced.After(t) {
		return true
	}
	s.currentLocked()
	return false
}

// Wait returns once a sync that began after t (a moment the caller has
// passed) has ended: nil when it succeeded, its error when it failed, or
// ctx's error when ctx ends first.
func (s *Syncs) Wait(ctx context.Context, t time.Time) error {
	s.mu.Lock()
	if s.synced.After(t) {
		s.mu.Unlock()
		return nil
	}
	running := s.run != nil
	r := s.currentLocked()
	s.mu.Unlock()
	if running && !r.started.After(t) {
		// It began before the caller's moment. The one after it begins
		// only once it has ended, after the moment.
		if err := r.wait(ctx); ctx.Err() != nil {
			return err
		}
		s.mu.Lock()
		if s.synced.After(t) {
			s.mu.Unlock()
			return nil
		}
		r = s.currentLocked()
		s.mu.Unlock()
	}
	// r is one the caller started or that began after t.
	return r.wait(ctx)
}

// currentLocked returns the sync under way, starting one when none is.
func (s *Syncs) currentLocked() *syncRun {
	if s.run == nil {
		r := &syncRun{started: s.now(), done: make(chan struct{})}
		s.run = r
		go s.do(r)
	}
	return s.run
}

func (s *Syncs) do(r *syncRun) {
	ctx, cancel := context.WithTimeout(context.Background(), SyncTimeout)
	err := s.sync(ctx)
	cancel()
	s.mu.Lock()
	s.run = nil
	if err == nil {
		s.synced = r.started
	}
	r.err = err
	close(r.done)
	s.mu.Unlock()
	if err != nil {
		s.log.Warn().Err(err).Msg("sync of the view failed; whoever waits for one waits for the next")
	}
}

func (r *syncRun) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
