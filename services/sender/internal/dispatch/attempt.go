package dispatch

import (
	"context"
	"time"

	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/subscription"
)

// attempt is what became of a job: the stages' typed result that the
// partition's loop applies to its lane.
type attempt struct {
	// abandoned: the handler stopped first. Nothing was written and
	// nothing counts: the partition's next owner sends it.
	abandoned bool
	res       deliver.Result
	delivered bool // the endpoint took it
	// unsent: no request was made (its target was refused, or the
	// subscription was disabled meanwhile); it tells the lane's limit
	// nothing of the endpoint.
	unsent bool
	// gone is why Hookline disabled the subscription (a 410, or failing
	// past the health window); "" while it has not.
	gone string
	err  error // an outcome could not be written to Kafka
}

// overloaded reports whether the answer says the endpoint cannot keep up
// or cannot be reached: the lane's limit shrinks.
func (a attempt) overloaded() bool { return a.res.Class == deliver.Retryable }

// attempt makes a job's request and writes what became of it, in stages:
// prepare (the request), call (the endpoint), then succeeded or failed
// (the delivery log, retry tiers, DLQ, endpoint health). It holds one of
// the pool's slots, which the loop took, for the call only. Once the
// outcome is decided and endpoint health written, and before Kafka has
// acknowledged the outcome's records, it hands the attempt (without err)
// to decided: the lane's next request need not wait for the delivery
// log. Once stopping is closed (the partition is revoked) it starts no
// request; an abandoned attempt is never decided.
func (d *Dispatcher) attempt(ctx context.Context, ep *endpoint, j *job, stopping <-chan struct{}, decided func(attempt)) attempt {
	if ctx.Err() != nil || closed(stopping) {
		d.slots.release()
		return attempt{abandoned: true}
	}
	if reason := ep.gone.Load(); reason != nil {
		// An earlier request of this endpoint had Hookline disable the
		// subscription (410, health window) after the loop started this
		// one.
		d.slots.release()
		handOn(j.items)
		out := d.outbox(ctx)
		for _, it := range j.items {
			d.deadLetter(it, subscription.DisabledError(*reason), out)
		}
		a := attempt{gone: *reason, unsent: true}
		decided(a)
		a.err = out.wait()
		return a
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
	a := attempt{res: res, unsent: req.Refused != ""}
	if res.Class == deliver.Delivered {
		a.delivered = true
		d.succeeded(ctx, ep, j, req.Body, res, started, out)
	} else {
		handOn(j.items) // to a retry tier or the DLQ
		a.gone = d.failed(ctx, ep, j.items, req.Body, res, started, out)
	}
	decided(a)
	a.err = out.wait()
	return a
}

// prepare builds the request of a job from its endpoint's settings.
func (d *Dispatcher) prepare(ep *endpoint, items []*item) deliver.Request {
	return request(ep, items, d.httpAllowed)
}

// httpAllowed reports whether the operator allows plain http to host.
func (d *Dispatcher) httpAllowed(host string) bool {
	return d.Guard != nil && d.Guard.AllowsHost(host)
}

// call makes the request, counting it in flight. A request with a client
// of its own (a client certificate) goes through it.
func (d *Dispatcher) call(ctx context.Context, req deliver.Request, now time.Time) deliver.Result {
	d.Metrics.InFlight.Inc()
	defer d.Metrics.InFlight.Dec()
	return deliver.Send(ctx, d.Client, req, now)
}

// succeeded writes a delivered job: one attempt per delivery in the log;
// a job started while its lane was failing also ends the endpoint's
// streak, before the lane starts another, so that no later failure is
// counted into the streak it ends. body is the request's body (before
// compression).
func (d *Dispatcher) succeeded(ctx context.Context, ep *endpoint, j *job, body []byte, res deliver.Result, started time.Time, out *outbox) {
	d.observe(ep, j.items, res)
	d.record(ep, j.items, body, res, started, out)
	if j.mayRecover {
		d.recovered(ctx, ep, started, out)
	}
}

// failed writes a failed job: each delivery to a retry tier while its
// attempts remain, else to the DLQ; a 410 also disables the subscription.
// The request counts once toward the endpoint's health (a refused target
// too: the owner has something to fix), which may disable it as well. It
// returns why the subscription is disabled, "" when it is not.
func (d *Dispatcher) failed(ctx context.Context, ep *endpoint, items []*item, body []byte, res deliver.Result, started time.Time, out *outbox) (gone string) {
	d.observe(ep, items, res)
	d.record(ep, items, body, res, started, out)
	if res.Class == deliver.Gone {
		if reason := subscription.ReasonGone; ep.gone.CompareAndSwap(nil, &reason) {
			d.disable(ctx, ep.Sub.ID, started, reason, out)
		}
	}
	d.track(ctx, ep, res, started, out)
	if reason := ep.gone.Load(); reason != nil {
		return *reason
	}
	return ""
}

// observe counts a request in the metrics.
func (d *Dispatcher) observe(ep *endpoint, items []*item, res deliver.Result) {
	d.Metrics.Duration.WithLabelValues(res.Class.String()).Observe(res.Duration.Seconds())
	if batching(ep.Sub) {
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
