// Package send is the sender's kafka.Handler: for each batch of deliveries
// it skips those already delivered, holds each endpoint to its rate limit,
// makes the requests (one per delivery, or JSON array batches when the
// subscription asks) with bounded concurrency (strict FIFO for ordered
// subscriptions), and writes every outcome to Kafka before the batch's
// offsets may be committed.
package send

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/ssrf"
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
	Certs       *deliver.Clients // one client per subscription certificate (mutual TLS); nil: such subscriptions are dead-lettered
	View        *subscription.View
	Codecs      *record.Codecs
	Topics      kafka.Topics
	Schedule    backoff.Schedule
	Producer    *kgo.Client
	Delivered   *idempotency.Store
	Limiter     *ratelimit.Limiter
	Health      *health.Tracker // nil: endpoint health is not tracked
	Box         *secretbox.Box
	Guard       *ssrf.Guard   // the operator's allowlist: plain http only to its hosts; nil: https only
	PerEndpoint int           // concurrent attempts per endpoint when not ordered
	Slots       chan struct{} // its capacity bounds requests in flight across partitions
	Metrics     *Metrics
	Log         zerolog.Logger
	Now         func() time.Time
	// RateLimitWait is the longest a request waits in memory for its
	// endpoint's rate limit; the requests whose slots lie beyond it go
	// through the retry scheduler, without counting an attempt. It bounds
	// how long a slow endpoint holds its partition. Zero means
	// DefaultRateLimitWait.
	RateLimitWait time.Duration
}

// errRevoked reports a batch left unfinished because its partition is
// being revoked.
var errRevoked = errors.New("partition revoked: the rest of the batch is left to its next owner")

type item struct {
	rec *kgo.Record
	d   record.Delivery
}

// outcome is what became of one item.
type outcome int

const (
	handled   outcome = iota // written on: delivery log, retry tier or DLQ
	delivered                // handled, and the endpoint took it
	abandoned                // ctx ended or the partition was revoked first: nothing written, the batch must not be committed
)

// Handle processes one partition's batch. It returns nil once every
// record's outcome is acknowledged by Kafka. On error the batch is retried
// (by the consumer loop, or by the partition's next owner); deliveries the
// endpoints already took are marked in Redis first so they are not sent
// twice. When the partition is revoked, attempts under way finish (until
// ctx ends) and no new one starts.
//
// A batching subscription's deliveries wait for their window (batch.go).
// Meanwhile the partition's next records are taken into this call
// (kafka.Batch.More): they are sent at once, or join the waiting batches,
// so a window holds up neither the other endpoints of the partition nor,
// beyond its own length, the partition's offsets. When the first window
// closes, every waiting batch goes.
func (s *Sender) Handle(ctx context.Context, b kafka.Batch) error {
	r := &run{s: s, ctx: ctx, stopping: b.Stopping(),
		out:  &outbox{producer: s.Producer, ctx: context.WithoutCancel(ctx)}, // an attempt made is written even if ctx ends
		seen: map[string]bool{}, chain: map[string]chan struct{}{}, held: map[string]*held{}}
	if err := r.add(b.Records); err != nil {
		return err // nothing was sent or written yet
	}
	if until := r.firstWindowEnd(); !until.IsZero() {
		wctx, cancel := context.WithDeadline(ctx, until)
		for {
			recs := b.More(wctx)
			if recs == nil {
				break
			}
			if err := r.add(recs); err != nil {
				r.fail(err) // the whole batch, with these records, is retried
				break
			}
		}
		cancel()
	}
	r.flushHeld()
	return r.wait()
}

// run is one Handle call: the endpoints it started and what became of
// their deliveries.
type run struct {
	s        *Sender
	ctx      context.Context
	stopping <-chan struct{}
	out      *outbox
	wg       sync.WaitGroup
	seen     map[string]bool          // delivery ids taken, to drop repeats
	chain    map[string]chan struct{} // per subscription: closed when its last started group is done
	held     map[string]*held         // per batching subscription: deliveries waiting for the window

	mu         sync.Mutex // guards the fields below, written by the endpoints' goroutines
	eps        []*endpoint
	done       []string // ids the endpoints took
	incomplete bool
	err        error
}

// held is a batching subscription's deliveries waiting for its window.
type held struct {
	sub   *record.Subscription
	items []*item
}

