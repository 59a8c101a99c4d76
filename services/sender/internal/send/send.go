// Package send is the sender's kafka.Handler: for each batch of deliveries
// it skips those already delivered, holds each endpoint to its rate limit,
// makes the attempts with bounded concurrency (strict FIFO for ordered
// subscriptions), and writes every outcome to Kafka before the batch's
// offsets may be committed.
package send

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/telemetry"
	"github.com/hookline/hookline/services/sender/internal/deliver"
)

// HeaderError carries the reason on a record the sender dead-letters
// without being able to decode it.
const HeaderError = "hookline-error"

// maxInMemoryWait is the longest a rate-limited delivery waits in memory;
// longer waits go through the retry scheduler.
const maxInMemoryWait = 2 * time.Second

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
	Box         *secretbox.Box
	PerEndpoint int // concurrent attempts per endpoint when not ordered
	Slots       chan struct{}
	Metrics     *Metrics
	Log         zerolog.Logger
	Now         func() time.Time
}

type item struct {
	rec *kgo.Record
	d   record.Delivery
}

// Handle processes one partition's batch.
func (s *Sender) Handle(ctx context.Context, b kafka.Batch) error {
	out := &outbox{producer: s.Producer}
	items := make([]*item, 0, len(b.Records))
	for _, r := range b.Records {
		it := &item{rec: r}
		if err := s.Codecs.Delivery.Unmarshal(r.Value, &it.d); err != nil {
			s.Log.Error().Err(err).Int64("offset", r.Offset).Msg("undecodable delivery dead-lettered")
			out.produce(ctx, &kgo.Record{Topic: s.Topics.DLQ, Key: r.Key, Value: r.Value,
				Headers: append([]kgo.RecordHeader{{Key: HeaderError, Value: []byte(err.Error())}}, r.Headers...)})
			continue
		}
		items = append(items, it)
	}
	items, err := s.skipDelivered(ctx, items)
	if err != nil {
		s.Metrics.RedisErrors.Inc()
		return err // the batch is retried: nothing was sent
	}

	var groups [][]*item
	bySub := map[string]int{}
	for _, it := range items {
		i, ok := bySub[it.d.SubscriptionID]
		if !ok {
			i = len(groups)
			bySub[it.d.SubscriptionID] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], it)
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		delivered []string
	)
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := s.endpoint(ctx, g, out)
			mu.Lock()
			delivered = append(delivered, ids...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := out.wait(); err != nil {
		return fmt.Errorf("produce outcomes: %w", err)
	}
	if err := s.Delivered.Mark(ctx, delivered...); err != nil {
		// Everything is sent and logged; only the duplicate guard for a
		// later redelivery is missing. Count it and go on.
		s.Metrics.RedisErrors.Inc()
		s.Log.Warn().Err(err).Int("deliveries", len(delivered)).Msg("could not mark deliveries as delivered")
	}
	return nil
}

// skipDelivered drops deliveries already marked delivered, in one round
// trip for the batch.
func (s *Sender) skipDelivered(ctx context.Context, items []*item) ([]*item, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.d.ID
	}
	done, err := s.Delivered.Marked(ctx, ids)
	if err != nil {
		return nil, err
	}
	kept := items[:0]
	for i, it := range items {
		if done[i] {
			s.Metrics.Suppressed.Inc()
			continue
		}
		kept = append(kept, it)
	}
	return kept, nil
}

