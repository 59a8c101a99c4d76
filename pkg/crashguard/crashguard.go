// Package crashguard keeps a record that crashes its consumer from
// crashing it forever. A panic can be recovered in process; an out-of-
// memory kill, a fatal runtime error or a SIGKILL cannot, and a consumer
// that restarts reads the same record again and dies again. The guard
// remembers, in Redis, which offsets of each partition were being
// processed when the process died: the records of such a batch are then
// processed one after another, each marked before it is touched, so that
// a further crash is charged to the one record marked; a record charged
// Limit-1 crashes (besides the crash of the batch that held it) is
// quarantined: the caller diverts it to its dead-letter or rejected topic
// with the reason instead of processing it once more.
//
// Use it around each poll's batches: Begin before processing them; in a
// suspect batch, Next before each record and Passed after the last; Done
// when the batches' results are committed or known to have failed. A Begin
// or Next without its Done is what a crash leaves behind. Records marked
// with Next must be processed one at a time across all partitions, so
// that the record marked when the process dies is the one that was
// running.
//
// The state is one Redis hash per partition,
// <prefix><group>:<topic>:<partition> (prefix: wire.Keys.Crash, e.g.
// hookline:crash:), with the fields
//
//	inflight  "first-last": the batch being processed now, or "offset":
//	          the one record being processed now
//	suspect   the last offset of a batch that was in flight at a crash;
//	          batches up to it are processed record by record
//	n<offset> the crashes charged to that record
//
// and expires a day after its last change, so a partition that moved away
// leaves nothing behind for long. Redis is used rather than a file so that
// the counts follow a partition to whichever instance owns it next.
package crashguard

import (
	"context"
	"errors"
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
	key   string // <prefix><group>:
	limit int
}

// New returns a guard for group's partitions, keeping its state under
// prefix (wire.Keys.Crash: it separates installations sharing a Redis).
// A record is quarantined on its limit-th crash; limit < 1 means
// DefaultLimit.
func New(rdb redis.Cmdable, prefix, group string, limit int) *Guard {
	if limit < 1 {
		limit = DefaultLimit
	}
	return &Guard{rdb: rdb, key: prefix + group + ":", limit: limit}
}

// Limit is the crashes after which a record is quarantined.
func (g *Guard) Limit() int { return g.limit }

// Plan is what Next decides for one record of a suspect batch.
type Plan struct {
	// Quarantine: the record was running at Crashes crashes. Do not
	// process it: divert it with the reason, and go on.
	Quarantine bool
	// Crashes is how often the process died with this record in flight:
	// the crash of the batch that held it, and each one charged to it
	// since.
	Crashes int
}

// Reason is the text a quarantined record carries.
func (p Plan) Reason(service string) string {
	return fmt.Sprintf("quarantined: the %s crashed %d times while processing this record", service, p.Crashes)
}

func (g *Guard) partitionKey(topic string, partition int32) string {
	return g.key + topic + ":" + strconv.Itoa(int(partition))
}

func batchRange(first, last int64) string {
	return strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10)
}

// Span is one partition's batch: the offsets First to Last of Topic's
// Partition.
type Span struct {
	Topic     string
	Partition int32
	First     int64
	Last      int64
}

