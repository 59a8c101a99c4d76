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

	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/routeurl"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/services/sender/internal/deliver"
)

// endpoint is one subscription's share of a batch: its settings, opened
// once per batch, the requests to make, and what its attempts so far have
// learnt.
type endpoint struct {
	sub        *record.Subscription // nil when deleted
	unsendable string               // why none of its deliveries can be sent; "" when they can
	requests   [][]*item            // in batch order: one delivery each, or batches (batch.go)
	secrets    []signature.Secret   // active ones, newest first
	authType   string
	username   string
	password   string
	timeout    time.Duration
	grant      *ratelimit.Grant // the rate limit's slots for the requests; nil when unlimited
	granted    time.Time        // when the grant was made
	stopping   <-chan struct{}  // closed when the partition is revoked: start nothing new
	healthy    atomic.Bool      // an attempt succeeded: the failure streak ends

	// gone is why the subscription was disabled meanwhile (410, health
	// window); nil while it is not. The rest is dead-lettered unsent.
	gone atomic.Pointer[string]
	// client presents the subscription's client certificate; nil: the
	// shared client.
	client *http.Client
}

// deliverTo makes an endpoint's requests: in order, one at a time, when
// the subscription is ordered; otherwise up to PerEndpoint at once. It
// returns the ids the endpoint took, and whether every delivery has an
// outcome. Once stopping is closed it starts no new attempt: the
// partition's next owner sends the rest.
func (s *Sender) deliverTo(ctx context.Context, ep *endpoint, out *outbox) (taken []string, complete bool) {
	if ep.unsendable != "" {
		for _, req := range ep.requests {
			for _, it := range req {
				s.deadLetter(it, ep.unsendable, out)
			}
		}
		return nil, true
	}
	parallel := max(s.PerEndpoint, 1)
	if ep.sub.Ordered {
		parallel = 1
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, parallel)
	)
	complete = true
	for i, req := range ep.requests {
		// Taking the slot before starting keeps an ordered endpoint's
		// requests in batch order: the next starts once the previous has
		// its outcome.
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o := s.attempt(ctx, ep, i, req, out)
			mu.Lock()
			switch o {
			case delivered:
				for _, it := range req {
					taken = append(taken, it.d.ID)
				}
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

// open prepares a subscription's endpoint for its items: the requests to
// make, its active secrets and its credential, unsealed. When the
// deliveries cannot be sent, unsendable says why.
func (s *Sender) open(sub *record.Subscription, items []*item, stopping <-chan struct{}) *endpoint {
	ep := &endpoint{sub: sub, requests: plan(items, sub), stopping: stopping}
	switch {
	case sub == nil:
		ep.unsendable = "subscription deleted"
	case !sub.Enabled:
		ep.unsendable = subscription.DisabledError(sub.DisabledReason)
	default:
		ep.unsendable = s.unseal(ep)
	}
	return ep
}

// unseal fills in the endpoint's secrets, credential and timeout, and
// says what it could not open.
func (s *Sender) unseal(ep *endpoint) string {
	sub := ep.sub
	ep.timeout = time.Duration(sub.TimeoutMS) * time.Millisecond
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
			return fmt.Sprintf("signing secret of %s cannot be opened: %v", sub.ID, err)
		}
		parsed, err := signature.ParseSecret(string(raw))
		if err != nil {
			return fmt.Sprintf("signing secret of %s: %v", sub.ID, err)
		}
		ep.secrets = append(ep.secrets, parsed)
	}
	if sub.Auth != nil {
		cred, err := s.Box.Open(sub.Auth.SealedCredential, []byte(sub.ID))
		if err != nil {
			return fmt.Sprintf("credential of %s cannot be opened: %v", sub.ID, err)
		}
		ep.authType, ep.username, ep.password = sub.Auth.Type, sub.Auth.Username, string(cred)
	}
	if sub.ClientTLS != nil {
		client, err := s.certClient(sub)
		if err != nil {
			return fmt.Sprintf("client certificate of %s: %v", sub.ID, err)
		}
		ep.client = client
	}
	return ""
}

