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
	"github.com/hookline/hookline/pkg/kafka"
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
		// The next transaction begins as soon as the last one ended,
		// while the coordinator may still be writing its markers: the
		// broker answers CONCURRENT_TRANSACTIONS, and franz-go's 20 ms
		// default backoff became the matcher's latency tail (issue 18).
		kgo.ConcurrentTransactionsBackoff(kafka.TxnBackoff),
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
//
// With a Guard, a poll that holds offsets in flight when the process last
// died is processed one event after another, each marked in Redis before
// it is matched, and an event that crashed the process Guard.Limit times
// goes to the rejected topic with the reason instead of being matched.
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
		batches, suspect := m.begin(endCtx, fetches, log)
		if suspect {
			log.Warn().Msg("a poll holds events in flight when the matcher last died; matching them one at a time")
		}
		if err := m.produce(endCtx, sess, batches, suspect, log); err != nil {
			log.Error().Err(err).Msg("produce deliveries; aborting the transaction")
			commit = kgo.TryAbort
		}
		committed, err := sess.End(endCtx, commit)
		m.done(endCtx, batches, log)
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

// batch is one partition's records of a poll and what the Guard knows of
// them.
type batch struct {
	topic     string
	partition int32
	records   []*kgo.Record
	guarded   bool // Begin succeeded: Done is owed
}

// begin tells the Guard about every partition's records of a poll; true
// when some were in flight at a crash, so that the poll is matched one
// event at a time.
func (m *Matcher) begin(ctx context.Context, fetches kgo.Fetches, log zerolog.Logger) ([]*batch, bool) {
	var out []*batch
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			out = append(out, &batch{topic: p.Topic, partition: p.Partition, records: p.Records})
		}
	})
	if m.Guard == nil || len(out) == 0 {
		return out, false
	}
	suspects, err := m.Guard.Begin(ctx, spans(out)...)
	if err != nil {
		log.Warn().Err(err).Msg("crash guard unavailable; matching without it")
		return out, false
	}
	suspect := false
	for i, b := range out {
		b.guarded = true
		suspect = suspect || suspects[i]
	}
	return out, suspect
}

// spans are the batches as the Guard counts them.
func spans(batches []*batch) []crashguard.Span {
	out := make([]crashguard.Span, len(batches))
	for i, b := range batches {
		out[i] = crashguard.Span{Topic: b.topic, Partition: b.partition, First: b.records[0].Offset, Last: b.records[len(b.records)-1].Offset}
	}
	return out
}

// done tells the Guard that the poll's batches ended, committed or not:
// either way the process did not crash on them.
func (m *Matcher) done(ctx context.Context, batches []*batch, log zerolog.Logger) {
	if m.Guard == nil || len(batches) == 0 || !batches[0].guarded {
		return
	}
	if err := m.Guard.Done(ctx, spans(batches)...); err != nil {
		log.Warn().Err(err).Msg("crash guard")
	}
}

// produce processes the batches of one poll and produces what they yield;
// it returns once every record produced is acknowledged, with the first
// failure. Normally each partition's batch has a goroutine of its own.
// In a suspect poll the events are matched one after another, all
// partitions in one goroutine, each marked first, so that a crash points
// at the one event in flight; a quarantined event goes to the rejected
// topic instead of being matched.
func (m *Matcher) produce(ctx context.Context, sess *kgo.GroupTransactSession, batches []*batch, suspect bool, log zerolog.Logger) error {
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
	emit := func(outs [][]*kgo.Record) {
		for _, out := range outs {
			for _, rec := range out {
				acks.Add(1)
				sess.Produce(ctx, rec, done)
			}
		}
	}
	if suspect {
		for _, b := range batches {
			for _, r := range b.records {
				emit(m.processMarked(ctx, b, r, log))
			}
			if b.guarded {
				first, last := b.records[0].Offset, b.records[len(b.records)-1].Offset
				if err := m.Guard.Passed(ctx, b.topic, b.partition, first, last); err != nil {
					log.Warn().Err(err).Str("topic", b.topic).Int32("partition", b.partition).Msg("crash guard")
				}
			}
		}
	} else {
		for _, b := range batches {
			workers.Go(func() { emit(m.ProcessBatch(b.records)) })
		}
	}
	workers.Wait() // every acks.Add happened before
	acks.Wait()
	return failed
}

// processMarked matches one event of a suspect poll after marking it, or
// quarantines it when it crashed the matcher Guard.Limit times.
func (m *Matcher) processMarked(ctx context.Context, b *batch, r *kgo.Record, log zerolog.Logger) [][]*kgo.Record {
	if !b.guarded {
		return m.ProcessBatch([]*kgo.Record{r})
	}
	plan, err := m.Guard.Next(ctx, b.topic, b.partition, r.Offset)
	if err != nil {
		log.Warn().Err(err).Str("topic", b.topic).Int32("partition", b.partition).Msg("crash guard unavailable; matching without it")
		return m.ProcessBatch([]*kgo.Record{r})
	}
	if plan.Quarantine {
		m.Metrics.quarantined()
		log.Error().Str("topic", b.topic).Int32("partition", b.partition).Int64("offset", r.Offset).
			Int("crashes", plan.Crashes).Msg("event quarantined to the rejected topic")
		return [][]*kgo.Record{{m.reject(r, errors.New(plan.Reason("matcher")))}}
	}
	return m.ProcessBatch([]*kgo.Record{r})
}