// Begin records that the spans (each a partition's batch of one poll) are
// about to be processed, and reports for each whether it is suspect: some
// of its offsets were in flight when the process last died. A suspect
// batch is processed one record at a time, calling Next before each.
// Begin also charges the crash it finds to the record that was marked, if
// one was. It costs one Redis round trip whatever the number of spans
// when no partition has state (the usual case: Done left none), and a
// second one otherwise. An error (Redis unreachable) leaves the batches
// unprotected: the caller processes them as usual rather than stall every
// tenant on Redis.
func (g *Guard) Begin(ctx context.Context, spans ...Span) ([]bool, error) {
	// Reading a partition's state and marking its batch in flight go in
	// one transaction: the read sees the state before the mark, and the
	// mark is what Begin writes in every case.
	mark := func(p redis.Pipeliner, k string, sp Span) {
		p.HSet(ctx, k, "inflight", batchRange(sp.First, sp.Last))
		p.Expire(ctx, k, stateTTL)
	}
	read := g.rdb.TxPipeline()
	states := make([]*redis.MapStringStringCmd, len(spans))
	for i, sp := range spans {
		k := g.partitionKey(sp.Topic, sp.Partition)
		states[i] = read.HGetAll(ctx, k)
		mark(read, k, sp)
	}
	if _, err := read.Exec(ctx); err != nil {
		return nil, fmt.Errorf("crash guard: %w", err)
	}
	suspects := make([]bool, len(spans))
	write := g.rdb.TxPipeline()
	for i, sp := range spans {
		state := states[i].Val()
		if len(state) == 0 {
			continue
		}
		k := g.partitionKey(sp.Topic, sp.Partition)
		suspect, known := int64(-1), false
		if v, ok := state["suspect"]; ok {
			suspect, _ = strconv.ParseInt(v, 10, 64)
			known = true
		}
		if v, ok := state["inflight"]; ok {
			// Begun and never done: the process died while processing it.
			end, marked, ok := parseInflight(v)
			if ok && marked {
				write.HIncrBy(ctx, k, countField(end), 1)
			}
			if ok && end > suspect {
				suspect, known = end, true
				write.HSet(ctx, k, "suspect", suspect)
			}
		}
		if known && sp.First > suspect {
			// Past the crashed batch: back to normal, counts forgotten.
			write.Del(ctx, k)
			mark(write, k, sp)
			known = false
		}
		suspects[i] = known
	}
	if write.Len() == 0 {
		return suspects, nil
	}
	if _, err := write.Exec(ctx); err != nil {
		return nil, fmt.Errorf("crash guard: %w", err)
	}
	return suspects, nil
}

// Next marks the record at offset as the one being processed, in a
// suspect batch, and says whether to quarantine it instead.
func (g *Guard) Next(ctx context.Context, topic string, partition int32, offset int64) (Plan, error) {
	k := g.partitionKey(topic, partition)
	pipe := g.rdb.TxPipeline()
	count := pipe.HGet(ctx, k, countField(offset))
	pipe.HSet(ctx, k, "inflight", strconv.FormatInt(offset, 10))
	pipe.Expire(ctx, k, stateTTL)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Plan{}, fmt.Errorf("crash guard %s: %w", k, err)
	}
	charged, _ := count.Int()
	crashes := charged + 1 // and the batch's
	return Plan{Quarantine: crashes >= g.limit, Crashes: crashes}, nil
}

// Passed records that the partition's records of a suspect batch, first
// to last, were all processed: no record of it is running any more, and a
// crash from now on (in another partition's records) charges none of
// them.
func (g *Guard) Passed(ctx context.Context, topic string, partition int32, first, last int64) error {
	k := g.partitionKey(topic, partition)
	if err := g.rdb.HSet(ctx, k, "inflight", batchRange(first, last)).Err(); err != nil {
		return fmt.Errorf("crash guard %s: %w", k, err)
	}
	return nil
}

// Done records that the spans' batches are finished: their results are
// committed, or they failed in a way the process saw (an aborted
// transaction, a revoked partition) and will be read again. Either way no
// crash happened; the counts stay until a partition is past the crashed
// batch, since an uncommitted quarantine is read (and decided) again. It
// costs one Redis round trip.
func (g *Guard) Done(ctx context.Context, spans ...Span) error {
	pipe := g.rdb.Pipeline()
	for _, sp := range spans {
		pipe.HDel(ctx, g.partitionKey(sp.Topic, sp.Partition), "inflight")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("crash guard: %w", err)
	}
	return nil
}

func countField(offset int64) string { return "n" + strconv.FormatInt(offset, 10) }

// parseInflight reads an inflight field: the last offset in flight, and
// whether it was one record marked by Next.
func parseInflight(v string) (last int64, marked, ok bool) {
	a, b, isRange := strings.Cut(v, "-")
	if !isRange {
		n, err := strconv.ParseInt(v, 10, 64)
		return n, true, err == nil
	}
	if _, err := strconv.ParseInt(a, 10, 64); err != nil {
		return 0, false, false
	}
	n, err := strconv.ParseInt(b, 10, 64)
	return n, false, err == nil
}
