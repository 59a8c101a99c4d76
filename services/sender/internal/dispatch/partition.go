package dispatch

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/wire"
)

const (
	// tick is how often a partition looks again at what waits for no
	// particular time: subscriptions the view does not know yet, the marks
	// to write, lanes whose backlog outgrew their wait, idle lanes.
	tick = 50 * time.Millisecond
	// quietTick is how often a partition that holds nothing looks again:
	// only its idle lanes are left to drop. Twenty wakeups a second of
	// every partition were most of an idle sender's CPU.
	quietTick = time.Second
	// reviewEvery is how often lanes with a backlog are reviewed.
	reviewEvery = 250 * time.Millisecond
	// markBatch is how many delivered ids are marked in one Redis call at
	// most; fewer are marked at the next tick.
	markBatch = 512
	// maxParkDelay caps how far ahead a parked delivery is due: one that
	// comes back to a lane still full is parked again.
	maxParkDelay = 10 * time.Minute
	// idleLane is how long a lane that holds nothing is kept, with what its
	// limit learnt, before it is dropped.
	idleLane = 5 * time.Minute
	// eventQueue is the buffer of the loop's event channel.
	eventQueue = 1024
	// slotLead is how early a job whose rate-limit slot is near starts: its
	// goroutine waits out the rest, to the microsecond, rather than the
	// loop's timer (a millisecond at best) spacing a fast limit's requests.
	slotLead = 5 * time.Millisecond
)

// Reasons a delivery is parked, the label of hookline_sender_parked_total.
const (
	parkBacklog   = "backlog"    // its lane's backlog would keep it waiting too long
	parkOrdered   = "ordered"    // an ordered subscription's: behind its parked ones
	parkRateLimit = "rate_limit" // its rate-limit slot lies beyond RateLimitWait
)

// partition is one Run: the lanes of a partition and what its loop
// goroutine knows. Goroutines that make requests or write records tell the
// loop of their outcome through events; nothing here is shared otherwise.
type partition struct {
	d   *Dispatcher
	ctx context.Context
	p   *kafka.Partition
	log zerolog.Logger

	lanes map[string]*lane
	held  int // deliveries in memory: waiting, in flight, being written
	// holding is those deliveries by markKey, to drop repeats (repeat).
	holding map[string][]*item
	// unmarked counts the ids delivered whose marks are not in Redis yet
	// (the next flushMarks): a repeat read meanwhile is dropped too.
	unmarked map[string]int
	events   chan func()   // outcomes of other goroutines, applied on the loop
	wake     chan struct{} // a pool slot freed
	running  int           // goroutines that will send an event

	dirty    map[*lane]struct{} // lanes to start requests from in the next pass
	windows  map[*lane]struct{} // batching lanes whose window took deliveries
	poolWait map[*lane]struct{} // lanes that found the pool full
	timers   timerHeap          // lanes waiting for a rate-limit slot or a window
	armed    time.Time          // what the loop's timer is set for
	reviewed time.Time

	pending []*item // fetched, waiting for Redis to say which are delivered
	// awaiting are held deliveries that ingest claimed in immediate mode,
	// waiting for that attempt to end (claims.go).
	awaiting   []*item
	claimsDown bool // the last read of claims failed (logged once)
	retryAt    time.Time
	redisWait  time.Duration
	marks      []string      // delivered ids to mark
	markRecs   []*kgo.Record // finished once marked
	marking    bool
	// lastInOrder is closed once the last tail save or clear has run.
	lastInOrder <-chan struct{}
	stopping    bool
	failed      error // an outcome could not be written: run again
}

func newPartition(d *Dispatcher, ctx context.Context, p *kafka.Partition) *partition {
	return &partition{
		d: d, ctx: ctx, p: p,
		log:   d.Log.With().Str("topic", p.Topic).Int32("partition", p.Partition).Logger(),
		lanes: map[string]*lane{}, holding: map[string][]*item{}, unmarked: map[string]int{},
		events: make(chan func(), eventQueue), wake: make(chan struct{}, 1),
		dirty: map[*lane]struct{}{}, windows: map[*lane]struct{}{}, poolWait: map[*lane]struct{}{},
	}
}

// nudge tells the loop that a pool slot freed; it never waits.
func (pt *partition) nudge() {
	select {
	case pt.wake <- struct{}{}:
	default:
	}
}