// reserve takes the rate-limit slots of every rate-limited endpoint in eps
// (nil entries are skipped), one per request, in one Redis round trip.
// Only slots within RateLimitWait are reserved: the requests beyond them
// go to the retry scheduler. If Redis fails, the limits are not enforced
// for this batch rather than stopping deliveries; that is counted and
// logged.
func (s *Sender) reserve(ctx context.Context, eps []*endpoint) {
	var (
		asks    []ratelimit.Ask
		limited []*endpoint
	)
	for _, ep := range eps {
		if ep != nil && ep.unsendable == "" && ep.sub.RateLimitPerSecond > 0 {
			asks = append(asks, ratelimit.Ask{Key: ep.sub.ID, PerSecond: int(ep.sub.RateLimitPerSecond), N: len(ep.requests)})
			limited = append(limited, ep)
		}
	}
	if len(asks) == 0 {
		return
	}
	grants, err := s.Limiter.Reserve(ctx, cmp.Or(s.RateLimitWait, DefaultRateLimitWait), asks)
	switch {
	case ctx.Err() != nil:
		return // nothing will be sent
	case err != nil:
		s.Metrics.RedisErrors.Inc()
		s.Log.Warn().Err(err).Int("endpoints", len(asks)).Msg("rate limit unavailable; sending unlimited")
		return
	}
	now := time.Now()
	for i, ep := range limited {
		ep.grant, ep.granted = &grants[i], now
	}
}

// attempt makes request i of the endpoint (once its rate-limit slot
// allows) and writes the outcome of each delivery in it.
func (s *Sender) attempt(ctx context.Context, ep *endpoint, i int, items []*item, out *outbox) outcome {
	if ctx.Err() != nil || ep.stopped() {
		return abandoned
	}
	if reason := ep.gone.Load(); reason != nil {
		for _, it := range items {
			s.deadLetter(it, subscription.DisabledError(*reason), out)
		}
		return handled
	}
	if ep.grant != nil && i >= ep.grant.Reserved {
		s.handOff(ep, i, items, out)
		return handled
	}
	if ep.grant != nil {
		if slot := ep.granted.Add(ep.grant.At(i)); time.Until(slot) > 0 {
			s.Metrics.RateLimited.Inc()
			if !s.waitUntil(ctx, ep, slot) {
				return abandoned
			}
		}
	}
	select {
	case s.Slots <- struct{}{}:
	case <-ctx.Done():
		return abandoned
	}
	s.Metrics.InFlight.Inc()
	started := s.Now()
	res := deliver.Send(ctx, s.Client, s.request(ep, items), started)
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
	if batching(ep.sub) {
		s.Metrics.BatchSize.Observe(float64(len(items)))
	}
	s.record(ep, items, res, started, out)
	if res.Class == deliver.Delivered {
		return delivered
	}
	return handled
}

// waitUntil waits until at (not at all for the zero time) and reports
// whether the attempt may go on: not when ctx ends or the partition is
// revoked meanwhile.
func (s *Sender) waitUntil(ctx context.Context, ep *endpoint, at time.Time) bool {
	wait := time.Until(at)
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-ep.stopping:
	}
	return false
}

// handOff gives a request whose rate-limit slot lies beyond RateLimitWait
// to the retry scheduler, due when its slot would have come, so that the
// endpoint's backlog comes back as fast as it can be sent and no faster.
// Its attempt count is unchanged: waiting is not an attempt.
func (s *Sender) handOff(ep *endpoint, i int, items []*item, out *outbox) {
	delay := max(time.Until(ep.granted.Add(ep.grant.At(i))), 0)
	due := s.Now().Add(delay)
	tier, _ := s.Schedule.Next(1, delay)
	for _, it := range items {
		d := it.d
		d.DueAt = &due
		s.Metrics.Deferred.Inc()
		s.emit(it.rec.Context, out, s.Topics.Retry(tier), &d)
	}
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

// request builds the attempt from the endpoint's settings: one delivery
// with its own id and body, or a batch (batch.go). The first delivery's
// trace leaves as traceparent.
func (s *Sender) request(ep *endpoint, items []*item) deliver.Request {
	// Where the subscription says now: a retry or a replay follows the
	// owner's changes. The items of a request share their target (plan).
	target, err := routeurl.Resolve(ep.sub, &items[0].d, s.httpAllowed)
	req := deliver.Request{
		URL:      target,
		Secrets:  ep.secrets,
		Headers:  ep.sub.Headers,
		AuthType: ep.authType,
		Username: ep.username,
		Password: ep.password,
		Timeout:  ep.timeout,
		Gzip:     ep.sub.Compression == "gzip",
		Client:   ep.client,
	}
	if batching(ep.sub) {
		req.ID, req.Body = batchID(items), batchBody(items)
	} else {
		req.ID, req.Body = items[0].d.ID, []byte(items[0].d.Payload)
	}
	if ctx := items[0].rec.Context; ctx != nil {
		req.Span = trace.SpanContextFromContext(ctx)
	}
	if err != nil {
		req.URL, req.Refused = items[0].d.URL, err.Error()
	}
	return req
}

// httpAllowed reports whether the operator allows plain http to host.
func (s *Sender) httpAllowed(host string) bool {
	return s.Guard != nil && s.Guard.AllowsHost(host)
}
