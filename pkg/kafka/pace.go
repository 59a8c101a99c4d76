package kafka

import "time"

// TxnInterval is the least time between the starts of two of a
// Transactor's transactions while calls come faster than one per
// TxnInterval; the calls that come meanwhile share the next transaction.
//
// The broker's work for a transaction hardly depends on how many records
// it holds: on the 2-core test machine, about 7 ms of the broker's CPU
// per matcher transaction (its produce, the offset commit, EndTxn, the
// markers and the readers' fetches that follow), at 50 events/s as at
// 1,000/s. A Transactor that began each transaction as soon as the last
// one ended ran one after the other at 1,000 events/s, about 110 a
// second, and took most of the broker's CPU from everything else. Paced
// at 15 ms, the broker's CPU in the latency scenario fell by about a
// third and the end-to-end latency, p50 and p99, fell with it (the
// other hops got the CPU back; loadtest/README.md).
const TxnInterval = 15 * time.Millisecond

// pacer decides how long a Transactor's next transaction waits. It paces
// only under a steady load, judged by the average time between calls (an
// exponentially weighted moving average): a burst after a quiet spell,
// or calls further apart than the interval on average (a low rate, with
// its random bunching), never wait, so pacing adds nothing to the latency
// of a low rate.
type pacer struct {
	interval  time.Duration
	lastCall  time.Time
	lastBegin time.Time
	gap       time.Duration // the average time between calls
}

// gapWeight is the weight of the newest gap in the average: about the
// last ten calls count.
const gapWeight = 0.1

// called counts a call made at now.
func (p *pacer) called(now time.Time) {
	if p.lastCall.IsZero() {
		p.lastCall, p.gap = now, p.interval*10 // as after a quiet spell
		return
	}
	gap := now.Sub(p.lastCall)
	p.lastCall = now
	p.gap = time.Duration(float64(p.gap)*(1-gapWeight) + float64(gap)*gapWeight)
}

// begin returns how long a transaction about to begin at now should wait
// first; the transaction is taken to begin once that wait is over.
func (p *pacer) begin(now time.Time) time.Duration {
	wait := p.until(now)
	p.lastBegin = now.Add(wait)
	return wait
}

// until is how long a transaction beginning at now would wait (begin's
// answer), without taking it to begin.
func (p *pacer) until(now time.Time) time.Duration {
	if p.gap >= p.interval {
		return 0
	}
	return max(p.lastBegin.Add(p.interval).Sub(now), 0)
}