// endpoint delivers one subscription's items: in order, one at a time, when
// the subscription is ordered; otherwise up to PerEndpoint at once.
func (s *Sender) endpoint(ctx context.Context, items []*item, out *outbox) (delivered []string) {
	sub, ok := s.View.Get(items[0].d.SubscriptionID)
	if !ok || !sub.Enabled {
		reason := "subscription deleted"
		if ok {
			reason = "subscription disabled: " + sub.DisabledReason
		}
		for _, it := range items {
			s.deadLetter(ctx, it, reason, out)
		}
		return nil
	}
	parallel := s.PerEndpoint
	if sub.Ordered {
		parallel = 1
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(parallel, 1))
	)
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if s.attempt(ctx, sub, it, out) {
				mu.Lock()
				delivered = append(delivered, it.d.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return delivered
}

// attempt makes one attempt (after the rate limit admits it) and writes
// its outcome. It reports whether the delivery succeeded.
func (s *Sender) attempt(ctx context.Context, sub *record.Subscription, it *item, out *outbox) bool {
	if sub.RateLimitPerSecond > 0 && !s.admit(ctx, sub, it, out) {
		return false
	}
	req, err := s.request(sub, it)
	if err != nil {
		s.deadLetter(ctx, it, err.Error(), out)
		return false
	}
	s.Slots <- struct{}{}
	s.Metrics.InFlight.Inc()
	now := s.Now()
	res := deliver.Send(ctx, s.Client, req, now)
	s.Metrics.InFlight.Dec()
	<-s.Slots
	s.Metrics.Duration.WithLabelValues(res.Class.String()).Observe(res.Duration.Seconds())
	s.record(ctx, sub, it, res, now, out)
	return res.Class == deliver.Delivered
}

// admit waits for the endpoint's rate limit. A short wait happens here; a
// long one hands the delivery to the retry scheduler without counting an
// attempt. If Redis fails, the limit is not enforced (and that is counted)
// rather than stopping deliveries.
func (s *Sender) admit(ctx context.Context, sub *record.Subscription, it *item, out *outbox) bool {
	for {
		wait, err := s.Limiter.Allow(ctx, sub.ID, int(sub.RateLimitPerSecond))
		if err != nil {
			s.Metrics.RedisErrors.Inc()
			s.Log.Warn().Err(err).Str("subscription", sub.ID).Msg("rate limit unavailable; sending unlimited")
			return true
		}
		if wait == 0 {
			return true
		}
		s.Metrics.RateLimited.Inc()
		if wait > maxInMemoryWait {
			d := it.d
			due := s.Now().Add(wait)
			d.DueAt = &due
			tier, _ := s.Schedule.Next(1, wait)
			s.emit(ctx, out, s.Topics.Retry(tier), &d)
			return false
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
	}
}

// request builds the attempt from the subscription's current settings.
func (s *Sender) request(sub *record.Subscription, it *item) (deliver.Request, error) {
	req := deliver.Request{
		URL:     it.d.URL,
		ID:      it.d.ID,
		Body:    []byte(it.d.Payload),
		Headers: sub.Headers,
		Timeout: time.Duration(sub.TimeoutMS) * time.Millisecond,
	}
	if ctx := it.rec.Context; ctx != nil {
		req.Propagate = func(h http.Header) { telemetry.Propagator.Inject(ctx, propagation.HeaderCarrier(h)) }
	}
	now := s.Now()
	for _, sec := range sub.Secrets {
		if sec.ExpiresAt != nil && !sec.ExpiresAt.After(now) {
			continue
		}
		raw, err := s.Box.Open(sec.Sealed, []byte(sub.ID))
		if err != nil {
			return req, fmt.Errorf("signing secret of %s cannot be opened: %w", sub.ID, err)
		}
		parsed, err := signature.ParseSecret(string(raw))
		if err != nil {
			return req, fmt.Errorf("signing secret of %s: %w", sub.ID, err)
		}
		req.Secrets = append(req.Secrets, parsed)
	}
	if sub.Auth != nil {
		cred, err := s.Box.Open(sub.Auth.SealedCredential, []byte(sub.ID))
		if err != nil {
			return req, fmt.Errorf("credential of %s cannot be opened: %w", sub.ID, err)
		}
		req.AuthType, req.Username, req.Password = sub.Auth.Type, sub.Auth.Username, string(cred)
	}
	if req.Timeout <= 0 {
		req.Timeout = 15 * time.Second
	}
	return req, nil
}

// record writes the attempt to the delivery log and moves the delivery on:
// nowhere when delivered, to a retry tier while attempts remain, else to
// the DLQ.
func (s *Sender) record(ctx context.Context, sub *record.Subscription, it *item, res deliver.Result, started time.Time, out *outbox) {
	d := it.d
	n := d.Attempt + 1
	a := record.DeliveryAttempt{
		DeliveryID: d.ID, Tenant: d.Tenant, SubscriptionID: d.SubscriptionID, EventID: d.EventID,
		EventType: d.EventType, URL: d.URL, Attempt: n, Replay: d.Replay, StartedAt: started,
		DurationMS: res.Duration.Milliseconds(), StatusCode: int32(res.Status), Error: res.Err,
		ResponseSnippet: res.Snippet, RequestBytes: res.RequestBytes, ResponseBytes: res.ResponseBytes,
		TraceID: traceID(it.rec.Context),
	}
	d.Attempt, d.LastStatus, d.LastError = n, int32(res.Status), res.Err
	maxAttempts := sub.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 8
	}
	switch {
	case res.Class == deliver.Delivered:
		a.Outcome = record.OutcomeDelivered
	case res.Class == deliver.Retryable && n < maxAttempts:
		tier, delay := s.Schedule.Next(int(n), res.RetryAfter)
		due := started.Add(res.Duration + delay)
		d.DueAt = &due
		a.Outcome, a.NextAttemptAt = record.OutcomeRetrying, &due
		s.emit(ctx, out, s.Topics.Retry(tier), &d)
	default:
		if res.Class == deliver.Retryable {
			d.LastError = fmt.Sprintf("gave up after %d attempts: %s", n, res.Err)
		}
		a.Outcome = record.OutcomeDeadLettered
		d.DueAt = nil
		s.emit(ctx, out, s.Topics.DLQ, &d)
		if res.Class == deliver.Gone {
			s.disable(ctx, sub, "endpoint answered 410 Gone", out)
		}
	}
	s.Metrics.Attempts.WithLabelValues(a.Outcome).Inc()
	value, err := s.Codecs.Attempt.Marshal(&a)
	if err != nil {
		out.fail(err)
		return
	}
	out.produce(ctx, &kgo.Record{Topic: s.Topics.DeliveryLog, Key: []byte(d.ID), Value: value, Context: it.rec.Context})
}

func (s *Sender) deadLetter(ctx context.Context, it *item, reason string, out *outbox) {
	d := it.d
	d.LastError, d.DueAt = reason, nil
	s.Metrics.Attempts.WithLabelValues("not_sent").Inc()
	s.emit(ctx, out, s.Topics.DLQ, &d)
}

// disable turns a subscription off by writing its new state.
func (s *Sender) disable(ctx context.Context, sub *record.Subscription, reason string, out *outbox) {
	next := *sub
	next.Enabled, next.DisabledReason, next.UpdatedAt = false, reason, s.Now()
	value, err := s.Codecs.Subscription.Marshal(&next)
	if err != nil {
		out.fail(err)
		return
	}
	s.Log.Warn().Str("subscription", sub.ID).Str("reason", reason).Msg("subscription disabled")
	out.produce(ctx, &kgo.Record{Topic: s.Topics.Subscriptions, Key: []byte(sub.ID), Value: value})
}

func (s *Sender) emit(ctx context.Context, out *outbox, topic string, d *record.Delivery) {
	value, err := s.Codecs.Delivery.Marshal(d)
	if err != nil {
		out.fail(err)
		return
	}
	out.produce(ctx, &kgo.Record{Topic: topic, Key: []byte(d.SubscriptionID), Value: value})
}

func traceID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// outbox collects a batch's produced records and waits for their acks.
type outbox struct {
	producer *kgo.Client
	wg       sync.WaitGroup
	mu       sync.Mutex
	err      error
}

func (o *outbox) produce(ctx context.Context, r *kgo.Record) {
	o.wg.Add(1)
	o.producer.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			o.fail(err)
		}
		o.wg.Done()
	})
}

func (o *outbox) fail(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

func (o *outbox) wait() error {
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
