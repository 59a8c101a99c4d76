package match

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/crashguard"
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
// produce from the events topic in group, as transactionalID.
func SessionOptions(eventsTopic, group, transactionalID string) []kgo.Opt {
	return []kgo.Opt{
		kgo.TransactionalID(transactionalID),
		kgo.TransactionTimeout(endTimeout),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(eventsTopic),
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
//
// With a Guard, a poll that holds offsets in flight when the process last
// died is aborted and read again one record per transaction, and a record
// that crashed the process Guard.Limit times goes to the rejected topic
// with the reason instead of being matched again.
func (m *Matcher) Consume(ctx context.Context, sess *kgo.GroupTransactSession, log zerolog.Logger) error {
	for {
		n := pollRecords
		if m.Guard != nil && m.Guard.Isolating() {
			n = 1
		}
		fetches := sess.PollRecords(ctx, n)
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
		batches, isolate := m.begin(endCtx, fetches, log)
		if isolate {
			// Abort before producing anything: the session rewinds to the
			// committed offsets and the next polls take one record each.
			log.Warn().Msg("a poll holds records in flight when the matcher last died; reading them again one at a time")
			commit = kgo.TryAbort
		} else if err := m.produce(endCtx, sess, batches); err != nil {
			log.Error().Err(err).Msg("produce deliveries; aborting the transaction")
			commit = kgo.TryAbort
		}
		committed, err := sess.End(endCtx, commit)
		m.done(endCtx, batches, committed && err == nil, log)
		cancel()
		switch {
		case err != nil:
			// franz-go's session is unusable after a failed End (a broker
			// lost mid-commit, say): the caller makes a new one, whose
			// transactional id aborts what this one left open.
			return fmt.Errorf("%w: end transaction, the events will be read again: %w", ErrSessionBroken, err)
		case !committed && !isolate:
			log.Warn().Msg("transaction aborted; the events will be read again")
		}
	}
}

// batch is one partition's records of a poll and what the Guard decided
// for them.
type batch struct {
	topic     string
	partition int32
	records   []*kgo.Record
	plan      crashguard.Plan
	guarded   bool // Begin succeeded: Done is owed
}

// begin tells the Guard about every partition's records of a poll; true
// when some must be read again one at a time.
func (m *Matcher) begin(ctx context.Context, fetches kgo.Fetches, log zerolog.Logger) ([]*batch, bool) {
	var (
		out     []*batch
		isolate bool
	)
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		b := &batch{topic: p.Topic, partition: p.Partition, records: p.Records}
		out = append(out, b)
		if m.Guard == nil {
			return
		}
		first, last := p.Records[0].Offset, p.Records[len(p.Records)-1].Offset
		plan, err := m.Guard.Begin(ctx, p.Topic, p.Partition, first, last)
		if err != nil {
			log.Warn().Err(err).Str("topic", p.Topic).Int32("partition", p.Partition).Msg("crash guard unavailable; matching without it")
			return
		}
		b.plan, b.guarded = plan, !plan.Isolate
		isolate = isolate || plan.Isolate
	})
	return out, isolate
}

// done tells the Guard that the poll's batches ended, committed or not.
func (m *Matcher) done(ctx context.Context, batches []*batch, committed bool, log zerolog.Logger) {
	for _, b := range batches {
		if !b.guarded {
			continue
		}
		first, last := b.records[0].Offset, b.records[len(b.records)-1].Offset
		if err := m.Guard.Done(ctx, b.topic, b.partition, first, last, committed); err != nil {
			log.Warn().Err(err).Str("topic", b.topic).Int32("partition", b.partition).Msg("crash guard")
		}
	}
}

// produce processes the batches of one poll, a goroutine per partition,
// and produces what they yield; it returns once every record produced is
// acknowledged, with the first failure. A quarantined record goes to the
// rejected topic instead of being matched.
func (m *Matcher) produce(ctx context.Context, sess *kgo.GroupTransactSession, batches []*batch) error {
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
	for _, b := range batches {
		workers.Go(func() {
			var outs [][]*kgo.Record
			if b.plan.Quarantine {
				m.Metrics.quarantined()
				outs = [][]*kgo.Record{{m.reject(b.records[0], errors.New(b.plan.Reason("matcher")))}}
			} else {
				outs = m.ProcessBatch(b.records)
			}
			for _, out := range outs {
				for _, rec := range out {
					acks.Add(1)
					sess.Produce(ctx, rec, done)
				}
			}
		})
	}
	workers.Wait() // every acks.Add happened before
	acks.Wait()
	return failed
}
