package kafka

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Group lets concurrent callers that each wait for their records share
// produce requests (group commit), as ingest's API requests do: the
// records of every call that arrives while the group's previous send is
// unacknowledged go out together as soon as it is, instead of each call
// taking the next free produce request of the client (an idempotent
// producer keeps up to five in flight per broker, and with no linger each
// leaves with the few records buffered at that moment). A call that finds
// nothing in flight is sent at once: at a low rate nothing waits.
//
// One send holds the turn at a time: the broker works through a connection's requests
// one after the other anyway, so records waiting here for the send before
// theirs would otherwise have waited in the broker's queue, in requests
// of their own. With ingest's 64 concurrent one-event requests this made
// 12 records per produce request instead of 4, and 40% less broker CPU
// per event; two sends at a time made 8 (ingest's BenchmarkPostEvent;
// docs/decisions.md, issue 18 part 3).
//
// A send still unacknowledged after GroupHandOff hands the turn on
// anyway, so that a broker that stalls (a leader moving, a partition
// offline) delays the other calls by that much and not by its whole
// stall: they go out meanwhile, as they would have without the Group.
//
// It adds no retry or timeout of its own: each record is produced with
// the client's options (acks, idempotence, retries) and its own Context.
type Group struct {
	cl *kgo.Client

	mu      sync.Mutex
	sending bool         // a send holds the turn
	queue   []*groupCall // calls waiting for the next send
}

// GroupHandOff is how long a send may hold the turn: far above a produce's
// usual answer (milliseconds, a few tens on a loaded machine), short
// enough that a stall shows as a bump rather than an outage.
const GroupHandOff = 250 * time.Millisecond

// NewGroup returns a Group producing through cl.
func NewGroup(cl *kgo.Client) *Group { return &Group{cl: cl} }

type groupCall struct {
	ctx     context.Context
	records []*kgo.Record
	results kgo.ProduceResults
	wake    chan struct{} // closed when done, or when this call must send batch
	batch   []*groupCall  // set before wake is closed: this call sends them
}

// ProduceSync produces records and returns once every one of them is
// acknowledged or failed, like kgo.Client.ProduceSync, whose results it
// returns in the same order.
func (g *Group) ProduceSync(ctx context.Context, records ...*kgo.Record) kgo.ProduceResults {
	if len(records) == 0 {
		return nil
	}
	c := &groupCall{ctx: ctx, records: records, wake: make(chan struct{})}
	g.mu.Lock()
	if !g.sending {
		g.sending = true
		g.mu.Unlock()
		g.send([]*groupCall{c})
		return c.results
	}
	g.queue = append(g.queue, c)
	g.mu.Unlock()
	<-c.wake
	if c.batch != nil {
		g.send(c.batch)
	}
	return c.results
}

// send produces the records of calls (calls[0] is the caller), waits for
// all of them, gives each call its results and wakes the others. It hands
// the turn on when they are acknowledged, or after GroupHandOff if that
// comes first.
func (g *Group) send(calls []*groupCall) {
	left := 0
	for _, c := range calls {
		left += len(c.records)
	}
	var pending atomic.Int64
	pending.Store(int64(left))
	acked := make(chan struct{})
	for _, c := range calls {
		c.results = make(kgo.ProduceResults, len(c.records))
		for i, r := range c.records {
			g.cl.Produce(c.ctx, r, func(r *kgo.Record, err error) {
				c.results[i] = kgo.ProduceResult{Record: r, Err: err}
				if pending.Add(-1) == 0 {
					close(acked)
				}
			})
		}
	}
	handOff := time.NewTimer(GroupHandOff)
	select {
	case <-acked:
		handOff.Stop()
		g.wakeAll(calls)
		g.next()
	case <-handOff.C:
		g.next()
		<-acked
		g.wakeAll(calls)
	}
}

// wakeAll wakes the calls of a send but its sender, their results set.
func (g *Group) wakeAll(calls []*groupCall) {
	for _, c := range calls[1:] {
		close(c.wake)
	}
}

// next gives the slot of a send just acknowledged to the calls queued
// meanwhile (the first of them sends them all), or frees it.
func (g *Group) next() {
	g.mu.Lock()
	calls := g.queue
	g.queue = nil
	if len(calls) == 0 {
		g.sending = false
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	calls[0].batch = calls
	close(calls[0].wake)
}
