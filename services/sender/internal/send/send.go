// Package send is the sender's kafka.Handler: for each batch of deliveries
// it skips those already delivered, holds each endpoint to its rate limit,
// makes the attempts with bounded concurrency (strict FIFO for ordered
// subscriptions), and writes every outcome to Kafka before the batch's
// offsets may be committed.
package send

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/services/sender/internal/deliver"
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

type item struct {
	rec *kgo.Record
	d   record.Delivery
}

// outcome is what became of one item.
type outcome int

const (
	handled   outcome = iota // written on: delivery log, retry tier or DLQ
	delivered                // handled, and the endpoint took it
	abandoned                // ctx ended first: nothing written, the batch must not be committed
)

// Handle processes one partition's batch. It returns nil once every
// record's outcome is acknowledged by Kafka. On error the batch is retried
// (by the consumer loop, or by the partition's next owner); deliveries the
// endpoints already took are marked in Redis first so they are not sent
// twice.
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
			ids, complete := s.deliverTo(ctx, group, out)
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
	case incomplete:
		return fmt.Errorf("batch interrupted: %w", context.Cause(ctx))
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

// endpoint is one subscription's share of a batch: its settings, opened
// once per batch, and what its attempts so far have learnt.
type endpoint struct {
	sub       *record.Subscription
	secrets   []signature.Secret // active ones, newest first
	authType  string
	username  string
	password  string
	timeout   time.Duration
	gone      atomic.Bool  // answered 410: the rest is dead-lettered unsent
	deferring atomic.Bool  // backed up past RateLimitWait: the rest goes to the retry scheduler
	deferred  atomic.Int64 // how many went
	warned    atomic.Bool  // the rate limit's Redis failure was logged
}