// run is the partition's loop: it takes fetched records, applies the
// outcomes other goroutines send, starts what may start, and returns once
// the partition stops and nothing it started is under way.
func (pt *partition) run() error {
	fetched := make(chan []*kgo.Record)
	pumpCtx, cancelPump := context.WithCancel(pt.ctx)
	pumped := make(chan struct{})
	go func() { // Next waits; the loop must not
		defer close(pumped)
		for {
			recs := pt.p.Next(pumpCtx)
			select {
			case fetched <- recs:
			case <-pumpCtx.Done():
				return
			}
			if recs == nil {
				return
			}
		}
	}()
	defer func() {
		cancelPump()
		<-pumped
		pt.d.slots.forget(pt)
		for _, l := range pt.lanes {
			pt.d.unregister(l.stats)
		}
	}()

	timer := time.NewTimer(tick)
	defer timer.Stop()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	quiet := false // ticking every quietTick
	stopping, done := pt.p.Stopping(), pt.ctx.Done()
	for {
		var in chan []*kgo.Record
		if pt.accepting() {
			in = fetched
		}
		pt.arm(timer)
		select {
		case recs := <-in:
			if recs == nil {
				pt.stop()
				break
			}
			pt.take(recs)
		case fn := <-pt.events:
			fn()
			pt.drain()
		case <-pt.wake:
			for l := range pt.poolWait {
				pt.dirty[l] = struct{}{}
			}
			clear(pt.poolWait)
		case <-timer.C:
			pt.armed = time.Time{}
			pt.due()
		case <-ticker.C:
			pt.tick()
		case <-stopping:
			stopping = nil
			pt.stop()
		case <-done:
			done = nil
			pt.stop()
		}
		pt.dispatch()
		if q := pt.quiet(); q != quiet {
			quiet = q
			if quiet {
				ticker.Reset(quietTick)
			} else {
				ticker.Reset(tick)
			}
		}
		if pt.stopping && pt.running == 0 {
			if len(pt.marks) > 0 && !pt.marking {
				pt.flushMarks() // the last ones, before the partition moves on
				continue
			}
			if !pt.marking {
				if pt.lastInOrder != nil {
					<-pt.lastInOrder
				}
				return pt.result()
			}
		}
	}
}

// drain applies the events already waiting, so that one dispatch pass
// follows a burst of answers rather than one pass each.
func (pt *partition) drain() {
	for range eventQueue {
		select {
		case fn := <-pt.events:
			fn()
		default:
			return
		}
	}
}

// accepting reports whether the loop takes more records: not while a
// fetch waits for Redis, nor while the partition holds MaxBacklog
// deliveries. What stays in Kafka meanwhile is the cheapest parking of
// all: since every lane parks what it could not send within BacklogWait,
// the deliveries held go out within about that, and the partition goes on.
func (pt *partition) accepting() bool {
	return !pt.stopping && pt.pending == nil && pt.held < pt.maxBacklog()
}

// quiet reports whether the partition holds nothing a tick would act on:
// no delivery in memory, no request or write under way, no mark to write,
// no claim to look at again.
func (pt *partition) quiet() bool {
	return pt.held == 0 && pt.running == 0 && len(pt.marks) == 0 && !pt.marking && len(pt.awaiting) == 0 && pt.pending == nil
}

func (pt *partition) maxBacklog() int { return cmp.Or(pt.d.MaxBacklog, DefaultMaxBacklog) }

func (pt *partition) backlogWait() time.Duration {
	return cmp.Or(pt.d.BacklogWait, DefaultBacklogWait)
}

// result is what Run returns once everything has stopped.
func (pt *partition) result() error {
	switch {
	case pt.failed != nil:
		return pt.failed
	case pt.ctx.Err() != nil:
		return fmt.Errorf("partition handler interrupted: %w", context.Cause(pt.ctx))
	}
	return nil
}

// stop takes nothing more and starts nothing new. Deliveries not started
// are left unfinished: the partition's next owner sends them.
func (pt *partition) stop() {
	if pt.stopping {
		return
	}
	pt.stopping = true
	pt.pending = nil
	for _, it := range pt.awaiting {
		pt.release(it)
	}
	pt.d.Metrics.ClaimWaiting.Sub(float64(len(pt.awaiting)))
	pt.awaiting = nil
	for _, l := range pt.lanes {
		for _, it := range l.unknown {
			pt.release(it)
		}
		for _, it := range l.window {
			pt.release(it)
		}
		for _, j := range l.queue {
			for _, it := range j.items {
				pt.release(it)
			}
		}
		l.unknown, l.window, l.queue = nil, nil, nil
		l.updateStats()
	}
}

// fail records that an outcome could not be written: the partition stops
// and Run returns err, to be run again with what it did not finish.
func (pt *partition) fail(err error) {
	if pt.failed == nil {
		pt.failed = err
		pt.log.Error().Err(err).Msg("writing outcomes failed; the partition's unfinished deliveries are taken again")
	}
	pt.stop()
}

// take decodes a fetch and checks it against the delivered marks.
func (pt *partition) take(recs []*kgo.Record) {
	items, poison, reasons := pt.d.decode(recs)
	if len(poison) > 0 {
		pt.write(nil, poison, func(out *outbox) {
			for i, r := range poison {
				pt.d.deadLetterRecord(r, reasons[i], out)
			}
		}, nil)
	}
	pt.pending = items
	pt.check()
}

