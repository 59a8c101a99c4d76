package dispatch

import (
	"context"
	"time"

	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/deliver"
)

// This file honours ingest's claims (pkg/claim): a delivery ingest
// attempts in immediate mode reaches the sender too, usually while that
// attempt is under way. Such a copy waits, held in memory but off its
// lane, without holding up other endpoints or the partition's fetches,
// until the claim resolves (looked at again every tick): delivered, it is
// dropped like a delivered repeat; failed, it is moved on as attempt 1
// (retry tier or DLQ) without being sent; expired (ingest died), it is
// sent. Ingest's attempt counts toward the endpoint's health here, as the
// sender's own attempts do (health.go): a failed one adds to the streak,
// a delivered one ends it, so an endpoint whose deliveries go mostly
// through immediate mode is judged by them too.

// How a claim resolved, the label of hookline_sender_claims_resolved_total.
const (
	claimDelivered = "delivered" // ingest delivered it: dropped
	claimFailed    = "failed"    // ingest's attempt failed: moved on unsent
	claimExpired   = "expired"   // pending, then gone (ingest died): sent
)

// claimable reports whether a delivery may have been claimed by ingest:
// only one fresh from the matcher, of an event ingest wrote in immediate
// mode, is. Ingest takes the claims, then writes such an event marked
// (wire.HeaderImmediate), and the matcher marks each delivery it makes
// of it, so an unmarked delivery has no claim, and queue mode costs no
// read of claims. A retry, a parked one, a replay or a re-run is the
// pipeline's own, whatever its headers.
func claimable(it *item) bool {
	return it.immediate && it.d.Attempt == 0 && it.parks == 0 && !it.d.Replay && it.d.Redelivery == ""
}

// settle admits items, those ingest may have claimed as their claims say.
func (pt *partition) settle(items []*item) {
	var (
		look []*item
		ids  []string
	)
	for _, it := range items {
		if pt.d.Claims != nil && claimable(it) {
			look, ids = append(look, it), append(ids, it.d.ID)
			continue
		}
		pt.admit(it)
	}
	if len(look) == 0 {
		return
	}
	claims, err := pt.d.Claims.Look(pt.ctx, ids)
	if err != nil {
		pt.claimsFailed(look, err)
		return
	}
	pt.claimsDown = false
	for i, it := range look {
		pt.claimed(it, claims[i])
	}
}

// claimed admits one delivery as its claim says.
func (pt *partition) claimed(it *item, c claim.Claim) {
	switch c.State {
	case claim.None:
		if it.waited {
			pt.d.Metrics.Claims.WithLabelValues(claimExpired).Inc()
		}
		pt.admit(it)
	case claim.Pending:
		it.waited = true
		pt.await(it)
	case claim.Delivered:
		pt.d.Metrics.Claims.WithLabelValues(claimDelivered).Inc()
		pt.d.Metrics.Suppressed.Inc()
		pt.deliveredElsewhere(it)
	case claim.Failed:
		pt.d.Metrics.Claims.WithLabelValues(claimFailed).Inc()
		pt.movedOn(it, c.Failure)
	}
}

// await holds items until their claims are looked at again (lookAgain).
func (pt *partition) await(items ...*item) {
	for _, it := range items {
		pt.hold(it)
	}
	pt.awaiting = append(pt.awaiting, items...)
	pt.d.Metrics.ClaimWaiting.Add(float64(len(items)))
}

// claimsFailed handles a failed read of claims: the items await them
// again at the next tick, as a fetch waits for the delivered marks
// (sending without the claim could send a delivery twice).
func (pt *partition) claimsFailed(items []*item, err error) {
	if pt.ctx.Err() != nil {
		return // stopping: left unfinished for the next owner
	}
	pt.d.Metrics.RedisErrors.Inc()
	if !pt.claimsDown { // said once, not at every tick while Redis is down
		pt.claimsDown = true
		pt.log.Warn().Err(err).Msg("immediate-mode claims unavailable; deliveries wait for Redis")
	}
	pt.await(items...)
}

// lookAgain reads the claims of the deliveries awaiting them (each tick)
// and admits those resolved.
func (pt *partition) lookAgain() {
	if len(pt.awaiting) == 0 || pt.stopping {
		return
	}
	items := pt.awaiting
	pt.awaiting = nil
	for _, it := range items {
		pt.release(it)
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.d.ID
	}
	claims, err := pt.d.Claims.Look(pt.ctx, ids)
	pt.d.Metrics.ClaimWaiting.Sub(float64(len(items))) // waiting until now
	if err != nil {
		pt.claimsFailed(items, err)
		return
	}
	pt.claimsDown = false
	for i, it := range items {
		pt.claimed(it, claims[i])
	}
}

// movedOn writes a delivery whose immediate attempt failed where that
// attempt's outcome sends it (deliver.Decide, as ingest decided it): to
// a retry tier as attempt 1, or the DLQ. Ingest wrote the attempt to the
// delivery log; nothing is sent. A delivery of a subscription the view
// does not know is admitted instead, to be dead-lettered like any other.
func (pt *partition) movedOn(it *item, f claim.Failure) {
	l := pt.lane(it.d.SubscriptionID)
	pt.refresh(l)
	if l.sub == nil {
		pt.admit(it)
		return
	}
	handOn([]*item{it})
	res := f.Result()
	o := deliver.Decide(it.d, l.sub, res, f.Started, pt.d.Schedule)
	ep := l.ep
	l.failing = true
	pt.settleElsewhere(it, func(ctx context.Context, out *outbox) {
		pt.d.track(ctx, ep, res, f.Started, out)
		pt.d.moveOn(it, o, res, out)
	})
	l.updateStats()
}

// deliveredElsewhere drops a delivery ingest delivered, like a delivered
// repeat; if its lane may be failing (it has failed since its last
// success, or is new), the endpoint's streak ends first, as at the
// sender's own success.
func (pt *partition) deliveredElsewhere(it *item) {
	l := pt.lane(it.d.SubscriptionID)
	pt.refresh(l)
	if pt.d.Health == nil || l.sub == nil || !l.failing {
		pt.p.Finish(it.rec)
		return
	}
	l.failing = false
	ep, at := l.ep, time.Now()
	pt.settleElsewhere(it, func(ctx context.Context, out *outbox) { pt.d.recovered(ctx, ep, at, out) })
}

// settleElsewhere finishes a delivery ingest attempted once what fill
// writes is in Kafka, as write does, but fill runs off the partition's
// loop, as an attempt's outcome does: counting the attempt toward its
// endpoint's health reads and writes Redis.
func (pt *partition) settleElsewhere(it *item, fill func(ctx context.Context, out *outbox)) {
	pt.hold(it)
	pt.running++
	go func() {
		out := pt.d.outbox(pt.ctx)
		fill(pt.ctx, out)
		err := out.wait()
		pt.events <- func() { pt.running--; pt.written([]*item{it}, nil, err) }
	}()
}
