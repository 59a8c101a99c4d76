// Package schedule releases deliveries from the retry tiers back to
// hookline.deliveries when they fall due. A tier's records arrive in the
// order they were scheduled, with nearly the same delay, so a partition
// whose head record is not yet due is paused until it is: no polling loop
// and no busy wait.
package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// HeaderError carries the reason on a record dead-lettered undecoded.
const HeaderError = "hookline-error"

// Scheduler is the retry service's kafka.Handler.
type Scheduler struct {
	Producer *kgo.Client
	Codecs   *record.Codecs
	Topics   kafka.Topics
	Log      zerolog.Logger
	Now      func() time.Time
	// Lateness observes how long after its due time each record was released.
	Lateness prometheus.Observer
}

// Handle releases a batch in order, waiting (paused) for each record's due
// time. If the partition is revoked while it waits, what was released so
// far is marked done and the rest is left for the next owner.
func (s *Scheduler) Handle(ctx context.Context, b kafka.Batch) error {
	var released *kgo.Record
	var pending []*kgo.Record
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := s.Producer.ProduceSync(context.WithoutCancel(ctx), pending...).FirstErr(); err != nil {
			return fmt.Errorf("release to %s: %w", s.Topics.Deliveries, err)
		}
		pending = pending[:0]
		if released != nil {
			b.Done(released)
		}
		return nil
	}
	for _, r := range b.Records {
		var d record.Delivery
		if err := s.Codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
			s.Log.Error().Err(err).Str("topic", r.Topic).Int64("offset", r.Offset).Msg("undecodable retry record dead-lettered")
			pending = append(pending, &kgo.Record{Topic: s.Topics.DLQ, Key: r.Key, Value: r.Value,
				Headers: append([]kgo.RecordHeader{{Key: HeaderError, Value: []byte(err.Error())}}, r.Headers...)})
			released = r
			continue
		}
		if d.DueAt != nil {
			if wait := d.DueAt.Sub(s.Now()); wait > 0 {
				if err := flush(); err != nil {
					return err
				}
				if !s.sleep(ctx, b, wait) {
					return ctx.Err()
				}
			}
			s.Lateness.Observe(max(s.Now().Sub(*d.DueAt), 0).Seconds())
		}
		d.DueAt = nil
		value, err := s.Codecs.Delivery.Marshal(&d)
		if err != nil {
			return err
		}
		pending = append(pending, &kgo.Record{Topic: s.Topics.Deliveries, Key: r.Key, Value: value, Headers: r.Headers, Context: r.Context})
		released = r
	}
	return flush()
}

// sleep pauses the partition for wait; false when ctx ended first.
func (s *Scheduler) sleep(ctx context.Context, b kafka.Batch, wait time.Duration) bool {
	b.Pause()
	defer b.Resume()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
