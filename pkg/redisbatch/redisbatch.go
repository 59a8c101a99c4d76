// Package redisbatch lets concurrent callers share Redis round trips: the
// commands of every call that arrives while a pipeline is in flight go out
// together in the next one (group commit). Under load, a request that
// needs one Redis call costs a share of a round trip instead of one, and
// no longer waits for a connection of the pool.
package redisbatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeout bounds one shared pipeline. It runs for every caller in it, so
// it does not end with any one caller's context: a caller's wait is
// bounded by this instead (and by the client's own read and write
// timeouts, 3 s by default).
const Timeout = 5 * time.Second

// Batcher shares pipelines among concurrent callers: at most MaxInFlight
// pipelines at once; calls arriving while that many are in flight wait
// and go out together in the next, sent by the first of them.
type Batcher struct {
	rdb redis.UniversalClient
	max int

	mu       sync.Mutex
	inFlight int     // pipelines being sent
	queue    []*call // calls waiting for the next pipeline
}

// DefaultMaxInFlight is New's default: two pipelines, so that one can be
// gathering and written while the other waits for its answers.
const DefaultMaxInFlight = 2

// New returns a Batcher over rdb with at most maxInFlight pipelines at
// once (DefaultMaxInFlight when maxInFlight < 1).
func New(rdb redis.UniversalClient, maxInFlight int) *Batcher {
	if maxInFlight < 1 {
		maxInFlight = DefaultMaxInFlight
	}
	return &Batcher{rdb: rdb, max: maxInFlight}
}

type call struct {
	ctx   context.Context
	queue func(redis.Pipeliner)
	err   error
	wake  chan struct{} // closed when done, or when this call must send batch
	batch []*call       // set before wake is closed: this call sends them
}

// Do adds the commands queue adds to p to a shared pipeline and returns
// once that pipeline has been answered, with the first error of this
// call's own commands (redis.Nil is not an error: a missing key is an
// answer). The commands' results are in the commands queue made, as with
// redis.Pipeliner. queue runs on another caller's goroutine, so it must
// only add commands.
func (b *Batcher) Do(ctx context.Context, queue func(p redis.Pipeliner)) error {
	c := &call{ctx: ctx, queue: queue, wake: make(chan struct{})}
	b.mu.Lock()
	if b.inFlight < b.max {
		b.inFlight++
		b.mu.Unlock()
		b.send([]*call{c})
		return c.err
	}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	<-c.wake
	if c.batch != nil {
		b.send(c.batch)
	}
	return c.err
}

// send sends one pipeline for calls (calls[0] is the caller), gives each
// call its error, wakes the others, and hands the slot on.
func (b *Batcher) send(calls []*call) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(calls[0].ctx), Timeout)
	defer cancel()
	p := b.rdb.Pipeline()
	ends := make([]int, len(calls))
	for i, c := range calls {
		c.queue(p)
		ends[i] = p.Len()
	}
	cmds, err := p.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	// Exec's error is the first failed command's, or the connection's:
	// then it belongs to every call, whatever its commands say.
	failed := err != nil
	for _, cmd := range cmds {
		if e := cmd.Err(); e != nil && !errors.Is(e, redis.Nil) && e == err {
			failed = false // a command's own error: its caller's only
		}
	}
	start := 0
	for i, c := range calls {
		if failed {
			c.err = err
		}
		for _, cmd := range cmds[start:min(ends[i], len(cmds))] {
			if e := cmd.Err(); e != nil && !errors.Is(e, redis.Nil) && c.err == nil {
				c.err = e
			}
		}
		start = ends[i]
		if i > 0 {
			close(c.wake)
		}
	}
	b.next()
}

// next gives the slot of a pipeline just answered to the calls queued
// meanwhile (the first of them sends them all), or frees it.
func (b *Batcher) next() {
	b.mu.Lock()
	calls := b.queue
	b.queue = nil
	if len(calls) == 0 {
		b.inFlight--
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	calls[0].batch = calls
	close(calls[0].wake)
}
