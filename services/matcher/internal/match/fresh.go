package match

import (
	"context"
	"time"

	"github.com/hookline/hookline/pkg/kafka"
)

// Fresh returns Matcher.Fresh over syncs, a view's shared syncs.
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
// A sync that started after a batch was fetched (kafka.Batch.Fetched)
// serves it too, whatever its events' times: they were in Kafka before
// the fetch, and their subscriptions before them. So the batches of all
// partitions share one sync when they come together (their handlers back
// from the same paced transaction, kafka.Transactor.Gather), and those
// that come while one runs share the next (kafka.Syncs), rather than each
// starting one of its own because it came a moment after the first began.
//
// margin allows for the clocks of the machines that write events and run
// the matcher to differ by that much.
func Fresh(syncs *kafka.Syncs, margin time.Duration) func(ctx context.Context, newest, fetched time.Time) error {
	return func(ctx context.Context, newest, fetched time.Time) error {
		if fetched.IsZero() {
			fetched = time.Now() // unknown: the batch was fetched before now
		}
		if newest.Before(syncs.Last().Add(-margin)) {
			return nil
		}
		return syncs.Wait(ctx, fetched)
	}
}
