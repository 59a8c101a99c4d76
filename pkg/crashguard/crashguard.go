// Package crashguard keeps a record that crashes its consumer from
// crashing it forever. A panic can be recovered in process; an out-of-
// memory kill, a fatal runtime error or a SIGKILL cannot, and a consumer
// that restarts reads the same record again and dies again. The guard
// remembers, in Redis, which offsets of each partition were being
// processed when the process died: the records of such a batch are then
// processed one after another with each one marked before it is touched,
// so a further crash points at one record, and a record that crashed the
// process Limit times is quarantined (the caller diverts it to its
// dead-letter or rejected topic with the reason) instead of being
// processed once more.
//
// Use it around each partition's batch: Begin before processing it; in a
// suspect batch, Next before each record; Done when the batch's results
// are committed or known to have failed. A Begin or Next without a Done is
// what a crash leaves behind.
//
// The state is one Redis hash per partition,
// <prefix>crash:<group>:<topic>:<partition>, with the fields
//
//	inflight  "first-last": the offsets being processed now
//	suspect   the last offset of a batch that was in flight at a crash;
//	          batches up to it are processed record by record
//	n<offset> how often that record was marked by Next and not passed
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
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLimit is the crashes after which a record is quarantined: one
// crash may be bad luck (an OOM kill caused by something else), two in a
// row with the same record alone are not.
const DefaultLimit = 3

// stateTTL is how long a partition's state outlives its last change.
const stateTTL = 24 * time.Hour

// Guard tracks one consumer group's partitions. It keeps no state in
// memory and is safe for concurrent use.
type Guard struct {
	rdb   redis.Cmdable
	key   string // <prefix>crash:<group>:
	limit int
}

// New returns a guard for group's partitions; prefix separates
// installations sharing a Redis (the topic prefix). A record is
// quarantined on its limit-th crash; limit < 1 means DefaultLimit.
func New(rdb redis.Cmdable, prefix, group string, limit int) *Guard {
	if limit < 1 {
		limit = DefaultLimit
	}
	return &Guard{rdb: rdb, key: prefix + "crash:" + group + ":", limit: limit}
}

// Limit is the crashes after which a record is quarantined.
func (g *Guard) Limit() int { return g.limit }

// Plan is what Next decides for one record of a suspect batch.
type Plan struct {
	// Quarantine: the record crashed the process Crashes times. Do not
	// process it: divert it with the reason, and go on.
	Quarantine bool
	// Crashes is how often the process died with this record in flight:
	// the crash of the batch that held it, and each one since while it
	// was the record marked.
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
// to be processed, and reports whether they are suspect: some were in
// flight when the process last died. A suspect batch is processed one
// record after another, calling Next before each. An error (Redis
// unreachable) leaves the batch unprotected: the caller processes it as
// usual rather than stall every tenant on Redis.
func (g *Guard) Begin(ctx context.Context, topic string, partition int32, first, last int64) (bool, error) {
	k := g.partitionKey(topic, partition)
	state, err := g.rdb.HGetAll(ctx, k).Result()
	if err != nil {
		return false, fmt.Errorf("crash guard %s: %w", k, err)
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
	if known && first > suspect {
		// Past the crashed batch: back to normal.
		pipe.HDel(ctx, k, "suspect")
		known = false
	}
	pipe.HSet(ctx, k, "inflight", strconv.FormatInt(first, 10)+"-"+strconv.FormatInt(last, 10))
	pipe.Expire(ctx, k, stateTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("crash guard %s: %w", k, err)
	}
	return known, nil
}

// Next marks the record at offset as the one being processed in a
// suspect batch, after prev (the record before it in this batch, or -1),
// which it passed without a crash. It says whether to quarantine the
// record instead. Only a record marked when the process dies counts a
// crash, so the records around a poisonous one are never quarantined.
func (g *Guard) Next(ctx context.Context, topic string, partition int32, offset, prev int64) (Plan, error) {
	k := g.partitionKey(topic, partition)
	pipe := g.rdb.TxPipeline()
	if prev >= 0 {
		pipe.HDel(ctx, k, countField(prev))
	}
	count := pipe.HIncrBy(ctx, k, countField(offset), 1)
	pipe.HSet(ctx, k, "inflight", strconv.FormatInt(offset, 10)+"-"+strconv.FormatInt(offset, 10))
	pipe.Expire(ctx, k, stateTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return Plan{}, fmt.Errorf("crash guard %s: %w", k, err)
	}
	// This is the count-th time the record is marked: each earlier one
	// ended in a crash, and so did the batch that held it first.
	crashes := int(count.Val())
	return Plan{Quarantine: crashes >= g.limit, Crashes: crashes}, nil
}

// Done records that the partition's batch is finished: its results are
// committed (ok), or it failed in a way the process saw (an aborted
// transaction, a revoked partition) and will be read again. last is the
// last record Next marked in it, or -1. A failure the process saw is not
// a crash: last's count is taken back.
func (g *Guard) Done(ctx context.Context, topic string, partition int32, last int64, ok bool) error {
	k := g.partitionKey(topic, partition)
	pipe := g.rdb.TxPipeline()
	pipe.HDel(ctx, k, "inflight")
	if last >= 0 {
		if ok {
			pipe.HDel(ctx, k, countField(last))
		} else {
			pipe.HIncrBy(ctx, k, countField(last), -1)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("crash guard %s: %w", k, err)
	}
	return nil
}

func countField(offset int64) string { return "n" + strconv.FormatInt(offset, 10) }

func parseRange(v string) (first, last int64, ok bool) {
	a, b, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	return first, last, err1 == nil && err2 == nil
}
