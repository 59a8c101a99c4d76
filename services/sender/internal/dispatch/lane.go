package dispatch

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/record"
)

// item is one delivery taken from the partition.
type item struct {
	rec   *kgo.Record
	d     record.Delivery
	parks int // times it was parked before (wire.HeaderParked)
	// immediate: the record carries wire.HeaderImmediate, so ingest may
	// have claimed it (claims.go).
	immediate bool
	// waited: it was held on a pending claim (claims.go), so a claim
	// gone when looked at again expired.
	waited bool
	// handedOn is set, before they are produced, once its outcome hands
	// the delivery on to a record of its own: a retry tier (a failed
	// attempt, a park) or the DLQ (replayable). From then on a copy read
	// while this one is still held (its outcome still being written) may
	// be that record back from the retry service, its next life, and is
	// no repeat of it. Set by the attempt's goroutine, read by the loop.
	handedOn atomic.Bool
}

// handOn marks items as handed on (item.handedOn).
func handOn(items []*item) {
	for _, it := range items {
		it.handedOn.Store(true)
	}
}

// job is one request to make: one delivery, or a batch of one
// subscription's deliveries to one URL (batch.go).
type job struct {
	items   []*item
	slotted bool      // its rate-limit slot is known (or it has no limit)
	slot    time.Time // not before; zero for at once
	waited  bool      // it had to wait for its slot (counted once)
	// mayRecover: it started while its lane was failing, so its success
	// ends the endpoint's streak in Redis (and may report a recovery).
	mayRecover bool
}

// lane is one endpoint's (subscription's) share of a partition: what it
// holds in memory and how much it may have in flight. It belongs to the
// partition's loop goroutine; stats is what others may read.
type lane struct {
	id           string
	sub          *record.Subscription // as the view last had it; nil while unknown
	ep           *endpoint            // opened from sub
	unknownSince time.Time            // while the view does not know sub: since when
	unknown      []*item              // waiting for the view to know sub
	window       []*item              // batching: waiting for their batch to fill or its window to close
	queue        []*job               // waiting to go, in order
	flying       map[*job]time.Time   // in flight, since when
	writing      int                  // jobs whose request ended and whose outcome is being written
	limit        *limiter
	// gone is why Hookline disabled the subscription (a 410, or failing
	// past the health window): the rest is dead-lettered unsent until the
	// subscription changes (the view then holds it disabled, or enabled
	// again by its owner). "" while it has not.
	gone string
	// parkedUntil is the due time of the last delivery this lane parked:
	// the next one is due after it.
	parkedUntil time.Time
	// Ordered subscriptions only: tail is the last delivery parked and not
	// back yet, and tailTier the retry tier of that parked sequence. While
	// tail is set, fresh deliveries are parked behind it.
	tail       string
	tailTier   time.Duration
	tailLoaded bool      // Tails consulted for a tail a previous owner left
	timer      time.Time // when the loop looks at it next for a slot or a window; zero for never
	// failing: failed since its last success, so the jobs it starts may end
	// a streak in Redis (job.mayRecover). A new lane starts failing: a
	// streak may have been counted by the partition's previous owner or by
	// an idle lane since dropped, and its recovery must not go unreported.
	failing   bool
	idleSince time.Time // when it last held nothing
	stats     *laneStats
}

// laneStats are a lane's figures for the metrics, read at scrape time.
type laneStats struct {
	subscription, tenant string
	backlog              atomic.Int64 // deliveries waiting in memory
	inFlight             atomic.Int64 // requests in flight
	parked               atomic.Int64 // parked and not seen back yet
	limit                atomic.Int64 // its concurrency limit
}

func (l *lane) inFlight() int { return len(l.flying) }

// oldest is how long the oldest request in flight has been.
func (l *lane) oldest(now time.Time) time.Duration {
	var d time.Duration
	for _, since := range l.flying {
		d = max(d, now.Sub(since))
	}
	return d
}

// maxWriting bounds the lane's jobs whose request has ended and whose
// outcome Kafka has not acknowledged yet (writing): as many as it may
// have in flight, and at least MinWriteAhead. An endpoint that takes one
// request at a time then need not wait for each write, while a lane whose
// writes stall (Kafka slow or down) stops sending after a few: an outcome
// not written is a delivery sent again if the sender dies.
func (l *lane) maxWriting() int { return max(l.limit.max(), MinWriteAhead) }

func (l *lane) ordered() bool { return l.sub != nil && l.sub.Ordered }

func (l *lane) rateLimited() bool { return l.sub != nil && l.sub.RateLimitPerSecond > 0 }

// waiting is how many deliveries the lane holds that are not in flight.
func (l *lane) waiting() int {
	n := len(l.unknown) + len(l.window)
	if !batching(l.sub) {
		return n + len(l.queue) // one delivery per job
	}
	for _, j := range l.queue {
		n += len(j.items)
	}
	return n
}

// idle reports whether the lane holds nothing and remembers nothing
// worth keeping.
func (l *lane) idle() bool {
	return len(l.flying) == 0 && l.writing == 0 && len(l.queue) == 0 && len(l.window) == 0 && len(l.unknown) == 0 && l.tail == ""
}

// wait is how long a request joining the lane's queue now is expected to
// wait before it goes: the requests ahead of it, the limit's number at a
// time, each taking the endpoint's usual latency. ok is false while
// nothing is known of it.
func (l *lane) wait(oldest time.Duration) (d time.Duration, ok bool) {
	latency, ok := l.latency(oldest)
	if !ok {
		return 0, false
	}
	ahead := len(l.queue) + len(l.flying)
	rounds := ahead / l.limit.max()
	d = time.Duration(rounds) * latency
	return d, true
}

// latency is how long a request of the lane is expected to take: its
// usual latency, or at least as long as its oldest request in flight has
// taken so far, once that is long enough to say something (an endpoint
// that never answers shows it before its first timeout).
func (l *lane) latency(oldest time.Duration) (time.Duration, bool) {
	if oldest < minTelling {
		oldest = 0
	}
	latency := max(l.limit.latency(), oldest)
	return latency, latency > 0
}

// minTelling is how long a request in flight must have taken for its age
// to say something of its endpoint.
const minTelling = 50 * time.Millisecond

// updateStats publishes the lane's figures.
func (l *lane) updateStats() {
	l.stats.backlog.Store(int64(l.waiting()))
	l.stats.inFlight.Store(int64(len(l.flying)))
	l.stats.limit.Store(int64(l.limit.max()))
}
