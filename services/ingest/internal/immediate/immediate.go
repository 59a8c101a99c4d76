// Package immediate is ingest's immediate mode (POST
// /v1/events?mode=immediate): the request that writes an event also
// delivers it to each matching subscription and answers with what each
// endpoint said. It adds no delivery path of its own: the matcher's
// (pkg/match: matching, shaping, the delivery id) builds each delivery,
// the sender's (pkg/deliver: endpoint, request, signing, SSRF-guarded
// client, mutual TLS, compression; deliver.Decide: the outcome) makes and
// judges the attempt, and the per-endpoint rate limit (pkg/ratelimit) is
// the sender's too. The attempt is attempt 1 of the delivery's one
// history in the delivery log.
//
// The pipeline delivers the same event as ever. A claim in Redis
// (pkg/claim), taken before the event is written, makes the sender hold
// its copy of a claimed delivery until the attempt ends, then drop it
// (delivered) or move it on as attempt 1 to the retry tiers or the DLQ
// (failed). Whatever immediate mode does not attempt (batch or ordered
// subscriptions, a rate-limited endpoint, over the concurrency limits,
// Redis unavailable) is answered "queued" and delivered by the pipeline.
package immediate

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/match"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/wire"
)

// Bounds of a request, each a default when its setting is zero.
const (
	// DefaultWait is how long a request waits for its attempts unless it
	// asks otherwise (wait_ms); past it the answer says "pending".
	DefaultWait = 10 * time.Second
	// MaxWait caps wait_ms: a request never hangs longer.
	MaxWait = 30 * time.Second
	// DefaultMaxInFlight bounds the immediate attempts in flight of an
	// instance: each holds a connection and a goroutine while its
	// endpoint answers, for up to the subscription's timeout.
	DefaultMaxInFlight = 256
	// DefaultMaxInFlightTenant bounds one tenant's share of them, so that
	// a tenant with slow endpoints cannot take every slot: its further
	// deliveries are queued while other tenants' still go at once.
	DefaultMaxInFlightTenant = 32
	// claimMargin is added to a claim's time to live beyond the wait and
	// the attempt's timeout: the attempt's result is written to Redis and
	// Kafka after it ends.
	claimMargin = 5 * time.Second
	// resolveTries bounds the writes of a claim's resolution when Redis
	// fails: past them, the claim expires and the pipeline sends the
	// delivery again (at least once).
	resolveTries = 5
)

// Outcomes of a delivery in the answer.
const (
	Delivered = "delivered" // the endpoint took it (2xx)
	Failed    = "failed"    // the attempt failed: the pipeline retries it (attempt 2) or dead-letters it
	Pending   = "pending"   // still under way when the wait ended; it completes all the same
	Queued    = "queued"    // not attempted here: the pipeline delivers it
)

// Delivery is one delivery in the answer.
type Delivery struct {
	SubscriptionID string `json:"subscription_id"`
	DeliveryID     string `json:"delivery_id"`
	StatusCode     int    `json:"status_code"`
	Outcome        string `json:"outcome"`
	DurationMS     int64  `json:"duration_ms"`
	// Error says why an attempt failed, or why the delivery was queued.
	Error string `json:"error,omitempty"`
}

// Deliverer makes immediate attempts. Set its fields, then Plan each
// event before it is written.
type Deliverer struct {
	Index     *index.Index // the subscriptions, as the matcher's
	Opener    deliver.Opener
	Client    *http.Client // SSRF-guarded (deliver.NewClient)
	Guard     *ssrf.Guard  // the operator's allowlist: plain http only to its hosts; nil: https only
	Limiter   *ratelimit.Limiter
	Claims    *claim.Store
	Delivered *idempotency.Store // the sender's delivered marks
	Producer  *kgo.Client        // writes attempts to the delivery log
	Codecs    *record.Codecs
	Topics    wire.Topics
	Schedule  backoff.Schedule
	Log       zerolog.Logger
	Now       func() time.Time
	Metrics   *Metrics // nil: not counted

	// MaxInFlight and MaxInFlightTenant bound the attempts in flight, of
	// the instance and of one tenant; past them deliveries are queued.
	MaxInFlight, MaxInFlightTenant int

	mu       sync.Mutex
	inFlight int
	byTenant map[string]int
	running  sync.WaitGroup
}

