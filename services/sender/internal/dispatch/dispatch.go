// Package dispatch is the sender's partition handler: it takes a
// partition's deliveries as they are fetched, drops those already
// delivered, and gives each endpoint (subscription) a lane of its own: a
// bounded in-memory backlog, an adaptive concurrency limit, its rate limit
// and its batching window. One slow, timing-out or refusing endpoint fills
// only its own lane; the partition keeps dispatching the others. Past what
// a lane may hold, its deliveries are parked in the retry tiers (not
// counted as attempts) and come back when it can take them, so the
// partition's offsets keep moving. Every outcome is written to Kafka
// before its record is finished and its offset may be committed.
//
// Each attempt goes through named stages with typed results (attempt.go):
// prepare builds the request, call makes it, succeeded and failed write
// what became of it. docs/internals.md maps the goroutines and locks.
package dispatch

import (
	"cmp"
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/wire"
)

// Defaults of the Dispatcher's settings, each used when its field is zero.
const (
	// DefaultRateLimitWait bounds how long a request waits in memory for
	// its endpoint's rate limit.
	DefaultRateLimitWait = 2 * time.Second
	// DefaultPerEndpoint is an endpoint's starting concurrency: what the
	// sender allowed every endpoint before limits adapted, so a healthy
	// endpoint starts where it used to be.
	DefaultPerEndpoint = 16
	// DefaultMaxPerEndpoint is the most an endpoint's adaptive limit grows
	// to when its subscription sets no max_in_flight: enough for a 3 s
	// endpoint to take about 20 requests/s.
	DefaultMaxPerEndpoint = 64
	// MinWriteAhead is the fewest outcomes a lane may have waiting for
	// Kafka's acknowledgement while it sends more (lane.maxWriting).
	MinWriteAhead = 16
	// DefaultMaxInFlight bounds the requests in flight of the instance.
	DefaultMaxInFlight = 512
	// DefaultBacklogWait is the longest a delivery is expected to wait in
	// its lane's memory before it is parked instead. It does not decide
	// whether others wait (they never do): longer holds the partition's
	// offsets further back (more to read again after a crash, suppressed
	// by the delivered marks); shorter parks bursts that would have gone
	// out soon, which costs the retry tiers' round trip.
	DefaultBacklogWait = 10 * time.Second
	// DefaultMaxBacklog bounds the deliveries a partition holds in memory
	// (waiting, in flight, being written), about 2.5 KiB each: past it,
	// the partition takes no more records until some are done. 12
	// partitions full hold about 120 MiB.
	DefaultMaxBacklog = 4000
	// DefaultTopEndpoints is how many endpoints the per-endpoint metrics
	// show.
	DefaultTopEndpoints = 10
)

// Dispatcher holds the handler's dependencies and settings. Set its fields,
// then run it on each assigned partition (kafka.NewStreamConsumer(...,
// d.Run, ...)); it must not be copied after the first Run.
type Dispatcher struct {
	Client    *http.Client
	Certs     *deliver.Clients // one client per subscription certificate (mutual TLS); nil: such subscriptions are dead-lettered
	View      *subscription.View
	Codecs    *record.Codecs
	Topics    wire.Topics
	Schedule  backoff.Schedule
	Producer  *kgo.Client
	Delivered *idempotency.Store
	Claims    *claim.Store // ingest's immediate-mode claims, honoured (claims.go); nil: none
	Limiter   *ratelimit.Limiter
	Health    *health.Tracker // nil: endpoint health is not tracked
	Tails     *Tails          // where ordered lanes remember what they parked; nil: in memory only
	Box       *secretbox.Box
	Guard     *ssrf.Guard // the operator's allowlist: plain http only to its hosts; nil: https only
	Metrics   *Metrics
	Log       zerolog.Logger
	// Now is the clock of every reading of the time in this package;
	// time.Now when nil.
	Now func() time.Time

	// PerEndpoint is an endpoint's starting concurrency; MaxPerEndpoint
	// the most its adaptive limit reaches when the subscription sets no
	// max_in_flight. Ordered subscriptions always have one request in
	// flight.
	PerEndpoint, MaxPerEndpoint int
	// MaxInFlight bounds the requests in flight across every partition of
	// the instance; a quarter of them is kept for endpoints that have none
	// in flight (pool.go).
	MaxInFlight int
	// BacklogWait bounds what a lane holds in memory, in time: past it
	// deliveries are parked. MaxBacklog bounds what a partition holds:
	// past it, it takes no more records until some are done.
	BacklogWait time.Duration
	MaxBacklog  int
	// RateLimitWait is the longest a request waits in memory for its
	// endpoint's rate limit; the requests whose slots lie beyond it are
	// parked until then, without counting an attempt.
	RateLimitWait time.Duration

	// beforeDisable, for tests only, runs between disable's read of the
	// subscription and its write: where an owner's change can land.
	beforeDisable func(id string)

	once  sync.Once
	slots *pool

	mu    sync.Mutex              // guards lanes
	lanes map[*laneStats]struct{} // every partition's lanes, for the metrics
}

// setup builds what the partitions share, once.
func (d *Dispatcher) setup() {
	d.once.Do(func() {
		d.slots = newPool(cmp.Or(d.MaxInFlight, DefaultMaxInFlight))
		d.lanes = map[*laneStats]struct{}{}
		if d.Metrics != nil {
			d.Metrics.lanes.Store(d)
		}
	})
}

func (d *Dispatcher) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

// Run handles one assigned partition until it stops (kafka.StreamHandler).
// It returns nil once the partition stops and the attempts under way have
// their outcomes written, and an error when an outcome could not be
// written: the consumer then runs it again with the records it did not
// finish, whose deliveries the endpoints took are marked in Redis first so
// they are not sent twice. When ctx ends, attempts under way are abandoned:
// they count no attempt and write nothing, and the partition's next owner
// sends them.
func (d *Dispatcher) Run(ctx context.Context, p *kafka.Partition) error {
	d.setup()
	return newPartition(d, ctx, p).run()
}

// register and unregister keep the metrics' view of the lanes.
func (d *Dispatcher) register(s *laneStats) {
	d.mu.Lock()
	d.lanes[s] = struct{}{}
	d.mu.Unlock()
}

func (d *Dispatcher) unregister(s *laneStats) {
	d.mu.Lock()
	delete(d.lanes, s)
	d.mu.Unlock()
}

// eachLane calls fn on every lane's statistics.
func (d *Dispatcher) eachLane(fn func(*laneStats)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for s := range d.lanes {
		fn(s)
	}
}
