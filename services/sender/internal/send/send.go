// Package send is the sender's kafka.Handler: for each batch of deliveries
// it skips those already delivered, holds each endpoint to its rate limit,
// makes the attempts with bounded concurrency (strict FIFO for ordered
// subscriptions), and writes every outcome to Kafka before the batch's
// offsets may be committed.
package send

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/subscription"
)

// HeaderError carries the reason on a record the sender dead-letters
// without being able to decode it.
const HeaderError = "hookline-error"

const (
	// DefaultRateLimitWait is the default of Sender.RateLimitWait.
	DefaultRateLimitWait = 2 * time.Second
	// viewLag is how long an unknown subscription is looked for before its
	// deliveries are dead-lettered: the matcher may see a new subscription
	// a moment before this sender's view does.
	viewLag = 3 * time.Second
	// defaultTimeout applies when a subscription sets none.
	defaultTimeout = 15 * time.Second
	// defaultMaxAttempts applies when a subscription sets none.
	defaultMaxAttempts = 8
)

// Sender holds the handler's dependencies.
type Sender struct {
	Client      *http.Client
	View        *subscription.View
	Codecs      *record.Codecs
	Topics      kafka.Topics
	Schedule    backoff.Schedule
	Producer    *kgo.Client
	Delivered   *idempotency.Store
	Limiter     *ratelimit.Limiter
	Health      *health.Tracker // nil: endpoint health is not tracked
	Box         *secretbox.Box
	PerEndpoint int           // concurrent attempts per endpoint when not ordered
	Slots       chan struct{} // its capacity bounds requests in flight across partitions
	Metrics     *Metrics
	Log         zerolog.Logger
	Now         func() time.Time
	// RateLimitWait is the longest a delivery waits in memory for its
	// endpoint's rate limit; beyond it, the delivery and the rest of its
	// endpoint's batch go through the retry scheduler, without counting an
	// attempt. It bounds how long a slow endpoint holds its partition.
	// Zero means DefaultRateLimitWait.
	RateLimitWait time.Duration
}

// errRevoked reports a batch left unfinished because its partition is
// being revoked.
var errRevoked = errors.New("partition revoked: the rest of the batch is left to its next owner")

type item struct {
	rec *kgo.Record
	d   record.Delivery
}

// outcome is what became of one item.
type outcome int

const (
	handled   outcome = iota // written on: delivery log, retry tier or DLQ
	delivered                // handled, and the endpoint took it
	abandoned                // ctx ended or the partition was revoked first: nothing written, the batch must not be committed
)

// Handle processes one partition's batch. It returns nil once every
// record's outcome is acknowledged by Kafka. On error the batch is retried
// (by the consumer loop, or by the partition's next owner); deliveries the
// endpoints already took are marked in Redis first so they are not sent
// twice. When the partition is revoked, attempts under way finish (until
// ctx ends) and no new one starts.
func (s *Sender) Handle(ctx context.Context, b kafka.Batch) error {
	items, poison := s.decode(b.Records)
	items, err := s.skipDelivered(ctx, items)
	if err != nil {
		// Without the marks a redelivered batch would be sent again: wait
		// for Redis rather than degrade. Nothing was sent or written yet.
		s.Metrics.RedisErrors.Inc()
		return fmt.Errorf("check delivered marks, batch retried until Redis answers: %w", err)
	}
	// An attempt that was made is written even if ctx ends meanwhile.
	out := &outbox{producer: s.Producer, ctx: context.WithoutCancel(ctx)}
	for _, r := range poison {
		out.produce(r)
	}
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		done       []string
		incomplete bool
	)
	for _, group := range bySubscription(items) {
		wg.Go(func() {
			ids, complete := s.deliverTo(ctx, b.Stopping(), group, out)
			mu.Lock()
			done = append(done, ids...)
			incomplete = incomplete || !complete
			mu.Unlock()
		})
	}
	wg.Wait()
	err = out.wait()
	s.mark(context.WithoutCancel(ctx), done)
	switch {
	case err != nil:
		return fmt.Errorf("produce outcomes: %w", err)
	case incomplete && ctx.Err() != nil:
		return fmt.Errorf("batch interrupted: %w", context.Cause(ctx))
	case incomplete:
		return errRevoked
	}
	return nil
}

// decode splits a batch into deliveries and dead-letter records for what
// cannot be decoded.
func (s *Sender) decode(recs []*kgo.Record) (items []*item, poison []*kgo.Record) {
	items = make([]*item, 0, len(recs))
	for _, r := range recs {
		it := &item{rec: r}
		if err := s.Codecs.Delivery.Unmarshal(r.Value, &it.d); err != nil {
			s.Log.Error().Err(err).Int32("partition", r.Partition).Int64("offset", r.Offset).Msg("undecodable delivery dead-lettered")
			poison = append(poison, &kgo.Record{Topic: s.Topics.DLQ, Key: r.Key, Value: r.Value,
				Headers: append([]kgo.RecordHeader{{Key: HeaderError, Value: []byte(err.Error())}}, r.Headers...)})
			continue
		}
		items = append(items, it)
	}
	return items, poison
}

// skipDelivered drops deliveries already marked delivered, in one round
// trip for the batch, and repeats of a delivery within the batch.
func (s *Sender) skipDelivered(ctx context.Context, items []*item) ([]*item, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.d.ID
	}
	marked, err := s.Delivered.Marked(ctx, ids)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(items))
	kept := items[:0]
	for i, it := range items {
		if marked[i] || seen[it.d.ID] {
			s.Metrics.Suppressed.Inc()
			continue
		}
		seen[it.d.ID] = true
		kept = append(kept, it)
	}
	return kept, nil
}

// mark remembers what the endpoints took. If Redis fails, everything is
// still sent and logged; only the guard against sending it again on a
// redelivery is missing, so count it, say so and go on.
func (s *Sender) mark(ctx context.Context, ids []string) {
	if err := s.Delivered.Mark(ctx, ids...); err != nil {
		s.Metrics.RedisErrors.Inc()
		s.Log.Warn().Err(err).Int("deliveries", len(ids)).Msg("could not mark deliveries as delivered")
	}
}

// bySubscription groups items by subscription, in batch order.
func bySubscription(items []*item) [][]*item {
	var groups [][]*item
	index := map[string]int{}
	for _, it := range items {
		i, ok := index[it.d.SubscriptionID]
		if !ok {
			i = len(groups)
			index[it.d.SubscriptionID] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], it)
	}
	return groups
}
