// Package schedule releases deliveries from the retry tiers back to
// hookline.deliveries when they fall due. A tier's records arrive in the
// order they were scheduled, with nearly the same delay, so a partition
// whose head record is not yet due is paused until it is: no polling loop
// and no busy wait.
//
// Released records and the offsets of the tier records they came from are
// committed in one Kafka transaction (kafka.Transactor), so a scheduler
// killed at any point neither loses a delivery nor releases one twice:
// after a crash the next owner of the partition starts at the first record
// whose release was not committed. Records already due share a
// transaction for up to Linger, which bounds both the transaction rate and
// the lateness it adds.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// ReleaseFunc produces records and, atomically with them, marks the tier
// records up to through as consumed (kafka.Transactor.Commit).
type ReleaseFunc func(ctx context.Context, records []*kgo.Record, through ...*kgo.Record) error

const (
	// DefaultLinger is Linger's default: well inside the one-second
	// lateness budget, and few enough transactions at any load.
	DefaultLinger = 25 * time.Millisecond
	// pauseAfter is the shortest wait worth pausing the partition for;
	// shorter waits would only churn pause and resume.
	pauseAfter = 100 * time.Millisecond
	// maxPending bounds the records of one transaction.
	maxPending = 5000
)

// errStopping ends a batch whose partition was revoked mid-wait.
var errStopping = errors.New("partition stopping")

// Scheduler is the retry service's kafka.Handler.
type Scheduler struct {
	Release ReleaseFunc
	Codecs  *record.Codecs
	Topics  wire.Topics
	Log     zerolog.Logger
	Now     func() time.Time
	// Lateness observes how long after its due time each record's release
	// was committed.
	Lateness prometheus.Observer
	// Linger is how long a due record may wait for others to share its
	// transaction; DefaultLinger when zero.
	Linger time.Duration
}

// Handle releases a batch in order, waiting (paused) for each record's due
// time. If the partition is revoked while it waits, what is due is released
// and the rest is left for the next owner.
func (s *Scheduler) Handle(ctx context.Context, b kafka.Batch) error {
	linger := s.Linger
	if linger <= 0 {
		linger = DefaultLinger
	}
	var (
		pending []*kgo.Record
		dues    []time.Time // per pending record; zero when it had none
		last    *kgo.Record // the last tier record pending covers
		since   time.Time   // when the oldest pending record was ready
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := s.Release(ctx, pending, last); err != nil {
			return fmt.Errorf("release %d records from %s/%d: %w", len(pending), b.Topic, b.Partition, err)
		}
		now := s.Now()
		for _, due := range dues {
			if !due.IsZero() {
				s.Lateness.Observe(max(now.Sub(due), 0).Seconds())
			}
		}
		b.Done(last)
		pending, dues = nil, nil
		return nil
	}
	for _, r := range b.Records {
		out, due := s.output(r)
		for !due.IsZero() {
			now := s.Now()
			wait := due.Sub(now)
			if wait <= 0 {
				break
			}
			if len(pending) > 0 && now.Add(wait).Sub(since) > linger {
				if err := flush(); err != nil {
					return err
				}
			}
			if !s.sleep(ctx, b, wait) {
				if err := flush(); err != nil {
					return err
				}
				return errStopping
			}
		}
		if len(pending) == 0 {
			since = s.Now()
		}
		pending, dues, last = append(pending, out), append(dues, due), r
		if len(pending) >= maxPending {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// output is what r becomes: the delivery, due at due, for
// hookline.deliveries, or r itself for the DLQ when it cannot be decoded.
func (s *Scheduler) output(r *kgo.Record) (*kgo.Record, time.Time) {
	var d record.Delivery
	err := s.Codecs.Delivery.Unmarshal(r.Value, &d)
	var value []byte
	if err == nil {
		due := d.DueAt
		d.DueAt = nil
		if value, err = s.Codecs.Delivery.Marshal(&d); err == nil {
			out := &kgo.Record{Topic: s.Topics.Deliveries, Key: r.Key, Value: value, Headers: r.Headers, Context: r.Context}
			if due != nil {
				return out, *due
			}
			return out, time.Time{}
		}
	}
	s.Log.Error().Err(err).Str("topic", r.Topic).Int32("partition", r.Partition).Int64("offset", r.Offset).
		Msg("undecodable retry record dead-lettered")
	return wire.Divert(r, s.Topics.DLQ, err.Error()), time.Time{}
}

// sleep waits for wait, pausing the partition when the wait is long; false
// when the partition is revoked or the consumer stops first.
func (s *Scheduler) sleep(ctx context.Context, b kafka.Batch, wait time.Duration) bool {
	if wait >= pauseAfter {
		b.Pause()
		defer b.Resume()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.Stopping():
		return false
	case <-ctx.Done():
		return false
	}
}
