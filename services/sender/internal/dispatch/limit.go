package dispatch

import "time"

// limiter is an endpoint's adaptive concurrency limit, AIMD as TCP's
// congestion window and Netflix's concurrency-limits do it: while answers
// come back as fast as usual the limit grows (doubling per round at first,
// then by one per round; a round is as many answers as the limit), and
// when they slow down or fail (timeouts, refused connections, 5xx, 429)
// it halves, once for the requests of one bad moment: an answer to a
// request started before the last decrease does not decrease it again.
// A healthy endpoint is not throttled and a struggling one is not
// hammered.
//
// "As fast as usual" compares a short average of the latency with a long
// one: rising means the short one is over twice the long one plus a
// little, so that the jitter of fast endpoints does not count.
type limiter struct {
	limit     float64
	ceiling   float64
	slowStart bool    // no decrease yet: grow by one per answer
	short     float64 // seconds; 0 before the first answer
	long      float64
	cut       time.Time // when it last decreased
}

const (
	shortWeight = 0.3  // the short average follows the last few answers
	longWeight  = 0.05 // the long one the last twenty or so
	risingSlack = 0.05 // seconds a fast endpoint's latency may jitter
)

// newLimiter starts at start, within [1, ceiling].
func newLimiter(start, ceiling int) *limiter {
	ceiling = max(ceiling, 1)
	return &limiter{limit: float64(min(max(start, 1), ceiling)), ceiling: float64(ceiling), slowStart: true}
}

// max is how many requests may be in flight.
func (l *limiter) max() int { return int(l.limit) }

// setCeiling changes the most the limit may reach (the subscription's
// max_in_flight changed).
func (l *limiter) setCeiling(ceiling int) {
	l.ceiling = float64(max(ceiling, 1))
	l.limit = min(l.limit, l.ceiling)
}

// observe takes the answer to a request started at started: how long it
// took and whether it says the endpoint is overloaded or unreachable.
func (l *limiter) observe(started time.Time, took time.Duration, failed bool) {
	x := took.Seconds()
	if l.long == 0 {
		l.short, l.long = x, x
	} else {
		l.short += shortWeight * (x - l.short)
		l.long += longWeight * (x - l.long)
	}
	if failed || l.short > 2*l.long+risingSlack {
		if started.After(l.cut) || l.cut.IsZero() {
			l.limit = max(1, l.limit/2)
			l.slowStart, l.cut = false, started.Add(took)
		}
		return
	}
	if l.slowStart {
		l.limit++
	} else {
		l.limit += 1 / l.limit
	}
	l.limit = min(l.limit, l.ceiling)
}

// latency is the typical time a request of this endpoint holds its slot,
// zero before the first answer.
func (l *limiter) latency() time.Duration { return time.Duration(l.short * float64(time.Second)) }