// check drops the pending deliveries already delivered or held, in one
// Redis call, and admits the others. Until Redis answers, the fetch waits
// and the partition takes nothing more: sending without the marks could
// send a delivery twice.
func (pt *partition) check() {
	items := pt.pending
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = markKey(&it.d)
	}
	marked, err := pt.d.Delivered.Marked(pt.ctx, ids)
	if err != nil {
		if pt.ctx.Err() != nil {
			return
		}
		pt.d.Metrics.RedisErrors.Inc()
		pt.redisWait = min(max(2*pt.redisWait, 100*time.Millisecond), 5*time.Second)
		pt.retryAt = pt.d.now().Add(pt.redisWait)
		pt.log.Warn().Err(err).Dur("retry_in", pt.redisWait).Msg("delivered marks unavailable; deliveries wait for Redis")
		return
	}
	pt.pending, pt.redisWait, pt.retryAt = nil, 0, time.Time{}
	fresh, taken := items[:0], make(map[string]bool, len(items))
	for i, it := range items {
		// taken: a repeat of one admitted from this same fetch, which is
		// held only once settle admits it.
		if marked[i] || pt.repeat(ids[i]) || pt.unmarked[ids[i]] > 0 || taken[ids[i]] {
			pt.d.Metrics.Suppressed.Inc()
			pt.p.Finish(it.rec)
			continue
		}
		taken[ids[i]] = true
		fresh = append(fresh, it)
	}
	pt.settle(fresh) // immediate mode's claims (claims.go)
}

// hold and release count a delivery in and out of the partition's memory.
func (pt *partition) hold(it *item) {
	pt.held++
	key := markKey(&it.d)
	pt.holding[key] = append(pt.holding[key], it)
}

func (pt *partition) release(it *item) {
	pt.held--
	key := markKey(&it.d)
	held := slices.DeleteFunc(pt.holding[key], func(h *item) bool { return h == it })
	if len(held) == 0 {
		delete(pt.holding, key)
		return
	}
	pt.holding[key] = held
}

// repeat reports whether a delivery read now repeats one the partition
// holds that will still decide its fate: waiting, in flight, or delivered
// and being written. One held whose outcome handed it on (item.handedOn)
// does not count: its retry or park can be back before its outcome is
// all written (a Redis write of the health streak or the parked tail
// waiting, a partition of the delivery log electing a leader), and that
// copy, dropped as a repeat, was lost. A true repeat read in that window
// is sent again: a duplicate at worst, never a loss.
func (pt *partition) repeat(key string) bool {
	for _, it := range pt.holding[key] {
		if !it.handedOn.Load() {
			return true
		}
	}
	return false
}

// markKey is what the delivered marks and the partition's memory know a
// delivery by: its id, or for a re-run from the history its id and that
// re-run's, so that a re-run of a delivery delivered before is sent, once.
func markKey(d *record.Delivery) string {
	if d.Redelivery == "" {
		return d.ID
	}
	return d.ID + "/" + d.Redelivery
}

// lane returns the subscription's lane, made on first use.
func (pt *partition) lane(id string) *lane {
	l := pt.lanes[id]
	if l == nil {
		l = &lane{id: id, flying: map[*job]time.Time{}, limit: newLimiter(pt.startLimit(), pt.ceiling(0)),
			stats: &laneStats{subscription: id}, failing: true}
		pt.lanes[id] = l
		pt.d.register(l.stats)
	}
	return l
}

func (pt *partition) startLimit() int { return cmp.Or(pt.d.PerEndpoint, DefaultPerEndpoint) }

// ceiling is the most requests a lane may have in flight: the
// subscription's max_in_flight, or the adaptive default.
func (pt *partition) ceiling(maxInFlight int32) int {
	if maxInFlight > 0 {
		return int(maxInFlight)
	}
	return cmp.Or(pt.d.MaxPerEndpoint, DefaultMaxPerEndpoint)
}

// refresh brings the lane's settings up to the view's subscription.
func (pt *partition) refresh(l *lane) {
	sub, ok := pt.d.View.Get(l.id)
	switch {
	case !ok && l.sub == nil && !l.unknownSince.IsZero():
		return // still looking
	case !ok:
		// Unknown yet (created a moment ago) or deleted: lookFor tells
		// which once the view has caught up. The moment is on the clock
		// of the view's syncs (kafka.Syncs), the real one.
		l.sub, l.ep, l.unknownSince = nil, nil, time.Now()
		return
	case sub == l.sub && !l.ep.Stale(pt.d.now()):
		return
	}
	l.sub, l.unknownSince, l.gone = sub, time.Time{}, ""
	l.ep = pt.d.open(sub)
	l.stats.tenant = sub.Tenant
	ceiling := pt.ceiling(sub.MaxInFlight)
	if sub.Ordered {
		ceiling = 1
	}
	l.limit.setCeiling(ceiling)
}

