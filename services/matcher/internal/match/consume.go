package match

import (
	"context"
	"errors"
	"sync"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/services/matcher/internal/index"
)

// Consume runs consume-transform-produce in Kafka transactions: the
// deliveries of one poll and the offsets of the events they came from are
// committed together, or neither is. A reprocessed event yields the same
// delivery ids, so even without transactions a receiver can dedupe.
func (m *Matcher) Consume(ctx context.Context, sess *kgo.GroupTransactSession, log zerolog.Logger) error {
	var buf []*index.Entry
	for {
		fetches := sess.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				log.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("fetch")
			}
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return err // only when a transaction is already open: a bug
		}
		var (
			mu      sync.Mutex
			failed  error
			pending sync.WaitGroup
		)
		done := func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
			pending.Done()
		}
		var recs []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			recs, buf = m.Process(r, buf)
			for _, out := range recs {
				pending.Add(1)
				sess.Produce(ctx, out, done)
			}
		})
		pending.Wait()
		commit := kgo.TryCommit
		if failed != nil {
			log.Error().Err(failed).Msg("produce deliveries; aborting the transaction")
			commit = kgo.TryAbort
		}
		committed, err := sess.End(ctx, commit)
		if err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("end transaction")
		} else if !committed && ctx.Err() == nil {
			log.Warn().Msg("transaction aborted; the events will be read again")
		}
	}
}