// deliverTo delivers one subscription's items: in order, one at a time,
// when the subscription is ordered; otherwise up to PerEndpoint at once. It
// returns the ids the endpoint took, and whether every item has an outcome.
func (s *Sender) deliverTo(ctx context.Context, items []*item, out *outbox) (taken []string, complete bool) {
	sub, err := s.lookup(ctx, items[0].d.SubscriptionID)
	if err != nil {
		return nil, false
	}
	ep, reason := s.open(sub)
	if ep == nil {
		for _, it := range items {
			s.deadLetter(it, reason, out)
		}
		return nil, true
	}
	parallel := max(s.PerEndpoint, 1)
	if sub.Ordered {
		parallel = 1
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, parallel)
	)
	complete = true
	for _, it := range items {
		// Taking the slot before starting keeps an ordered endpoint's
		// attempts in batch order: the next starts once the previous has
		// its outcome.
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o := s.attempt(ctx, ep, it, out)
			mu.Lock()
			switch o {
			case delivered:
				taken = append(taken, it.d.ID)
			case abandoned:
				complete = false
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return taken, complete
}

// lookup finds a subscription, waiting up to viewLag for one the view does
// not know yet. It returns nil for a deleted subscription, and an error
// only when ctx ends.
func (s *Sender) lookup(ctx context.Context, id string) (*record.Subscription, error) {
	deadline := time.Now().Add(viewLag)
	for {
		if sub, ok := s.View.Get(id); ok {
			return sub, nil
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// open prepares a subscription's endpoint: its active secrets and its
// credential, unsealed. It returns nil and why the subscription's
// deliveries cannot be sent.
func (s *Sender) open(sub *record.Subscription) (*endpoint, string) {
	switch {
	case sub == nil:
		return nil, "subscription deleted"
	case !sub.Enabled:
		return nil, "subscription disabled: " + sub.DisabledReason
	}
	ep := &endpoint{sub: sub, timeout: time.Duration(sub.TimeoutMS) * time.Millisecond}
	if ep.timeout <= 0 {
		ep.timeout = defaultTimeout
	}
	now := s.Now()
	active := slices.DeleteFunc(slices.Clone(sub.Secrets), func(sec record.Secret) bool {
		return sec.ExpiresAt != nil && !sec.ExpiresAt.After(now)
	})
	// Newest first: the GitHub-style signature uses the first one.
	slices.SortStableFunc(active, func(a, b record.Secret) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for _, sec := range active {
		raw, err := s.Box.Open(sec.Sealed, []byte(sub.ID))
		if err != nil {
			return nil, fmt.Sprintf("signing secret of %s cannot be opened: %v", sub.ID, err)
		}
		parsed, err := signature.ParseSecret(string(raw))
		if err != nil {
			return nil, fmt.Sprintf("signing secret of %s: %v", sub.ID, err)
		}
		ep.secrets = append(ep.secrets, parsed)
	}
	if sub.Auth != nil {
		cred, err := s.Box.Open(sub.Auth.SealedCredential, []byte(sub.ID))
		if err != nil {
			return nil, fmt.Sprintf("credential of %s cannot be opened: %v", sub.ID, err)
		}
		ep.authType, ep.username, ep.password = sub.Auth.Type, sub.Auth.Username, string(cred)
	}
	return ep, ""
}

// attempt makes one attempt (once the rate limit admits it) and writes its
// outcome.
func (s *Sender) attempt(ctx context.Context, ep *endpoint, it *item, out *outbox) outcome {
	if ctx.Err() != nil {
		return abandoned
	}
	if ep.gone.Load() {
		s.deadLetter(it, "subscription disabled: endpoint answered 410 Gone", out)
		return handled
	}
	if ep.sub.RateLimitPerSecond > 0 {
		if admitted, o := s.admit(ctx, ep, it, out); !admitted {
			return o
		}
	}
	select {
	case s.Slots <- struct{}{}:
	case <-ctx.Done():
		return abandoned
	}
	s.Metrics.InFlight.Inc()
	started := s.Now()
	res := deliver.Send(ctx, s.Client, s.request(ep, it), started)
	s.Metrics.InFlight.Dec()
	<-s.Slots
	if res.Class != deliver.Delivered && ctx.Err() != nil {
		// Cut short by a revoke or a shutdown: the endpoint told us
		// nothing, so no attempt is counted and nothing is written (at the
		// last attempt that would be a false dead letter). The partition's
		// next owner sends it again.
		return abandoned
	}
	s.Metrics.Duration.WithLabelValues(res.Class.String()).Observe(res.Duration.Seconds())
	s.record(ep, it, res, started, out)
	if res.Class == deliver.Delivered {
		return delivered
	}
	return handled
}

// admit waits for the endpoint's rate limit and reports whether the
// delivery may go now. Otherwise it returns what became of it: handed to
// the retry scheduler once the endpoint is backed up past RateLimitWait
// (with its attempt count unchanged: waiting is not an attempt), or
// abandoned when ctx ends. If Redis fails, the limit is not enforced
// rather than stopping deliveries, and that is counted and logged.
func (s *Sender) admit(ctx context.Context, ep *endpoint, it *item, out *outbox) (bool, outcome) {
	budget := cmp.Or(s.RateLimitWait, DefaultRateLimitWait)
	rate := int(ep.sub.RateLimitPerSecond)
	for waited := time.Duration(0); !ep.deferring.Load(); {
		wait, err := s.Limiter.Allow(ctx, ep.sub.ID, rate)
		switch {
		case ctx.Err() != nil:
			return false, abandoned
		case err != nil:
			s.Metrics.RedisErrors.Inc()
			if !ep.warned.Swap(true) {
				s.Log.Warn().Err(err).Str("subscription", ep.sub.ID).Msg("rate limit unavailable; sending unlimited")
			}
			return true, handled
		case wait == 0:
			return true, handled
		}
		if waited == 0 {
			s.Metrics.RateLimited.Inc()
		}
		if waited+wait > budget {
			ep.deferring.Store(true)
			break
		}
		waited += wait
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, abandoned
		}
	}
	// Space the deferred deliveries at the endpoint's rate, so that they
	// come back as fast as they can be sent and no faster.
	delay := time.Duration(ep.deferred.Add(1)) * time.Second / time.Duration(rate)
	d := it.d
	due := s.Now().Add(delay)
	d.DueAt = &due
	tier, _ := s.Schedule.Next(1, delay)
	s.Metrics.Deferred.Inc()
	s.emit(it.rec.Context, out, s.Topics.Retry(tier), &d)
	return false, handled
}

// request builds the attempt from the endpoint's settings.
func (s *Sender) request(ep *endpoint, it *item) deliver.Request {
	req := deliver.Request{
		URL:      it.d.URL,
		ID:       it.d.ID,
		Body:     []byte(it.d.Payload),
		Secrets:  ep.secrets,
		Headers:  ep.sub.Headers,
		AuthType: ep.authType,
		Username: ep.username,
		Password: ep.password,
		Timeout:  ep.timeout,
	}
	if it.rec.Context != nil {
		req.Span = trace.SpanContextFromContext(it.rec.Context)
	}
	return req
}

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