// Plan is one event's deliveries: the answer being built and the
// attempts claimed.
type Plan struct {
	d        *Deliverer
	tenant   string
	attempts []*attempt
	begun    time.Time // when Start made the attempts; zero before

	mu  sync.Mutex // guards out once started
	out []Delivery
}

// attempt is one claimed delivery to attempt.
type attempt struct {
	i    int // in Plan.out
	dl   record.Delivery
	ep   *deliver.Endpoint
	done chan struct{}
}

// Plan matches ev as the matcher will, and claims the deliveries it will
// attempt. Call it before the event is written (so that no copy reaches a
// sender unclaimed), then Deliver once it is, or Abandon when it is not.
// wait is what the request will wait for its attempts.
func (d *Deliverer) Plan(ctx context.Context, ev *record.Event, wait time.Duration) *Plan {
	p := &Plan{d: d, tenant: ev.Tenant}
	candidates := d.Index.Candidates(ev.Tenant, ev.Type)
	if len(candidates) == 0 {
		return p
	}
	doc, err := match.Document(ev)
	if err != nil {
		return p // the matcher rejects such an event: nothing to deliver
	}
	shape, now := match.NewShaper(ev, doc, nil), d.Now()
	var ttl time.Duration
	for _, e := range candidates {
		if !e.Matches(doc) {
			continue
		}
		dl := match.NewDelivery(ev, e, now)
		p.out = append(p.out, Delivery{SubscriptionID: e.Sub.ID, DeliveryID: dl.ID, Outcome: Queued})
		a, reason, why := d.prepare(ctx, &dl, doc, shape, e, now)
		if why != "" {
			d.Metrics.queued(reason)
			p.out[len(p.out)-1].Error = why
			continue
		}
		a.i = len(p.out) - 1
		p.attempts = append(p.attempts, a)
		ttl = max(ttl, wait+a.ep.Timeout+claimMargin)
	}
	if len(p.attempts) == 0 {
		return p
	}
	ids := make([]string, len(p.attempts))
	for i, a := range p.attempts {
		ids[i] = a.dl.ID
	}
	taken, err := d.Claims.Take(ctx, ids, ttl)
	if err != nil {
		d.Log.Warn().Err(err).Msg("immediate mode: claims unavailable; queued")
	}
	kept := p.attempts[:0]
	for i, a := range p.attempts {
		switch {
		case err != nil:
			d.Metrics.queued(queuedRedis)
			p.out[a.i].Error = "immediate mode unavailable (Redis); the pipeline delivers it"
		case !taken[i]:
			d.Metrics.queued(queuedClaimed)
			p.out[a.i].Error = "claimed already"
		default:
			kept = append(kept, a)
			continue
		}
		d.release(p.tenant)
	}
	p.attempts = kept
	return p
}

