// Package crashguard keeps a record that crashes its consumer from
// crashing it forever. A panic can be recovered in process; an out-of-
// memory kill, a fatal runtime error or a SIGKILL cannot, and a consumer
// that restarts reads the same record again and dies again. The guard
// remembers, in Redis, which offsets of each partition were being
// processed when the process died: after a crash the records of that
// batch are processed one at a time, and a record that was being
// processed alone when the process died Limit-1 times is quarantined
// (the caller diverts it to its dead-letter or rejected topic with the
// reason) instead of being processed once more.
//
// Use it around each partition's batch: Begin before processing, then
// Done when the batch's results are committed or known to have failed.
// A Begin without a Done is what a crash leaves behind.
//
// The state is one Redis hash per partition,
// <prefix>crash:<group>:<topic>:<partition>, with the fields
//
//	inflight  "first-last": the offsets being processed now
//	suspect   the last offset of a batch that was in flight at a crash;
//	          offsets up to it are processed alone
//	n<offset> how often that offset was begun alone without a Done
//
// and expires a day after its last change, so a partition that moved away
// leaves nothing behind for long. Redis is used rather than a file so that
// the count follows a partition to whichever instance owns it next.
package crashguard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLimit is the crashes after which a record is quarantined: one
// crash may be bad luck (an OOM kill caused by something else), two in a
// row with the same record alone are not.
const DefaultLimit = 3

// stateTTL is how long a partition's state outlives its last change.
const stateTTL = 24 * time.Hour

// Guard tracks one consumer group's partitions. It is safe for concurrent
// use by the partitions' workers.
type Guard struct {
	rdb   redis.Cmdable
	key   string // <prefix>crash:<group>:
	limit int

	mu       sync.Mutex
	suspects map[string]int64 // by partition key: last suspect offset
}

// New returns a guard for group's partitions; prefix separates
// installations sharing a Redis (the topic prefix). A record is
// quarantined on its limit-th crash; limit < 1 means DefaultLimit.
func New(rdb redis.Cmdable, prefix, group string, limit int) *Guard {
	if limit < 1 {
		limit = DefaultLimit
	}
	return &Guard{rdb: rdb, key: prefix + "crash:" + group + ":", limit: limit, suspects: map[string]int64{}}
}

// Limit is the crashes after which a record is quarantined.
func (g *Guard) Limit() int { return g.limit }

// Plan is what Begin decides for a batch.
type Plan struct {
	// Isolate: the batch holds offsets that were in flight when the
	// process died. Process its records one at a time, each finished
	// (committed) before the next is begun, so that a crash points at one
	// record. Only a batch of more than one record is told to isolate.
	Isolate bool
	// Quarantine: the batch is one record that crashed the process
	// Crashes times. Do not process it: divert it with the reason and
	// mark it done.
	Quarantine bool
	// Crashes is how often the batch's record crashed the process, for
	// a one-record batch after a crash.
	Crashes int
}

// Reason is the text a quarantined record carries.
func (p Plan) Reason(service string) string {
	return fmt.Sprintf("quarantined: this record crashed the %s %d times", service, p.Crashes)
}

func (g *Guard) partitionKey(topic string, partition int32) string {
	return g.key + topic + ":" + strconv.Itoa(int(partition))
}

// Begin records that the offsets first to last of a partition are about
// to be processed and says how. An error (Redis unreachable) leaves the
// batch unprotected: the caller processes it as usual rather than stall
// every tenant on Redis.
func (g *Guard) Begin(ctx context.Context, topic string, partition int32, first, last int64) (Plan, error) {
	k := g.partitionKey(topic, partition)
	state, err := g.rdb.HGetAll(ctx, k).Result()
	if err != nil {
		return Plan{}, fmt.Errorf("crash guard %s: %w", k, err)
	}
	suspect, known := int64(-1), false
	if v, ok := state["suspect"]; ok {
		suspect, _ = strconv.ParseInt(v, 10, 64)
		known = true
	}
	pipe := g.rdb.TxPipeline()
	if v, ok := state["inflight"]; ok {
		// Begun and never done: the process died while processing it.
		if _, end, ok := parseRange(v); ok && end > suspect {
			suspect, known = end, true
			pipe.HSet(ctx, k, "suspect", suspect)
		}
	}
	var plan Plan
	var count *redis.IntCmd
	switch {
	case known && first > suspect:
		// Past the crashed batch: back to normal.
		pipe.HDel(ctx, k, "suspect")
		suspect, known = -1, false
	case known && last > first:
		plan.Isolate = true
	case known:
		count = pipe.HIncrBy(ctx, k, "n"+strconv.FormatInt(first, 10), 1)
	}
	if !plan.Isolate {
		pipe.HSet(ctx, k, "inflight", strconv.FormatInt(first, 10)+"-"+strconv.FormatInt(last, 10))
	}
	pipe.Expire(ctx, k, stateTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return Plan{}, fmt.Errorf("crash guard %s: %w", k, err)
	}
	g.mu.Lock()
	if known {
		g.suspects[k] = suspect
	} else {
		delete(g.suspects, k)
	}
	g.mu.Unlock()
	if count != nil {
		// This is the count-th time the record is begun alone: each
		// earlier one died, and so did the batch that held it.
		plan.Crashes = int(count.Val())
		plan.Quarantine = plan.Crashes >= g.limit
	}
	return plan, nil
}

// Done records that the partition's batch begun last is finished: its
// results are committed (ok), or it failed in a way the process saw (an
// aborted transaction, a revoked partition) and will be read again. Only
// a finished record alone has its crash count cleared; a failure the
// process saw is not a crash, and leaves the count as it was.
func (g *Guard) Done(ctx context.Context, topic string, partition int32, first, last int64, ok bool) error {
	k := g.partitionKey(topic, partition)
	pipe := g.rdb.TxPipeline()
	pipe.HDel(ctx, k, "inflight")
	if first == last {
		n := "n" + strconv.FormatInt(first, 10)
		if ok {
			pipe.HDel(ctx, k, n)
		} else {
			g.undoCount(ctx, pipe, k, n)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("crash guard %s: %w", k, err)
	}
	return nil
}

// undoCount takes back the increment of a Begin that ended without a
// crash, if the record was being counted.
func (g *Guard) undoCount(ctx context.Context, pipe redis.Pipeliner, k, field string) {
	g.mu.Lock()
	_, counting := g.suspects[k]
	g.mu.Unlock()
	if counting {
		pipe.HIncrBy(ctx, k, field, -1)
	}
}

// Isolating reports whether some partition this guard has seen is still
// inside a crashed batch's offsets, so that the caller should take its
// records one at a time.
func (g *Guard) Isolating() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.suspects) > 0
}

// Forget drops what the guard knows in memory about partitions this
// process no longer owns (revoked or lost): their next owner reads the
// state from Redis.
func (g *Guard) Forget(topic string, partitions ...int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range partitions {
		delete(g.suspects, g.partitionKey(topic, p))
	}
}

func parseRange(v string) (first, last int64, ok bool) {
	a, b, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	return first, last, err1 == nil && err2 == nil
}
