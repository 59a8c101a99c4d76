package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// viewSyncTimeout bounds one sync of the subscriptions view; a failed one
// is tried again at the next look (a partition's tick).
const viewSyncTimeout = 10 * time.Second

// viewSync tells the lanes waiting for a subscription the view does not
// know whether it is deleted, rather than created a moment ago and not
// read yet. Every delivery is written after its subscription (the matcher
// and ingest make deliveries only of subscriptions their own views hold),
// so once a sync of the view that began after a delivery was taken has
// ended, a subscription still unknown is gone: its deliveries are
// dead-lettered. A fixed wait instead (it was 3 s) dead-lettered the first
// deliveries of new subscriptions whenever the view fell further behind,
// under load. One sync runs at a time; the lanes of every partition that
// wait meanwhile share the next.
type viewSync struct {
	sync func(context.Context) error // subscription.View.Sync
	now  func() time.Time

	mu      sync.Mutex
	running bool
	synced  time.Time // when the last successful sync began
}

// after reports whether a sync that began after since has ended; if not,
// it starts one unless one is under way, and the caller looks again later.
// ctx bounds a sync it starts; log reports one that fails.
func (v *viewSync) after(ctx context.Context, since time.Time, log zerolog.Logger) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.synced.After(since) {
		return true
	}
	if !v.running {
		v.running = true
		go v.run(ctx, log)
	}
	return false
}

func (v *viewSync) run(ctx context.Context, log zerolog.Logger) {
	started := v.now()
	syncCtx, cancel := context.WithTimeout(ctx, viewSyncTimeout)
	err := v.sync(syncCtx)
	cancel()
	v.mu.Lock()
	v.running = false
	if err == nil {
		v.synced = started
	}
	v.mu.Unlock()
	if err != nil && ctx.Err() == nil { // not the partition stopping
		log.Warn().Err(err).Msg("subscriptions view: sync failed; deliveries of unknown subscriptions wait")
	}
}
