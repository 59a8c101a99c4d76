package dispatch

import (
	"context"
	"time"

	"github.com/hookline/hookline/services/sender/internal/deliver"
)

// goneReason is why the deliveries of an endpoint that answered 410 are
// dead-lettered unsent.
const goneReason = "subscription disabled: endpoint answered 410 Gone"

// attempt is what became of a job: the stages' typed result that the
// partition's loop applies to its lane.
type attempt struct {
	// abandoned: the handler stopped first. Nothing was written and
	// nothing counts: the partition's next owner sends it.
	abandoned bool
	res       deliver.Result
	delivered bool  // the endpoint took it
	gone      bool  // the endpoint answered 410
	err       error // an outcome could not be written to Kafka
}

// overloaded reports whether the answer says the endpoint cannot keep up
// or cannot be reached: the lane's limit shrinks.
func (a attempt) overloaded() bool { return a.res.Class == deliver.Retryable }

// attempt makes a job's request and writes what became of it, in stages:
// prepare (the request), call (the endpoint), then succeeded or failed
// (the delivery log, retry tiers, DLQ, endpoint health). It holds one of
// the pool's slots, which the loop took, for the call only. Once stopping
// is closed (the partition is revoked) it starts no request.
func (d *Dispatcher) attempt(ctx context.Context, ep *endpoint, j *job, stopping <-chan struct{}) attempt {
	if ctx.Err() != nil || closed(stopping) {
		d.slots.release()
		return attempt{abandoned: true}
	}
	if ep.gone.Load() {
		// An earlier request of this endpoint answered 410 after the loop
		// started this one.
		d.slots.release()
		out := d.outbox(ctx)
		for _, it := range j.items {
			d.deadLetter(it, goneReason, out)
		}
		return attempt{err: out.wait()}
	}
	if wait := j.slot.Sub(d.now()); wait > 0 && !d.sleep(ctx, wait, stopping) {
		d.slots.release()
		return attempt{abandoned: true} // revoked while it waited for its slot
	}
	req := d.prepare(ep, j.items)
	started := d.now()
	res := d.call(ctx, req, started)
	d.slots.release()
	if res.Class != deliver.Delivered && ctx.Err() != nil {
		// Cut short by a revoke or a shutdown: the endpoint told us
		// nothing, so no attempt is counted and nothing is written (at the
		// last attempt that would be a false dead letter).
		return attempt{abandoned: true}
	}
	out := d.outbox(ctx)
	a := attempt{res: res}
	if res.Class == deliver.Delivered {
		a.delivered = true
		d.succeeded(ep, j.items, res, started, out)
	} else {
		a.gone = d.failed(ctx, ep, j.items, res, started, out)
	}
	a.err = out.wait()
	return a
}

// prepare builds the request of a job from its endpoint's settings.
func (d *Dispatcher) prepare(ep *endpoint, items []*item) deliver.Request {
	return request(ep, items)
}

// call makes the request, counting it in flight.
func (d *Dispatcher) call(ctx context.Context, req deliver.Request, now time.Time) deliver.Result {
	d.Metrics.InFlight.Inc()
	defer d.Metrics.InFlight.Dec()
	return deliver.Send(ctx, d.Client, req, now)
}

// succeeded writes a delivered job: one attempt per delivery in the log.
func (d *Dispatcher) succeeded(ep *endpoint, items []*item, res deliver.Result, started time.Time, out *outbox) {
	d.observe(ep, items, res)
	d.record(ep, items, res, started, out)
}

// failed writes a failed job: each delivery to a retry tier while its
// attempts remain, else to the DLQ; a 410 also disables the subscription.
// The request counts once toward the endpoint's health. It reports whether
// the endpoint is gone.
func (d *Dispatcher) failed(ctx context.Context, ep *endpoint, items []*item, res deliver.Result, started time.Time, out *outbox) (gone bool) {
	d.observe(ep, items, res)
	d.record(ep, items, res, started, out)
	if res.Class == deliver.Gone {
		gone = true
		if !ep.gone.Swap(true) {
			d.disable(ctx, ep.sub.ID, started, "endpoint answered 410 Gone", out)
		}
	}
	d.track(ctx, ep, res, started, out)
	return gone
}

// observe counts a request in the metrics.
func (d *Dispatcher) observe(ep *endpoint, items []*item, res deliver.Result) {
	d.Metrics.Duration.WithLabelValues(res.Class.String()).Observe(res.Duration.Seconds())
	if batching(ep.sub) {
		d.Metrics.BatchSize.Observe(float64(len(items)))
	}
}

// sleep waits out wait, and reports whether the attempt may go on: not when
// ctx ends or the partition stops first.
func (d *Dispatcher) sleep(ctx context.Context, wait time.Duration, stopping <-chan struct{}) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-stopping:
	}
	return false
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