// admit takes a delivery into its lane: dead-lettered when its
// subscription cannot be sent to, held while the view does not know it,
// else routed.
func (pt *partition) admit(it *item) {
	l := pt.lane(it.d.SubscriptionID)
	pt.hold(it)
	if len(l.unknown) > 0 {
		l.unknown = append(l.unknown, it) // behind the ones already waiting
		l.updateStats()
		return
	}
	pt.refresh(l)
	if l.sub == nil {
		l.unknown = append(l.unknown, it)
		l.updateStats()
		return
	}
	pt.route(l, it)
}

// route sends a delivery of a known subscription on its way.
func (pt *partition) route(l *lane, it *item) {
	switch {
	case l.ep.Unsendable != "":
		pt.deadLetter(l, []*item{it}, l.ep.Unsendable)
		return
	case l.gone != "":
		pt.deadLetter(l, []*item{it}, subscription.DisabledError(l.gone))
		return
	}
	if it.parks > 0 && l.stats.parked.Load() > 0 {
		l.stats.parked.Add(-1)
	}
	if l.ordered() {
		pt.loadTail(l)
		if l.tail != "" {
			if it.parks == 0 {
				pt.park(l, []*item{it}, parkOrdered, time.Time{})
				return
			}
			// Back from parking: taken whatever the backlog, since
			// parking it again would put it behind later ones.
			if it.d.ID == l.tail {
				pt.clearTail(l)
			}
			pt.enqueue(l, it)
			return
		}
	}
	if pt.mustPark(l) {
		pt.park(l, []*item{it}, parkBacklog, time.Time{})
		return
	}
	pt.enqueue(l, it)
}

// mustPark reports whether a delivery joining the lane now would wait too
// long in memory: behind a backlog longer than BacklogWait.
func (pt *partition) mustPark(l *lane) bool {
	if len(l.queue)+l.inFlight() < l.limit.max() && len(l.window) == 0 {
		return false // it can start at once
	}
	wait, known := l.wait(l.oldest(pt.d.now()))
	// Unknown yet: it waits, and the review parks what outlasts the wait
	// once the endpoint's first answers (or silence) tell.
	return known && wait > pt.backlogWait()
}

// enqueue adds a delivery to its lane's queue, or its batching window
// (which dispatch closes once the whole fetch is in).
func (pt *partition) enqueue(l *lane, it *item) {
	if batching(l.sub) {
		l.window = append(l.window, it)
		pt.windows[l] = struct{}{}
	} else {
		l.queue = append(l.queue, &job{items: []*item{it}, slotted: !l.rateLimited()})
	}
	pt.dirty[l] = struct{}{}
	l.updateStats()
}

// closeWindows turns a batching lane's window into jobs: the full batches
// at once, the others once the window closes (or now, when force).
func (pt *partition) closeWindows(l *lane, force bool) {
	if len(l.window) == 0 {
		return
	}
	end := windowEnd(l.sub, l.window, pt.d.now())
	var keep []*item
	for _, items := range plan(l.window, l.sub) {
		if force || end.IsZero() || !pt.d.now().Before(end) || len(items) >= int(l.sub.Batch.MaxEvents) {
			l.queue = append(l.queue, &job{items: items, slotted: !l.rateLimited()})
			continue
		}
		keep = append(keep, items...)
	}
	l.window = keep
	if len(keep) > 0 {
		pt.at(l, end)
	}
	pt.dirty[l] = struct{}{}
}

// dispatch reserves rate-limit slots for the jobs that need them and
// starts what may start.
func (pt *partition) dispatch() {
	if pt.stopping {
		return
	}
	for l := range pt.windows {
		delete(pt.windows, l)
		pt.closeWindows(l, false)
	}
	pt.reserve()
	for l := range pt.dirty {
		delete(pt.dirty, l)
		pt.startFrom(l)
	}
}

// startFrom starts the lane's jobs, in order, while its limit, their
// rate-limit slots and the pool allow.
func (pt *partition) startFrom(l *lane) {
	now := pt.d.now()
	for len(l.queue) > 0 && l.inFlight() < l.limit.max() && l.writing < l.maxWriting() {
		j := l.queue[0]
		if !j.slotted {
			break // reserve runs first; only a failed reservation leaves one
		}
		if j.slot.After(now) && !j.waited {
			j.waited = true
			pt.d.Metrics.RateLimited.Inc()
		}
		if j.slot.After(now.Add(slotLead)) {
			pt.at(l, j.slot.Add(-slotLead))
			break
		}
		if !pt.d.slots.acquire(pt, l.inFlight()) {
			pt.poolWait[l] = struct{}{}
			break
		}
		l.queue[0] = nil
		l.queue = l.queue[1:]
		pt.start(l, j, now)
	}
	l.updateStats()
}

