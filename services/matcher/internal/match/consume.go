package match

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/crashguard"
	"github.com/hookline/hookline/pkg/kafka"
)

// Commit produces records and commits the consumer's offsets through the
// last record of through in one Kafka transaction, returning once it is
// committed: kafka.Transactor.Commit, whose calls from several partitions
// at once share a transaction.
type Commit func(ctx context.Context, records []*kgo.Record, through ...*kgo.Record) error

// Handler is the matcher's consume-transform-produce over one partition's
// batches, as a kafka.Handler: it matches a batch and commits what the
// batch yields with the batch's offset in one transaction, or neither, so
// every event is matched exactly once into the committed deliveries. A
// reprocessed event yields the same delivery ids, so even without
// transactions a receiver can dedupe.
//
// Each partition has a worker of its own (kafka.Consumer), so the
// partitions use every core, and per-subject order carries over to the
// deliveries. Batches that several partitions finish at about the same
// time share one transaction (the Committer groups them), so the broker
// does one transaction's work for all of them; a lone event at a low
// rate is committed at once, without waiting for company. Under a steady
// load, when transactions are paced, a batch first gathers the events
// its partition fetches until shortly before the next transaction
// (Matcher.Gather), so that they join it rather than the one after.
//
// With a Guard, a batch that held offsets in flight when the process
// last died is matched one event after another, each marked in Redis
// before it is matched, while no other partition matches anything, so
// that a crash is charged to the one event running; an event that crashed
// the process Guard.Limit times goes to the rejected topic with the
// reason instead of being matched.
func (m *Matcher) Handler(commit Commit, log zerolog.Logger) kafka.Handler {
	h := &handler{m: m, commit: commit, log: log}
	return h.handle
}

type handler struct {
	m      *Matcher
	commit Commit
	log    zerolog.Logger
	// serial is held for reading while a batch is matched, and for
	// writing while a suspect batch is, one marked event at a time.
	serial sync.RWMutex
}

func (h *handler) handle(ctx context.Context, b kafka.Batch) error {
	m := h.m
	if m.Gather != nil {
		b = m.Gather(ctx, b)
	}
	span := crashguard.Span{Topic: b.Topic, Partition: b.Partition, First: b.Records[0].Offset, Last: b.Records[len(b.Records)-1].Offset}
	// The crash guard hears of the batch while the index catches up: the
	// two round trips (Redis, Kafka) overlap; matching waits for both.
	var guarded, suspect bool
	begun := make(chan struct{})
	go func() {
		defer close(begun)
		guarded, suspect = h.begin(ctx, span)
	}()
	if m.Fresh != nil {
		newest := b.Records[0].Timestamp
		for _, r := range b.Records[1:] {
			newest = maxTime(newest, r.Timestamp)
		}
		if err := m.Fresh(ctx, newest, b.Fetched); err != nil {
			<-begun
			if guarded {
				// Not matched: nothing was in flight.
				h.done(ctx, span)
			}
			// Matched now, an event could miss a subscription created
			// just before it: the consumer hands the batch back later.
			return fmt.Errorf("bring the subscriptions up to %s/%d's events: %w", b.Topic, b.Partition, err)
		}
	}
	<-begun
	var outs [][]*kgo.Record
	if suspect {
		h.log.Warn().Str("topic", b.Topic).Int32("partition", b.Partition).Int64("first", span.First).Int64("last", span.Last).
			Msg("a batch holds events in flight when the matcher last died; matching them one at a time")
		h.serial.Lock()
		outs = h.matchMarked(ctx, span, b.Records)
		h.serial.Unlock()
	} else {
		h.serial.RLock()
		outs = m.ProcessBatch(b.Records)
		h.serial.RUnlock()
	}
	records := slices.Concat(outs...)
	err := h.commit(ctx, records, b.Records[len(b.Records)-1])
	if guarded {
		// Committed or not, the process did not crash on the batch.
		h.done(ctx, span)
	}
	if err != nil {
		// The consumer hands the batch to the handler again, after a
		// backoff; the aborted transaction left nothing visible.
		return fmt.Errorf("commit %d deliveries of %s/%d, offsets %d-%d: %w", len(records), b.Topic, b.Partition, span.First, span.Last, err)
	}
	return nil
}

// begin tells the Guard about the batch: guarded when it knows (Done is
// owed), suspect when some of its offsets were in flight at a crash (a
// suspect batch is always guarded).
func (h *handler) begin(ctx context.Context, span crashguard.Span) (guarded, suspect bool) {
	if h.m.Guard == nil {
		return false, false
	}
	suspects, err := h.m.Guard.Begin(ctx, span)
	if err != nil {
		h.log.Warn().Err(err).Msg("crash guard unavailable; matching without it")
		return false, false
	}
	return true, suspects[0]
}

// done tells the Guard that the process did not crash on the batch.
func (h *handler) done(ctx context.Context, span crashguard.Span) {
	if err := h.m.Guard.Done(context.WithoutCancel(ctx), span); err != nil {
		h.log.Warn().Err(err).Msg("crash guard")
	}
}

// matchMarked matches the events of a suspect batch one after another,
// each marked first, and quarantines those that crashed the matcher
// Guard.Limit times.
func (h *handler) matchMarked(ctx context.Context, span crashguard.Span, recs []*kgo.Record) [][]*kgo.Record {
	var outs [][]*kgo.Record
	for _, r := range recs {
		outs = append(outs, h.matchOneMarked(ctx, span, r)...)
	}
	if err := h.m.Guard.Passed(ctx, span.Topic, span.Partition, span.First, span.Last); err != nil {
		h.log.Warn().Err(err).Str("topic", span.Topic).Int32("partition", span.Partition).Msg("crash guard")
	}
	return outs
}

// matchOneMarked matches one event of a suspect batch after marking it,
// or quarantines it when it crashed the matcher Guard.Limit times.
func (h *handler) matchOneMarked(ctx context.Context, span crashguard.Span, r *kgo.Record) [][]*kgo.Record {
	m := h.m
	plan, err := m.Guard.Next(ctx, span.Topic, span.Partition, r.Offset)
	if err != nil {
		h.log.Warn().Err(err).Str("topic", span.Topic).Int32("partition", span.Partition).Msg("crash guard unavailable; matching without it")
		return m.ProcessBatch([]*kgo.Record{r})
	}
	if plan.Quarantine {
		m.Metrics.quarantined()
		h.log.Error().Str("topic", span.Topic).Int32("partition", span.Partition).Int64("offset", r.Offset).
			Int("crashes", plan.Crashes).Msg("event quarantined to the rejected topic")
		return [][]*kgo.Record{{m.reject(r, errors.New(plan.Reason("matcher")))}}
	}
	return m.ProcessBatch([]*kgo.Record{r})
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