// prepare builds one matched delivery and takes what its attempt needs (a
// concurrency slot, its rate-limit slot), or says why it is queued: the
// reason (a label of Metrics.Queued) and why, in words.
func (d *Deliverer) prepare(ctx context.Context, dl *record.Delivery, doc condition.Document, shape *match.Shaper, e *index.Entry, now time.Time) (a *attempt, reason, why string) {
	switch {
	case e.Sub.Batch != nil && e.Sub.Batch.MaxEvents > 0:
		return nil, queuedBatch, "batch subscription: delivered in its batch by the pipeline"
	case e.Sub.Ordered:
		return nil, queuedOrdered, "ordered subscription: delivered in order by the pipeline"
	}
	if err := match.Fill(dl, doc, shape, e); err != nil {
		return nil, queuedUndeliverable, "no delivery can be built (the pipeline dead-letters it): " + err.Error()
	}
	if _, err := match.Encode(d.Codecs, dl); err != nil {
		return nil, queuedUndeliverable, "no delivery can be built (the pipeline dead-letters it): " + err.Error()
	}
	ep := d.Opener.Open(e.Sub, now)
	if ep.Unsendable != "" {
		return nil, queuedUndeliverable, ep.Unsendable
	}
	if !d.acquire(dl.Tenant) {
		return nil, queuedInFlight, "too many immediate deliveries in flight"
	}
	if e.Sub.RateLimitPerSecond > 0 {
		g, err := d.Limiter.Reserve(ctx, 0, []ratelimit.Ask{{Key: e.Sub.ID, PerSecond: int(e.Sub.RateLimitPerSecond), N: 1}})
		if err != nil || g[0].Reserved == 0 || g[0].Wait > 0 {
			d.release(dl.Tenant)
			return nil, queuedRateLimited, "rate limited"
		}
	}
	return &attempt{dl: *dl, ep: ep, done: make(chan struct{})}, "", ""
}

// acquire takes one attempt's slot of the instance and of tenant.
func (d *Deliverer) acquire(tenant string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inFlight >= cmp.Or(d.MaxInFlight, DefaultMaxInFlight) || d.byTenant[tenant] >= cmp.Or(d.MaxInFlightTenant, DefaultMaxInFlightTenant) {
		return false
	}
	if d.byTenant == nil {
		d.byTenant = map[string]int{}
	}
	d.inFlight++
	d.byTenant[tenant]++
	return true
}

func (d *Deliverer) release(tenant string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight--
	if d.byTenant[tenant]--; d.byTenant[tenant] <= 0 {
		delete(d.byTenant, tenant)
	}
}

// Abandon gives up the plan's claims and slots: its event was not
// written. Safe on a nil Plan.
func (p *Plan) Abandon(ctx context.Context) {
	if p == nil || len(p.attempts) == 0 {
		return
	}
	ids := make([]string, len(p.attempts))
	for i, a := range p.attempts {
		ids[i] = a.dl.ID
		p.d.release(p.tenant)
	}
	if err := p.d.Claims.Release(context.WithoutCancel(ctx), ids...); err != nil {
		// They expire: the deliveries they name were never written.
		p.d.Log.Warn().Err(err).Msg("immediate mode: release claims")
	}
	p.attempts = nil
}

// Start makes the plan's attempts, each in a goroutine of its own; ctx
// carries the request's trace, and its end does not cut an attempt short.
// The caller may finish its own work (remembering the event's id) while
// they run, then calls Deliver. Safe on a nil Plan; a second call does
// nothing.
func (p *Plan) Start(ctx context.Context) {
	if p == nil || !p.begun.IsZero() {
		return
	}
	p.begun = time.Now()
	span := trace.SpanContextFromContext(ctx)
	bg := context.WithoutCancel(ctx)
	for _, a := range p.attempts {
		p.d.running.Add(1)
		go func() {
			defer p.d.running.Done()
			res, settle := p.d.attempt(bg, a, span)
			p.mu.Lock()
			p.out[a.i] = res
			p.mu.Unlock()
			close(a.done) // the answer need not wait for the settling
			settle()
		}()
	}
}

