// Package history fills the delivery history (a logstore) from Kafka: the
// events as received (hookline.events), the deliveries and their payloads
// (hookline.deliveries), the dead letters (hookline.dlq) and every attempt
// (hookline.delivery-log).
//
// Each partition's handler converts its records and hands them to one
// write loop, which gathers the records of every partition into batches
// of up to MaxBatch (waiting up to Linger for more) and writes each batch
// in one transaction; a handler returns, and its offsets may be committed,
// only once its records are durable. A write that fails because the
// database is unavailable fails every handler in it, which the consumer
// runs again with backoff: the service pauses, holding its offsets, and
// catches up when the database is back. Writes are idempotent, so what is
// read twice is stored once.
package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// Defaults of Writer's tuning.
const (
	// DefaultMaxBatch bounds one write: large enough that a transaction's
	// fixed cost (a round trip per table, the commit's fsync) is shared by
	// thousands of rows, small enough that a batch's arrays stay a few MB.
	DefaultMaxBatch = 5000
	// DefaultLinger is how long a write waits for more records once it has
	// some: the history is a view for people, a tenth of a second late is
	// nothing, and under load batches fill long before.
	DefaultLinger = 100 * time.Millisecond
	// DefaultWriters is how many batches are written at once: one fills
	// while another commits, and PostgreSQL works on two cores.
	DefaultWriters = 2
)

// Writer fills a store from the partitions of the history's topics.
type Writer struct {
	Store    logstore.Writer
	Codecs   *record.Codecs
	Topics   wire.Topics
	Producer *kgo.Client // writes what cannot be stored to the rejected topic
	Metrics  *Metrics
	Log      zerolog.Logger
	MaxBatch int           // records per write; DefaultMaxBatch when 0
	Linger   time.Duration // DefaultLinger when 0
	Writers  int           // DefaultWriters when 0

	once sync.Once
	subs chan *submission
	up   sync.Mutex // guards down
	down bool       // the last write failed for want of the database
}

// submission is one partition handler's records, waiting to be written.
type submission struct {
	batch  logstore.Batch
	topic  string
	latest time.Time // the newest record's timestamp
	done   chan error
}

func (w *Writer) init() {
	w.once.Do(func() {
		if w.MaxBatch <= 0 {
			w.MaxBatch = DefaultMaxBatch
		}
		if w.Linger <= 0 {
			w.Linger = DefaultLinger
		}
		if w.Writers <= 0 {
			w.Writers = DefaultWriters
		}
		w.subs = make(chan *submission)
	})
}

// Topics lists what the writer reads.
func Topics(t wire.Topics) []string {
	return []string{t.Events, t.Deliveries, t.DLQ, t.DeliveryLog}
}

// Handle is the kafka.Handler of one partition's batch: it returns nil
// once the batch's records are durable in the store (or diverted).
func (w *Writer) Handle(ctx context.Context, b kafka.Batch) error {
	w.init()
	conv := converter{codecs: w.Codecs, topics: w.Topics}
	sub := &submission{topic: b.Topic, done: make(chan error, 1)}
	var poison []*kgo.Record
	for _, r := range b.Records {
		skip, err := conv.add(&sub.batch, r)
		switch {
		case skip:
		case err != nil && r.Topic == w.Topics.DLQ:
			// The DLQ also holds deliveries the sender could not decode,
			// as they came: dead letters already, not history.
			w.Metrics.Skipped.WithLabelValues(r.Topic).Inc()
			w.Log.Warn().Err(err).Int32("partition", r.Partition).Int64("offset", r.Offset).Msg("undecodable dead letter not stored")
		case err != nil:
			poison = append(poison, wire.Divert(r, w.Topics.IngestRejected, reason(err)))
		}
		if r.Timestamp.After(sub.latest) {
			sub.latest = r.Timestamp
		}
	}
	if len(poison) > 0 {
		if err := w.Producer.ProduceSync(ctx, poison...).FirstErr(); err != nil {
			return fmt.Errorf("divert %d records of %s: %w", len(poison), b.Topic, err)
		}
		w.Metrics.Diverted.WithLabelValues(b.Topic).Add(float64(len(poison)))
	}
	if sub.batch.Len() == 0 {
		return nil
	}
	select {
	case w.subs <- sub:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-sub.done:
		return err
	case <-ctx.Done():
		// The write may still succeed; if it does, the next owner of the
		// partition writes the same records again, which stores nothing.
		return ctx.Err()
	}
}