// add takes records into the run: dead letters for what cannot be decoded,
// batching subscriptions' deliveries held for their window, the others'
// started at once. It fails only when Redis cannot say what was delivered
// already; then nothing of recs was sent.
func (r *run) add(recs []*kgo.Record) error {
	s := r.s
	items, poison := s.decode(recs)
	items, err := s.skipDelivered(r.ctx, items, r.seen)
	if err != nil {
		// Without the marks a redelivered batch would be sent again: wait
		// for Redis rather than degrade.
		s.Metrics.RedisErrors.Inc()
		return fmt.Errorf("check delivered marks, batch retried until Redis answers: %w", err)
	}
	for _, p := range poison {
		r.out.produce(p)
	}
	// The endpoints the view knows are opened at once and their rate
	// limits reserved in one Redis round trip. One it does not know yet is
	// looked for in its own goroutine, since the view may be a moment
	// behind the matcher.
	var starts []*start
	for _, group := range bySubscription(items) {
		id := group[0].d.SubscriptionID
		sub, _ := s.View.Get(id) // nil until the view knows it
		if batching(sub) && sub.Enabled {
			h := r.held[id]
			if h == nil {
				h = &held{sub: sub}
				r.held[id] = h
			}
			h.items = append(h.items, group...)
			if windowEnd(sub, h.items).IsZero() { // full, or no window
				starts = append(starts, r.prepare(id, sub, h.items))
				delete(r.held, id)
			}
			continue
		}
		starts = append(starts, r.prepare(id, sub, group))
	}
	r.launch(starts)
	return nil
}

// start is a group of one subscription's deliveries about to be sent.
type start struct {
	id    string
	ep    *endpoint // nil while the subscription is to be looked up
	items []*item
	after chan struct{} // the subscription's previous group; nil when none
	done  chan struct{}
}

// prepare opens a group's endpoint (when the view knows its subscription,
// sub != nil) and queues it behind the subscription's previous group of
// this run, so that its requests keep FIFO order and its concurrency bound.
func (r *run) prepare(id string, sub *record.Subscription, items []*item) *start {
	st := &start{id: id, items: items, after: r.chain[id], done: make(chan struct{})}
	r.chain[id] = st.done
	if sub != nil {
		st.ep = r.s.open(sub, items, r.stopping)
	}
	return st
}

// launch reserves the rate-limit slots of the groups that can go now in
// one round trip and starts every group.
func (r *run) launch(starts []*start) {
	var now []*endpoint
	for _, st := range starts {
		if st.ep != nil && st.after == nil {
			now = append(now, st.ep)
		}
	}
	r.s.reserve(r.ctx, now)
	for _, st := range starts {
		r.wg.Go(func() { r.send(st) })
	}
}

// send delivers one group, once its subscription's previous group is done.
func (r *run) send(st *start) {
	defer close(st.done)
	if st.after != nil {
		<-st.after
	}
	ep := st.ep
	if ep == nil {
		sub, err := r.s.lookup(r.ctx, st.id)
		if err != nil {
			r.mu.Lock()
			r.incomplete = true
			r.mu.Unlock()
			return
		}
		ep = r.s.open(sub, st.items, r.stopping)
	}
	if st.ep == nil || st.after != nil {
		r.s.reserve(r.ctx, []*endpoint{ep}) // slots from when it can go
	}
	ids, complete := r.s.deliverTo(r.ctx, ep, r.out)
	r.mu.Lock()
	r.eps = append(r.eps, ep)
	r.done = append(r.done, ids...)
	r.incomplete = r.incomplete || !complete
	r.mu.Unlock()
}

// firstWindowEnd is when the earliest held window closes; zero when none
// is held.
func (r *run) firstWindowEnd() time.Time {
	var first time.Time
	for _, h := range r.held {
		if end := windowEnd(h.sub, h.items); first.IsZero() || end.Before(first) {
			first = end
		}
	}
	return first
}

// flushHeld starts every held batch.
func (r *run) flushHeld() {
	starts := make([]*start, 0, len(r.held))
	for id, h := range r.held {
		starts = append(starts, r.prepare(id, h.sub, h.items))
	}
	clear(r.held)
	r.launch(starts)
}

// fail records an error that must fail the whole call.
func (r *run) fail(err error) {
	r.mu.Lock()
	r.err = errors.Join(r.err, err)
	r.mu.Unlock()
}

// wait waits for every group's outcome, marks what the endpoints took and
// says whether the batch may be committed.
func (r *run) wait() error {
	r.wg.Wait()
	r.s.endHealthy(r.eps)
	err := r.out.wait()
	r.s.mark(context.WithoutCancel(r.ctx), r.done)
	switch {
	case err != nil:
		return fmt.Errorf("produce outcomes: %w", err)
	case r.err != nil:
		return r.err
	case r.incomplete && r.ctx.Err() != nil:
		return fmt.Errorf("batch interrupted: %w", context.Cause(r.ctx))
	case r.incomplete:
		return errRevoked
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
// trip for the batch, and repeats of a delivery already in seen, which it
// adds the others to.
func (s *Sender) skipDelivered(ctx context.Context, items []*item, seen map[string]bool) ([]*item, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.d.ID
	}
	marked, err := s.Delivered.Marked(ctx, ids)
	if err != nil {
		return nil, err
	}
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
