package send

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/services/sender/internal/deliver"
)

// record writes the attempt to the delivery log and moves the delivery on:
// nowhere when delivered, to a retry tier while attempts remain, else to
// the DLQ.
func (s *Sender) record(ep *endpoint, it *item, res deliver.Result, started time.Time, out *outbox) {
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
	maxAttempts := ep.sub.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = defaultMaxAttempts
	}
	switch {
	case res.Class == deliver.Delivered:
		a.Outcome = record.OutcomeDelivered
	case res.Class == deliver.Retryable && n < maxAttempts:
		tier, delay := s.Schedule.Next(int(n), res.RetryAfter)
		due := started.Add(res.Duration + delay)
		d.DueAt = &due
		a.Outcome, a.NextAttemptAt = record.OutcomeRetrying, &due
		s.emit(it.rec.Context, out, s.Topics.Retry(tier), &d)
	default:
		if res.Class == deliver.Retryable {
			d.LastError = fmt.Sprintf("gave up after %d attempts: %s", n, res.Err)
		}
		a.Outcome = record.OutcomeDeadLettered
		d.DueAt = nil
		s.emit(it.rec.Context, out, s.Topics.DLQ, &d)
		if res.Class == deliver.Gone && !ep.gone.Swap(true) {
			s.disable(ep.sub, "endpoint answered 410 Gone", out)
		}
	}
	s.Metrics.Attempts.WithLabelValues(a.Outcome).Inc()
	s.track(ep, res, out)
	value, err := s.Codecs.Attempt.Marshal(&a)
	if err != nil {
		out.fail(err)
		return
	}
	out.produce(&kgo.Record{Topic: s.Topics.DeliveryLog, Key: []byte(d.ID), Value: value, Context: it.rec.Context})
}

func (s *Sender) deadLetter(it *item, reason string, out *outbox) {
	d := it.d
	d.LastError, d.DueAt = reason, nil
	s.Metrics.Attempts.WithLabelValues("not_sent").Inc()
	s.emit(it.rec.Context, out, s.Topics.DLQ, &d)
}

// disable turns a subscription off by writing its new state.
func (s *Sender) disable(sub *record.Subscription, reason string, out *outbox) {
	next := *sub
	next.Enabled, next.DisabledReason, next.UpdatedAt = false, reason, s.Now()
	value, err := s.Codecs.Subscription.Marshal(&next)
	if err != nil {
		out.fail(err)
		return
	}
	s.Log.Warn().Str("subscription", sub.ID).Str("reason", reason).Msg("subscription disabled")
	out.produce(&kgo.Record{Topic: s.Topics.Subscriptions, Key: []byte(sub.ID), Value: value})
}

// emit writes a delivery to topic, keyed by its endpoint; ctx (the
// record's, possibly nil) carries the trace on.
func (s *Sender) emit(ctx context.Context, out *outbox, topic string, d *record.Delivery) {
	value, err := s.Codecs.Delivery.Marshal(d)
	if err != nil {
		out.fail(err)
		return
	}
	out.produce(&kgo.Record{Topic: topic, Key: []byte(d.SubscriptionID), Value: value, Context: ctx})
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
	ctx      context.Context
	wg       sync.WaitGroup
	mu       sync.Mutex
	err      error
}

func (o *outbox) produce(r *kgo.Record) {
	o.wg.Add(1)
	o.producer.Produce(o.ctx, r, func(_ *kgo.Record, err error) {
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