// reserve takes the rate-limit slots of every job that has none yet, for
// all lanes in one Redis round trip. Jobs whose slots lie beyond
// RateLimitWait are parked until then. If Redis fails, the jobs go out
// unlimited rather than stopping deliveries; that is counted and logged.
func (pt *partition) reserve() {
	var (
		asks  []ratelimit.Ask
		lanes []*lane
		first []int // per lane: its first job without a slot
	)
	for l := range pt.dirty { // new jobs make their lane dirty
		i := len(l.queue)
		for i > 0 && !l.queue[i-1].slotted {
			i--
		}
		if i == len(l.queue) {
			continue
		}
		if !l.rateLimited() {
			for _, j := range l.queue[i:] {
				j.slotted = true
			}
			continue
		}
		asks = append(asks, ratelimit.Ask{Key: l.id, PerSecond: int(l.sub.RateLimitPerSecond), N: len(l.queue) - i})
		lanes, first = append(lanes, l), append(first, i)
	}
	if len(asks) == 0 {
		return
	}
	grants, err := pt.d.Limiter.Reserve(pt.ctx, cmp.Or(pt.d.RateLimitWait, DefaultRateLimitWait), asks)
	now := pt.d.now()
	if err != nil && pt.ctx.Err() == nil {
		pt.d.Metrics.RedisErrors.Inc()
		pt.log.Warn().Err(err).Int("endpoints", len(asks)).Msg("rate limit unavailable; sending unlimited")
	}
	for k, l := range lanes {
		jobs := l.queue[first[k]:]
		if err != nil {
			for _, j := range jobs {
				j.slotted = true
			}
			continue
		}
		g := grants[k]
		for n, j := range jobs {
			j.slot, j.slotted = now.Add(g.At(n)), true
		}
		if g.Reserved < len(jobs) {
			rest := jobs[g.Reserved:]
			l.queue = l.queue[:first[k]+g.Reserved]
			for _, j := range rest {
				pt.d.Metrics.Deferred.Add(float64(len(j.items)))
				pt.park(l, j.items, parkRateLimit, j.slot)
			}
		}
		pt.dirty[l] = struct{}{}
	}
}

// start makes a job's request in a goroutine of its own.
func (pt *partition) start(l *lane, j *job, now time.Time) {
	l.flying[j] = now
	j.mayRecover = l.failing
	pt.running++
	ep, stopping := l.ep, pt.p.Stopping()
	go func() {
		a := pt.d.attempt(pt.ctx, ep, j, stopping, func(a attempt) {
			pt.events <- func() { pt.decided(l, j, a) }
		})
		pt.events <- func() { pt.running--; pt.attempted(l, j, a) }
	}()
}

// decided applies what a job's attempt says of its endpoint, once its
// request has ended and before its outcome is in Kafka: the job leaves
// the lane's requests in flight, so that the lane's next one may start
// (its place is the endpoint's, not the delivery log's), and the limiter
// sees the answer. attempted applies the rest once the outcome is
// written.
func (pt *partition) decided(l *lane, j *job, a attempt) {
	started := l.flying[j]
	delete(l.flying, j)
	l.writing++
	pt.dirty[l] = struct{}{}
	defer l.updateStats()
	if !a.unsent {
		l.limit.observe(started, a.res.Duration, a.overloaded())
	}
	if a.gone != "" && l.gone == "" {
		l.gone = a.gone
		pt.deadLetterWaiting(l, subscription.DisabledError(a.gone))
	}
	l.failing = !a.delivered
}

// attempted applies the outcome of a job's attempt once it is written
// (decided came first), or once it was abandoned.
func (pt *partition) attempted(l *lane, j *job, a attempt) {
	pt.dirty[l] = struct{}{}
	defer l.updateStats()
	for _, it := range j.items {
		pt.release(it)
	}
	if a.abandoned {
		// Cut short by a revoke or a shutdown (never decided): nothing
		// was written and the records stay unfinished, for the
		// partition's next owner.
		delete(l.flying, j)
		return
	}
	l.writing--
	if a.err != nil {
		if a.delivered {
			// The endpoint took them, but their outcome is not in Kafka,
			// so their records stay unfinished: mark them (before the
			// partition returns), so that the run that takes them again
			// drops them instead of sending them a second time.
			pt.mark(j.items, false)
		}
		pt.fail(fmt.Errorf("write the outcome of %d deliveries to %s: %w", len(j.items), l.id, a.err))
		return
	}
	if !a.delivered {
		pt.finish(j.items)
		return
	}
	pt.mark(j.items, true)
}

