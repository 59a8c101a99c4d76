package dispatch

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// record writes the outcome of a request for each delivery in it: one
// attempt each in the delivery log, all with the request's status,
// headers and answer, and each delivery moved on by itself: nowhere when
// delivered, to a retry tier while its attempts remain, else to the DLQ,
// given up (hookline.delivery.exhausted).
//
// The body sent is a delivery's payload, which the delivery history has
// from hookline.deliveries, so a single delivery's attempt does not carry
// it again. A batch's array is no delivery's payload: the first
// delivery's attempt carries it and every attempt of the batch names it by
// its SHA-256, so the log holds each array once, not once per delivery.
func (d *Dispatcher) record(ep *endpoint, items []*item, body []byte, res deliver.Result, started time.Time, out *outbox) {
	var sum []byte
	if batching(ep.Sub) && res.RequestHeaders != nil {
		h := sha256.Sum256(body)
		sum = h[:]
	}
	for i, it := range items {
		a := d.recordOne(ep, it, res, started, out)
		if sum != nil {
			a.RequestBodySHA256 = sum
			if i == 0 {
				a.RequestBody = body
			}
		}
		d.logAttempt(it, a, out)
	}
}

// recordOne moves one delivery on after a request (deliver.Decide) and
// returns its attempt for the delivery log.
func (d *Dispatcher) recordOne(ep *endpoint, it *item, res deliver.Result, started time.Time, out *outbox) *record.DeliveryAttempt {
	o := deliver.Decide(it.d, ep.Sub, res, started, d.Schedule)
	a := &o.Attempt
	a.TraceID = traceID(it.rec.Context)
	if batching(ep.Sub) {
		// Its share of the request, so that sums over the log stay true.
		a.RequestBytes = int64(len(it.d.Payload))
	}
	d.moveOn(it, o, res, out)
	return a
}

// moveOn writes a delivery where its outcome sends it: a retry tier or
// the DLQ (given up: hookline.delivery.exhausted); nowhere when it was
// delivered.
func (d *Dispatcher) moveOn(it *item, o deliver.Outcome, res deliver.Result, out *outbox) {
	switch o.Attempt.Outcome {
	case record.OutcomeRetrying:
		d.emit(it.rec.Context, out, d.Topics.Retry(o.Tier), &o.Delivery)
	case record.OutcomeDeadLettered:
		d.emit(it.rec.Context, out, d.Topics.DLQ, &o.Delivery)
		d.exhausted(it, &o.Delivery, res, out)
	}
	d.Metrics.Attempts.WithLabelValues(o.Attempt.Outcome).Inc()
}

// logAttempt writes an attempt to the delivery log.
func (d *Dispatcher) logAttempt(it *item, a *record.DeliveryAttempt, out *outbox) {
	value, err := d.Codecs.Attempt.Marshal(a)
	if err != nil {
		out.fail(err)
		return
	}
	out.produce(&kgo.Record{Topic: d.Topics.DeliveryLog, Key: []byte(a.DeliveryID), Value: value, Context: it.rec.Context})
}

// deadLetter writes a delivery to the DLQ with reason, unsent. It raises
// no hookline.delivery.exhausted: no last attempt was made, and why is
// told otherwise (hookline.endpoint.disabled, the owner's own change).
func (d *Dispatcher) deadLetter(it *item, reason string, out *outbox) {
	dl := it.d
	dl.LastError, dl.DueAt = reason, nil
	d.Metrics.Attempts.WithLabelValues("not_sent").Inc()
	d.emit(it.rec.Context, out, d.Topics.DLQ, &dl)
}

// deadLetterRecord diverts a record that cannot be decoded to the DLQ as
// it was, with reason (wire.Divert).
func (d *Dispatcher) deadLetterRecord(r *kgo.Record, reason string, out *outbox) {
	d.Log.Error().Str("reason", reason).Int32("partition", r.Partition).Int64("offset", r.Offset).Msg("undecodable delivery dead-lettered")
	out.produce(wire.Divert(r, d.Topics.DLQ, reason))
}

// disableTimeout bounds how long disabling waits for the subscriptions
// view to catch up.
const disableTimeout = 5 * time.Second

// disable turns a subscription off after a failure at since, and reports
// whether it did. The sender never writes the subscription record, whose
// writer is its owner (the API): it writes Hookline's decision to
// hookline.endpoint-status, for the subscription as it stands once the
// view has caught up with both topics, and every reader applies it to
// that version of the record only (pkg/subscription). So a change the
// owner makes after this read, even one landing before this write, wins:
// the status then names a version that is no longer current. If the owner
// changed the subscription after since (re-enabled it, moved its URL),
// their change wins too and nothing is written; so it is when the view
// cannot catch up, rather than deciding on a stale copy.
func (d *Dispatcher) disable(ctx context.Context, id string, since time.Time, reason string, out *outbox) bool {
	// Not cut short by a revoke: the failure has happened and is written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), disableTimeout)
	defer cancel()
	log := d.Log.With().Str("subscription", id).Str("reason", reason).Logger()
	if err := d.View.Sync(ctx); err != nil {
		log.Warn().Err(err).Msg("subscription not disabled: its current state is unknown")
		return false
	}
	cur, ok := d.View.Get(id)
	switch {
	case !ok || !cur.Enabled:
		return false // deleted or disabled meanwhile
	case !cur.UpdatedAt.Before(since.Truncate(time.Millisecond)):
		// updated_at is stored in milliseconds: a change within the
		// failure's millisecond counts as after it.
		log.Info().Time("updated_at", cur.UpdatedAt).Msg("subscription not disabled: changed since the failure")
		return false
	}
	if d.beforeDisable != nil {
		d.beforeDisable(id)
	}
	st := record.EndpointStatus{SubscriptionID: id, Tenant: cur.Tenant, DisabledReason: reason,
		DisabledAt: d.now(), SubscriptionUpdatedAt: cur.UpdatedAt}
	value, err := d.Codecs.Status.Marshal(&st)
	if err != nil {
		out.fail(err)
		return false
	}
	log.Warn().Msg("subscription disabled")
	out.produce(&kgo.Record{Topic: d.Topics.EndpointStatus, Key: []byte(id), Value: value})
	return true
}

// emit writes a delivery to topic, keyed by its endpoint, with headers;
// ctx (the record's, possibly nil) carries the trace on.
func (d *Dispatcher) emit(ctx context.Context, out *outbox, topic string, dl *record.Delivery, headers ...kgo.RecordHeader) {
	value, err := d.Codecs.Delivery.Marshal(dl)
	if err != nil {
		out.fail(err)
		return
	}
	out.produce(&kgo.Record{Topic: topic, Key: []byte(dl.SubscriptionID), Value: value, Context: ctx, Headers: headers})
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

// outbox collects the records one piece of work produces and waits for
// their acks.
type outbox struct {
	producer *kgo.Client
	ctx      context.Context
	wg       sync.WaitGroup
	mu       sync.Mutex
	err      error
}

// outbox starts an outbox producing under ctx.
// Once begun, a write is finished: ctx's cancellation does not reach it.
func (d *Dispatcher) outbox(ctx context.Context) *outbox {
	return &outbox{producer: d.Producer, ctx: context.WithoutCancel(ctx)}
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
