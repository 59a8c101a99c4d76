package match

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// endTimeout bounds a transaction, from its first record to its end,
	// and so how long a shutdown waits for the one in flight. It is the
	// transaction timeout of SessionOptions: the broker aborts a longer
	// transaction anyway.
	endTimeout = 10 * time.Second
	// pollRecords is the most events one transaction takes: enough that
	// committing costs little per event, few enough that a transaction
	// ends well within endTimeout on a busy machine.
	pollRecords = 10_000
)

// SessionOptions are the options of the matcher's transactional session on
// top of the client's connection options: exactly-once consume-transform-
// produce from topics (the events topic and the redeliveries topic) in
// group, as transactionalID.
func SessionOptions(topics []string, group, transactionalID string) []kgo.Opt {
	return []kgo.Opt{
		kgo.TransactionalID(transactionalID),
		kgo.TransactionTimeout(endTimeout),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
	}
}

// ErrSessionBroken is returned by Consume when its session can no longer
// be used and must be closed and made again.
var ErrSessionBroken = errors.New("transactional session broken")

// Consume runs consume-transform-produce in Kafka transactions: the
// deliveries of one poll and the offsets of the events they came from are
// committed together, or neither is. A reprocessed event yields the same
// delivery ids, so even without transactions a receiver can dedupe.
//
// The records of each partition in a poll are processed by their own
// goroutine (ProcessBatch) and what they yield is produced in their order,
// so per-subject order carries over to the deliveries while the partitions
// use every core. When ctx ends, the transaction in flight is still
// finished (for up to endTimeout) before Consume returns.
func (m *Matcher) Consume(ctx context.Context, sess *kgo.GroupTransactSession, log zerolog.Logger) error {
	for {
		fetches := sess.PollRecords(ctx, pollRecords)
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
			return fmt.Errorf("%w: begin transaction: %w", ErrSessionBroken, err)
		}
		endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
		commit := kgo.TryCommit
		if err := m.produce(endCtx, sess, fetches); err != nil {
			log.Error().Err(err).Msg("produce deliveries; aborting the transaction")
			commit = kgo.TryAbort
		}
		committed, err := sess.End(endCtx, commit)
		cancel()
		switch {
		case err != nil:
			// franz-go's session is unusable after a failed End (a broker
			// lost mid-commit, say): the caller makes a new one, whose
			// transactional id aborts what this one left open.
			return fmt.Errorf("%w: end transaction, the events will be read again: %w", ErrSessionBroken, err)
		case !committed:
			log.Warn().Msg("transaction aborted; the events will be read again")
		}
	}
}

// produce processes the records of one poll, a goroutine per partition,
// and produces what they yield; it returns once every record produced is
// acknowledged, with the first failure.
func (m *Matcher) produce(ctx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches) error {
	var (
		workers, acks sync.WaitGroup
		mu            sync.Mutex
		failed        error
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if failed == nil {
				failed = err
			}
			mu.Unlock()
		}
		acks.Done()
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		workers.Go(func() {
			for _, out := range m.ProcessBatch(p.Records) {
				for _, rec := range out {
					acks.Add(1)
					sess.Produce(ctx, rec, done)
				}
			}
		})
	})
	workers.Wait() // every acks.Add happened before
	acks.Wait()
	return failed
}