// mark queues the delivered marks of items for the next flushMarks, and
// with finish their records, which are finished once marked. Until a
// mark is in Redis its id is counted in unmarked, so a repeat read
// meanwhile is dropped.
func (pt *partition) mark(items []*item, finish bool) {
	for _, it := range items {
		pt.marks = append(pt.marks, it.d.ID)
		pt.unmarked[it.d.ID]++
		if it.d.Redelivery != "" {
			// The re-run itself, against its record being read again.
			pt.marks = append(pt.marks, markKey(&it.d))
			pt.unmarked[markKey(&it.d)]++
		}
		if finish {
			pt.markRecs = append(pt.markRecs, it.rec)
		}
	}
	if len(pt.marks) >= markBatch {
		pt.flushMarks()
	}
}

// finish tells the consumer that items are done.
func (pt *partition) finish(items []*item) {
	recs := make([]*kgo.Record, len(items))
	for i, it := range items {
		recs[i] = it.rec
	}
	pt.p.Finish(recs...)
}

// flushMarks remembers in Redis, in one call, what the endpoints took;
// then those records are finished. If Redis fails, everything was still
// sent and logged; only the guard against sending it again on a
// redelivery is missing, so count it, say so and go on.
func (pt *partition) flushMarks() {
	if pt.marking || len(pt.marks) == 0 {
		return
	}
	ids, recs := pt.marks, pt.markRecs
	pt.marks, pt.markRecs = nil, nil
	pt.marking = true
	pt.running++
	ctx := context.WithoutCancel(pt.ctx) // what was sent must be marked even when the handler stops
	go func() {
		err := pt.d.Delivered.Mark(ctx, ids...)
		if err != nil {
			pt.d.Metrics.RedisErrors.Inc()
		}
		pt.events <- func() {
			pt.running--
			pt.marking = false
			if err != nil && !pt.stopping {
				// Tried again at the next tick, the ids still held as
				// unmarked, so that a repeat read meanwhile is dropped
				// rather than sent again once Redis answers.
				pt.log.Warn().Err(err).Int("deliveries", len(ids)).Msg("could not mark deliveries as delivered; trying again")
				pt.marks, pt.markRecs = append(ids, pt.marks...), append(recs, pt.markRecs...)
				return
			}
			if err != nil {
				// Stopping: the records are finished all the same (the
				// endpoint took them); only a replay could send them again.
				pt.log.Error().Err(err).Int("deliveries", len(ids)).Msg("could not mark deliveries as delivered before the partition stopped")
			}
			for _, id := range ids {
				if pt.unmarked[id]--; pt.unmarked[id] <= 0 {
					delete(pt.unmarked, id)
				}
			}
			pt.p.Finish(recs...)
		}
	}()
}

// write produces what fill adds (on the loop, so that the records of one
// partition keep the order of the decisions) and, once Kafka has it all,
// and save has run (in order with the other saves and clears of parked
// tails), releases items from memory and finishes their records and more.
// A failure fails the partition with them unfinished.
func (pt *partition) write(items []*item, more []*kgo.Record, fill func(out *outbox), save func(context.Context)) {
	out := pt.d.outbox(pt.ctx)
	fill(out)
	var (
		acked chan error
		saved <-chan struct{}
	)
	if save != nil {
		acked = make(chan error, 1)
		saved = pt.inOrder(func(ctx context.Context) {
			if err := <-acked; err == nil {
				save(ctx)
			}
		})
	}
	pt.running++
	go func() {
		err := out.wait()
		if acked != nil {
			acked <- err
			<-saved
		}
		pt.events <- func() { pt.running--; pt.written(items, more, err) }
	}()
}

// written releases items once the records deciding their outcome are
// written (err nil) or failed, and then finishes their records and more,
// or fails the partition with them unfinished.
func (pt *partition) written(items []*item, more []*kgo.Record, err error) {
	for _, it := range items {
		pt.release(it)
	}
	if err != nil {
		pt.fail(fmt.Errorf("write %d records: %w", len(items)+len(more), err))
		return
	}
	pt.finish(items)
	pt.p.Finish(more...)
}

// inOrder runs fn in a goroutine once every fn given before has run, and
// returns a channel closed when it has: the parked tails of ordered lanes
// are saved and cleared in Redis in the order they changed. fn's context
// outlives the handler's.
func (pt *partition) inOrder(fn func(context.Context)) <-chan struct{} {
	prev, done := pt.lastInOrder, make(chan struct{})
	pt.lastInOrder = done
	ctx := context.WithoutCancel(pt.ctx)
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		fn(ctx)
	}()
	return done
}