// Deliver starts the plan's attempts (unless Start has) and returns the
// answer once all have ended or wait has passed: those still under way
// are "pending" and end all the same (their claims, attempts and slots
// are settled by their goroutines).
func (p *Plan) Deliver(ctx context.Context, wait time.Duration) []Delivery {
	p.Start(ctx)
	timer := time.NewTimer(wait - time.Since(p.begun))
	defer timer.Stop()
waiting:
	for _, a := range p.attempts {
		select {
		case <-a.done:
		case <-timer.C:
			break waiting
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	answer := slices.Clone(p.out)
	pending := 0
	for _, a := range p.attempts {
		select {
		case <-a.done:
		default:
			answer[a.i].Outcome, answer[a.i].Error = Pending, ""
			pending++
		}
	}
	p.d.Metrics.answered(pending, time.Since(p.begun).Seconds())
	return answer
}

// attempt makes one attempt and frees its slot. It returns the answer's
// entry at once, and settle, which writes the attempt to the delivery log
// as attempt 1 and resolves its claim: the caller answers first.
func (d *Deliverer) attempt(ctx context.Context, a *attempt, span trace.SpanContext) (Delivery, func()) {
	req := a.ep.Request(&a.dl, d.httpAllowed)
	req.Span = span
	started := d.Now()
	res := deliver.Send(ctx, d.Client, req, started)
	d.release(a.dl.Tenant)
	out := Delivery{SubscriptionID: a.dl.SubscriptionID, DeliveryID: a.dl.ID, StatusCode: res.Status,
		Outcome: Failed, DurationMS: res.Duration.Milliseconds(), Error: res.Err}
	if res.Class == deliver.Delivered {
		out.Outcome = Delivered
	}
	d.Metrics.ended(out.Outcome)
	settle := func() {
		o := deliver.Decide(a.dl, a.ep.Sub, res, started, d.Schedule)
		if span.HasTraceID() {
			o.Attempt.TraceID = span.TraceID().String()
		}
		logged := d.logAttempt(ctx, &o.Attempt)
		d.resolve(ctx, a.dl.ID, res, started)
		if err := <-logged; err != nil {
			d.Log.Error().Err(err).Str("delivery", a.dl.ID).Msg("immediate mode: the attempt is not in the delivery log")
		}
	}
	return out, settle
}

// httpAllowed reports whether the operator allows plain http to host.
func (d *Deliverer) httpAllowed(host string) bool {
	return d.Guard != nil && d.Guard.AllowsHost(host)
}

// logAttempt writes an attempt to the delivery log; the channel gets the
// outcome of the write.
func (d *Deliverer) logAttempt(ctx context.Context, a *record.DeliveryAttempt) <-chan error {
	done := make(chan error, 1)
	value, err := d.Codecs.Attempt.Marshal(a)
	if err != nil {
		done <- err
		return done
	}
	d.Producer.Produce(ctx, &kgo.Record{Topic: d.Topics.DeliveryLog, Key: []byte(a.DeliveryID), Value: value},
		func(_ *kgo.Record, err error) { done <- err })
	return done
}

// resolve settles a delivery's claim with what its attempt got: the
// delivered mark and the claim delivered, or the claim failed. Redis
// failing throughout leaves the claim to expire: the pipeline then sends
// the delivery again (at least once).
func (d *Deliverer) resolve(ctx context.Context, id string, res deliver.Result, started time.Time) {
	var err error
	for try := range resolveTries {
		if try > 0 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		if res.Class == deliver.Delivered {
			if err = d.Delivered.Mark(ctx, id); err == nil {
				err = d.Claims.Deliver(ctx, id)
			}
		} else {
			err = d.Claims.Fail(ctx, id, claim.FailureOf(res, started))
		}
		if err == nil {
			return
		}
	}
	d.Log.Error().Err(err).Str("delivery", id).Msg("immediate mode: claim not resolved; the pipeline will send the delivery again when it expires")
}

// Wait returns once every attempt started has ended and settled (its
// delivery log record written, its claim resolved): a shutdown waits for
// them, so that their claims are resolved rather than left to expire.
func (d *Deliverer) Wait() { d.running.Wait() }

// Status is the HTTP status of an answer: 200 when every delivery ended
// (delivered or failed), 202 while some are pending or queued.
func Status(ds []Delivery) int {
	for _, x := range ds {
		if x.Outcome == Pending || x.Outcome == Queued {
			return http.StatusAccepted
		}
	}
	return http.StatusOK
}
