package send

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/services/sender/internal/deliver"
)

// endpoint is one subscription's share of a batch: its settings, opened
// once per batch, and what its attempts so far have learnt.
type endpoint struct {
	sub       *record.Subscription
	secrets   []signature.Secret // active ones, newest first
	authType  string
	username  string
	password  string
	timeout   time.Duration
	stopping  <-chan struct{} // closed when the partition is revoked: start nothing new
	gone      atomic.Bool     // answered 410: the rest is dead-lettered unsent
	deferring atomic.Bool     // backed up past RateLimitWait: the rest goes to the retry scheduler
	deferred  atomic.Int64    // how many went
	warned    atomic.Bool     // the rate limit's Redis failure was logged
	healthy   atomic.Bool     // an attempt succeeded: the failure streak ends
}

// deliverTo delivers one subscription's items: in order, one at a time,
// when the subscription is ordered; otherwise up to PerEndpoint at once. It
// returns the ids the endpoint took, and whether every item has an outcome.
// Once stopping is closed it starts no new attempt: the partition's next
// owner sends the rest.
func (s *Sender) deliverTo(ctx context.Context, stopping <-chan struct{}, items []*item, out *outbox) (taken []string, complete bool) {
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
	ep.stopping = stopping
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
	s.endHealthy([]*endpoint{ep})
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
	if ctx.Err() != nil || ep.stopped() {
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
		case <-ep.stopping:
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

// stopped reports whether the partition is being revoked.
func (ep *endpoint) stopped() bool {
	select {
	case <-ep.stopping:
		return true
	default:
		return false
	}
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