// deadLetter writes items to the DLQ with reason, sent nowhere.
func (pt *partition) deadLetter(l *lane, items []*item, reason string) {
	handOn(items)
	pt.write(items, nil, func(out *outbox) {
		for _, it := range items {
			pt.d.deadLetter(it, reason, out)
		}
	}, nil)
	l.updateStats()
}

// deadLetterWaiting dead-letters everything the lane holds that has not
// started.
func (pt *partition) deadLetterWaiting(l *lane, reason string) {
	items := append(l.unknown, l.window...)
	for _, j := range l.queue {
		items = append(items, j.items...)
	}
	l.unknown, l.window, l.queue = nil, nil, nil
	if len(items) > 0 {
		pt.deadLetter(l, items, reason)
	}
}

// park moves items out of the partition's way: to a retry tier, due when
// their lane should be able to take them (or at due, when given), their
// attempt count unchanged. An ordered lane's parked deliveries all go to
// one tier, which releases them in order, and the lane parks every fresh
// delivery behind them until the last is back.
func (pt *partition) park(l *lane, items []*item, reason string, due time.Time) {
	now := pt.d.now()
	if due.IsZero() {
		due = now.Add(pt.parkDelay(l, now))
	}
	tier, _ := pt.d.Schedule.Next(1, due.Sub(now))
	if reason != parkRateLimit {
		due = now.Add(min(due.Sub(now), tier)) // within its tier's delay: no other record of the tier waits for it
	}
	if l.ordered() {
		if l.tail == "" {
			l.tailTier = tier
		}
		tier = l.tailTier
		l.tail = items[len(items)-1].d.ID
	}
	l.parkedUntil = maxTime(l.parkedUntil, due)
	l.stats.parked.Add(int64(len(items)))
	pt.d.Metrics.Parked.WithLabelValues(reason).Add(float64(len(items)))
	topic := pt.d.Topics.Retry(tier)
	handOn(items)
	var save func(context.Context)
	if l.ordered() && pt.d.Tails != nil {
		id, tail, tier := l.id, l.tail, tier
		save = func(ctx context.Context) {
			// Before the records are finished: a next owner of the
			// partition must find the tail if these offsets are committed.
			if err := pt.d.Tails.Save(ctx, id, tail, tier); err != nil {
				pt.d.Metrics.RedisErrors.Inc()
				pt.log.Warn().Err(err).Str("subscription", id).Msg("could not remember the parked tail of an ordered subscription")
			}
		}
	}
	pt.write(items, nil, func(out *outbox) {
		for _, it := range items {
			d := it.d
			d.DueAt = &due
			pt.d.emit(it.rec.Context, out, topic, &d, kgo.RecordHeader{Key: wire.HeaderParked, Value: []byte(strconv.Itoa(it.parks + 1))})
		}
	}, save)
	l.updateStats()
}

// parkDelay is when the lane should be able to take one more request:
// after its backlog and the deliveries it parked before, one request's
// share of its latency apart.
func (pt *partition) parkDelay(l *lane, now time.Time) time.Duration {
	wait, _ := l.wait(l.oldest(now))
	latency, _ := l.latency(l.oldest(now))
	per := latency / time.Duration(l.limit.max())
	if until := l.parkedUntil.Sub(now); until > wait {
		wait = until
	}
	return min(max(wait+per, pt.backlogWait()), maxParkDelay)
}

// review parks what a lane's queue holds beyond BacklogWait, from its
// end, so that what is parked keeps its order: an endpoint that slowed
// down (or stopped answering) does not hold the partition's offsets.
// Deliveries back from parking in an ordered lane stay: parking them again
// would put them behind later ones.
func (pt *partition) review(l *lane) {
	if len(l.queue) == 0 || (l.ordered() && l.tail != "") || l.rateLimited() {
		return
	}
	latency, known := l.latency(l.oldest(pt.d.now()))
	if !known {
		return
	}
	// The jobs that start within BacklogWait: the limit's number per round.
	rounds := int(pt.backlogWait() / latency)
	keep := max((rounds+1)*l.limit.max()-l.inFlight(), 1)
	if keep >= len(l.queue) {
		return
	}
	rest := l.queue[keep:]
	l.queue = l.queue[:keep]
	var items []*item
	for _, j := range rest {
		items = append(items, j.items...)
	}
	pt.park(l, items, parkBacklog, time.Time{})
}

// due handles the timers that came due: rate-limit slots and batching
// windows.
func (pt *partition) due() {
	now := pt.d.now()
	for pt.timers.Len() > 0 && !pt.timers[0].at.After(now) {
		e := heap.Pop(&pt.timers).(timerEntry)
		if e.l.timer.Equal(e.at) {
			e.l.timer = time.Time{}
		}
		if batching(e.l.sub) {
			pt.closeWindows(e.l, false)
		}
		pt.dirty[e.l] = struct{}{}
	}
}

