package match

import (
	"context"
	"sync"
	"time"
)

// Fresh returns Matcher.Fresh over sync, a view's Sync (it returns once
// the view has read everything written to its topics before the call).
//
// A subscription created through the API is in Kafka before the API
// answers, but the matcher's index follows the subscriptions topic on its
// own and may be behind the events topic: an event sent right after the
// answer could be matched without its subscription, and never reach it.
// So before a batch is matched, the index is brought up to at least the
// newest event's time (the record's timestamp, set when ingest wrote it):
// a sync that started after that time has seen every subscription written
// before it. A batch of events older than the last sync (a backlog) needs
// none.
//
// A sync that started after a batch was fetched serves it too, whatever
// its events' times: they were in Kafka before the fetch, and their
// subscriptions before them. So the batches of all partitions that wait
// while one sync runs share the next one, instead of each queueing for a
// sync of its own.
//
// margin allows for the clocks of the machines that write events and run
// the matcher to differ by that much.
func Fresh(sync func(context.Context) error, margin time.Duration) func(context.Context, time.Time) error {
	f := &fresh{sync: sync, margin: margin, now: time.Now}
	return f.upTo
}

type fresh struct {
	sync    func(context.Context) error
	margin  time.Duration
	now     func() time.Time
	mu      sync.Mutex // one sync at a time; those waiting may not need theirs
	started time.Time  // when the last successful sync began (this clock)
	seen    time.Time  // every subscription written before it is in the index
}

// upTo returns once the index holds every subscription written before
// newest, or before the call (the batch was fetched before it).
func (f *fresh) upTo(ctx context.Context, newest time.Time) error {
	called := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if newest.Before(f.seen) || f.started.After(called) {
		return nil
	}
	started := f.now()
	if err := f.sync(ctx); err != nil {
		return err
	}
	f.started, f.seen = started, started.Add(-f.margin)
	return nil
}