// Run gathers the handlers' records into batches and writes them until
// ctx ends, then waits for the writes in flight.
func (w *Writer) Run(ctx context.Context) error {
	w.init()
	slots := make(chan struct{}, w.Writers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var subs []*submission
		select {
		case <-ctx.Done():
			return nil
		case s := <-w.subs:
			subs = append(subs, s)
		}
		n := subs[0].batch.Len()
		linger := time.NewTimer(w.Linger)
	gather:
		for n < w.MaxBatch {
			select {
			case s := <-w.subs:
				subs = append(subs, s)
				n += s.batch.Len()
			case <-linger.C:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
		linger.Stop()
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			fail(subs, ctx.Err())
			return nil
		}
		wg.Go(func() {
			defer func() { <-slots }()
			w.write(ctx, subs)
		})
	}
}

// write stores the submissions' records in one batch and tells each
// handler how it went.
func (w *Writer) write(ctx context.Context, subs []*submission) {
	var b logstore.Batch
	for _, s := range subs {
		b.Events = append(b.Events, s.batch.Events...)
		b.Deliveries = append(b.Deliveries, s.batch.Deliveries...)
		b.Attempts = append(b.Attempts, s.batch.Attempts...)
	}
	// Not cut short by a shutdown: a write begun is finished, so that the
	// handlers waiting for it can return before the consumer commits.
	started := time.Now()
	res, err := w.Store.Write(context.WithoutCancel(ctx), b)
	w.Metrics.WriteSeconds.Observe(time.Since(started).Seconds())
	w.health(err)
	if err != nil {
		w.Metrics.WriteFailures.Inc()
		if !errors.Is(err, logstore.ErrUnavailable) {
			w.Log.Error().Err(err).Int("records", b.Len()).Msg("history write failed")
		}
		fail(subs, fmt.Errorf("write %d records: %w", b.Len(), err))
		return
	}
	w.Metrics.BatchRecords.Observe(float64(b.Len()))
	w.Metrics.Rows.WithLabelValues("events").Add(float64(res.Events))
	w.Metrics.Rows.WithLabelValues("deliveries").Add(float64(res.Deliveries))
	w.Metrics.Rows.WithLabelValues("attempts").Add(float64(res.Attempts))
	w.Metrics.Expired.Add(float64(res.Expired))
	for _, s := range subs {
		w.Metrics.Records.WithLabelValues(s.topic).Add(float64(s.batch.Len()))
		w.Metrics.written(s.topic, s.latest)
		s.done <- nil
	}
}

// health logs the database going away and coming back, once each.
func (w *Writer) health(err error) {
	unavailable := errors.Is(err, logstore.ErrUnavailable)
	w.up.Lock()
	was := w.down
	w.down = unavailable
	w.up.Unlock()
	switch {
	case unavailable && !was:
		w.Metrics.StoreUp.Set(0)
		w.Log.Warn().Err(err).Msg("the history's database is unavailable; pausing, offsets held, until it is back")
	case !unavailable && was:
		w.Metrics.StoreUp.Set(1)
		w.Log.Info().Msg("the history's database is back; catching up")
	case err == nil:
		w.Metrics.StoreUp.Set(1)
	}
}

// Ready is /readyz: not ready while the database is unavailable.
func (w *Writer) Ready() error {
	w.up.Lock()
	defer w.up.Unlock()
	if w.down {
		return errors.New("the history's database is unavailable")
	}
	return nil
}

func fail(subs []*submission, err error) {
	for _, s := range subs {
		s.done <- err
	}
}