// at has the loop look at l again at t (its earliest such time counts).
func (pt *partition) at(l *lane, t time.Time) {
	if !l.timer.IsZero() && !t.Before(l.timer) {
		return
	}
	l.timer = t
	heap.Push(&pt.timers, timerEntry{at: t, l: l})
}

// arm sets timer to the earliest of the next timer and the Redis retry.
func (pt *partition) arm(timer *time.Timer) {
	var at time.Time
	if pt.timers.Len() > 0 {
		at = pt.timers[0].at
	}
	if !pt.retryAt.IsZero() && (at.IsZero() || pt.retryAt.Before(at)) {
		at = pt.retryAt
	}
	if at.IsZero() || at.Equal(pt.armed) {
		return // nothing to wait for, or the timer is set for it already
	}
	pt.armed = at
	timer.Reset(max(at.Sub(pt.d.now()), time.Millisecond))
}

// tick does what waits for no particular time.
func (pt *partition) tick() {
	now := pt.d.now()
	if pt.pending != nil && !pt.retryAt.After(now) && !pt.stopping {
		pt.check()
	}
	pt.flushMarks()
	pt.lookAgain()
	review := now.Sub(pt.reviewed) >= reviewEvery
	if review {
		pt.reviewed = now
	}
	for id, l := range pt.lanes {
		if len(l.unknown) > 0 {
			pt.lookFor(l)
		}
		if review && !pt.stopping {
			pt.review(l)
		}
		if l.idle() {
			if l.idleSince.IsZero() {
				l.idleSince = now
			} else if now.Sub(l.idleSince) > idleLane {
				delete(pt.lanes, id)
				pt.d.unregister(l.stats)
			}
		} else {
			l.idleSince = time.Time{}
		}
	}
}

// lookFor routes the deliveries waiting for their subscription once the
// view knows it, and dead-letters them once a sync of the view that began
// after they waited has ended without it. Every delivery is written after
// its subscription (the matcher and ingest make deliveries only of
// subscriptions their own views hold), so a subscription still unknown
// then is deleted. A fixed wait instead (it was 3 s) dead-lettered the
// first deliveries of new subscriptions whenever the view fell further
// behind, under load. The lanes of every partition share the view's
// syncs (kafka.Syncs): a failed one is logged, and they wait on.
func (pt *partition) lookFor(l *lane) {
	pt.refresh(l)
	waiting := l.unknown
	switch {
	case l.sub != nil:
		l.unknown = nil
		for _, it := range waiting {
			pt.route(l, it)
		}
	case pt.d.View.Syncs().Poll(l.unknownSince):
		l.unknown = nil
		pt.deadLetter(l, waiting, "subscription deleted")
	}
	l.updateStats()
}

// loadTail reads, once per lane, the parked tail a previous owner of the
// partition left for an ordered subscription.
func (pt *partition) loadTail(l *lane) {
	if l.tailLoaded {
		return
	}
	l.tailLoaded = true
	if pt.d.Tails == nil || l.tail != "" {
		return
	}
	id, tier, err := pt.d.Tails.Load(pt.ctx, l.id)
	if err != nil {
		pt.d.Metrics.RedisErrors.Inc()
		pt.log.Warn().Err(err).Str("subscription", l.id).Msg("parked tail of an ordered subscription unknown")
		return
	}
	l.tail, l.tailTier = id, tier
}

// clearTail ends an ordered lane's parked sequence: its last delivery is
// back.
func (pt *partition) clearTail(l *lane) {
	l.tail = ""
	if pt.d.Tails != nil {
		id := l.id
		pt.inOrder(func(ctx context.Context) {
			if err := pt.d.Tails.Clear(ctx, id); err != nil {
				pt.d.Metrics.RedisErrors.Inc()
			}
		})
	}
}

// decode splits records into deliveries and those that cannot be decoded,
// with the reason of each.
func (d *Dispatcher) decode(recs []*kgo.Record) (items []*item, poison []*kgo.Record, reasons []string) {
	items = make([]*item, 0, len(recs))
	for _, r := range recs {
		it := &item{rec: r}
		if err := d.Codecs.Delivery.Unmarshal(r.Value, &it.d); err != nil {
			d.Log.Error().Err(err).Int32("partition", r.Partition).Int64("offset", r.Offset).Msg("undecodable delivery dead-lettered")
			poison, reasons = append(poison, r), append(reasons, err.Error())
			continue
		}
		for _, h := range r.Headers {
			switch h.Key {
			case wire.HeaderParked:
				it.parks, _ = strconv.Atoi(string(h.Value))
			case wire.HeaderImmediate:
				it.immediate = true
			}
		}
		items = append(items, it)
	}
	return items, poison, reasons
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// timerHeap orders lanes by when they next need a look.
type timerHeap []timerEntry

type timerEntry struct {
	at time.Time
	l  *lane
}

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
