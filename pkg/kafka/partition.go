package kafka

import (
	"context"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/wire"
)

// StreamHandler runs on one assigned partition for as long as it stays
// assigned: it takes the partition's records as they are fetched
// (Partition.Next) and finishes each once what it produced is
// acknowledged (Partition.Finish), in any order. The consumer commits
// offsets only below the oldest record taken and not finished, so a
// handler may hold one record back (a slow request) while finishing the
// ones behind it.
//
// It returns nil once Next returns nil (the partition stops). Returning
// early, with an error or without, means "run me again": after a backoff
// it is called again and Next first hands out, in one slice, the records
// it took and did not finish. That is for infrastructure failures only;
// poison records are the handler's to divert. A handler is never run
// concurrently with itself on the same partition.
type StreamHandler func(ctx context.Context, p *Partition) error

// Partition is one assigned partition as its StreamHandler sees it.
type Partition struct {
	Topic     string
	Partition int32
	w         *worker
}

// NewPartition is a Partition outside any consumer, over records already
// read (for tests, and for tools that handle a topic's contents once): Next
// hands out recs, then waits for ctx. Finish tracks what is finished, which
// Finished reports; nothing is committed.
func NewPartition(topic string, partition int32, recs []*kgo.Record) *Partition {
	w := newWorker(tp{topic, partition}, nil, func() {})
	if len(recs) > 0 {
		w.push(recs)
	}
	return &Partition{Topic: topic, Partition: partition, w: w}
}

// Next waits for the partition's next fetched records (the fetches that
// came since the last call, up to the size of one full fetch) and hands
// them to the handler, in offset order; they are taken from then on, and the
// partition's offsets wait for each until it is finished. It returns nil
// once ctx ends or the partition stops. While the handler holds too many
// taken records (see maxTracked) it waits for some to be finished.
func (p *Partition) Next(ctx context.Context) []*kgo.Record {
	recs, ok := p.w.next(ctx)
	if !ok {
		return nil
	}
	return recs
}

// Finish records that recs are finished: what they produced is
// acknowledged. Once every record up to one is finished, the offset after
// it may be committed. Records not taken, or finished already, are
// ignored.
func (p *Partition) Finish(recs ...*kgo.Record) {
	p.w.finish(func(t *tracker) {
		for _, r := range recs {
			t.finish(r.Offset)
		}
	})
}

// FinishThrough finishes r and every record taken before it.
func (p *Partition) FinishThrough(r *kgo.Record) {
	p.w.finish(func(t *tracker) { t.finishThrough(r.Offset) })
}

// finishTaken finishes every record taken so far.
func (p *Partition) finishTaken() {
	p.w.finish(func(t *tracker) { t.finishThrough(t.newest()) })
}

// Finished reports the offset through which every record taken so far is
// finished: the committed offset is one more. It is -1 before any.
func (p *Partition) Finished() int64 {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return p.w.track.through
}

// Pause stops fetching this partition until Resume; records already
// fetched still arrive.
func (p *Partition) Pause() { p.w.setPause(func(w *worker) { w.held = true }) }

// Resume undoes Pause.
func (p *Partition) Resume() { p.w.setPause(func(w *worker) { w.held = false }) }

// Stopping is closed when the partition is revoked or the consumer stops.
// The handler then takes nothing more (Next returns nil) and finishes the
// work it has under way, or returns at once if that work is unbounded:
// what it finished is committed and the rest is read again by the
// partition's next owner. Its ctx is canceled only after a grace period.
func (p *Partition) Stopping() <-chan struct{} { return p.w.stop }

// worker owns one assigned partition. Its queue is fed by the poll loop.
type worker struct {
	tp
	client *kgo.Client // nil outside a consumer: nothing is paused or marked
	mark   bool        // mark finished offsets for autocommit (not under a Transactor)
	take   int         // bytes of queued fetches a batch takes together: one full fetch
	stop   chan struct{}
	wake   chan struct{} // a fetch was queued or records were finished
	done   chan struct{} // the goroutine has returned
	cancel context.CancelFunc

	mu       sync.Mutex // guards the fields below
	stopped  bool
	queue    []fetched
	queued   int           // bytes of queue
	redo     []*kgo.Record // taken and unfinished when the handler ended early: handed out first
	track    tracker
	finished int64 // records finished so far, to tell a failing handler from a busy one
	full     bool  // fetching paused because the queue is long
	held     bool  // fetching paused by the handler
}

func newWorker(k tp, cl *kgo.Client, cancel context.CancelFunc) *worker {
	take := wire.MaxRecordBytes // kafka.Config.Options' fetch size
	if cl != nil {
		if v, ok := cl.OptValue(kgo.FetchMaxPartitionBytes).(int32); ok && v > 0 {
			take = int(v)
		}
	}
	return &worker{tp: k, client: cl, take: take, stop: make(chan struct{}), wake: make(chan struct{}, 1),
		done: make(chan struct{}), cancel: cancel, track: tracker{through: -1}}
}

// enqueue hands recs to the worker without waiting; a long queue pauses
// the partition's fetching.
func (w *worker) enqueue(recs []*kgo.Record) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.push(recs)
	if (w.queued >= maxQueuedBytes || len(w.queue) >= maxQueued) && !w.full {
		w.setPauseLocked(func(w *worker) { w.full = true })
	}
	w.mu.Unlock()
	w.signal()
}

// fetched is one fetch's records waiting for the handler, with their
// size (recordBytes), counted once.
type fetched struct {
	recs  []*kgo.Record
	bytes int
}

// push queues recs; w.mu is held (or w not yet shared).
func (w *worker) push(recs []*kgo.Record) {
	f := fetched{recs: recs, bytes: recordBytes(recs)}
	w.queue = append(w.queue, f)
	w.queued += f.bytes
}

func (w *worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// recordOverhead is about what a record takes in a fetch besides its key,
// value and headers (varint lengths and deltas, attributes): enough that
// recordBytes of small records tells a full fetch from one that is not.
const recordOverhead = 16

// recordBytes is about the size recs had in their fetches.
func recordBytes(recs []*kgo.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Key) + len(r.Value) + recordOverhead
		for _, h := range r.Headers {
			n += len(h.Key) + len(h.Value)
		}
	}
	return n
}

// next waits for the records to hand out next: those a failed handler left
// unfinished, else the next fetches. It returns false once the worker is
// stopped or ctx ends.
func (w *worker) next(ctx context.Context) ([]*kgo.Record, bool) {
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return nil, false
		}
		if len(w.redo) > 0 {
			recs := w.redo
			w.redo = nil
			w.mu.Unlock()
			return recs, true
		}
		if len(w.queue) > 0 && w.track.len() < maxTracked {
			// The fetches queued go out together, up to the size of one
			// full fetch: a handler that fell behind on small fetches
			// catches up in one batch (for the matcher, one transaction)
			// rather than one per fetch, and one that gets full fetches
			// gets them one at a time, as fetched.
			n, size, count := 0, 0, 0
			for _, f := range w.queue {
				if n > 0 && size+f.bytes > w.take {
					break
				}
				n, size, count = n+1, size+f.bytes, count+len(f.recs)
			}
			recs := w.queue[0].recs
			if n > 1 {
				recs = make([]*kgo.Record, 0, count)
				for _, f := range w.queue[:n] {
					recs = append(recs, f.recs...)
				}
			}
			clear(w.queue[:n])
			w.queue, w.queued = w.queue[n:], w.queued-size
			if w.full && w.queued < maxQueuedBytes/2 && len(w.queue) < maxQueued/2 {
				w.setPauseLocked(func(w *worker) { w.full = false })
			}
			w.track.add(recs)
			w.mu.Unlock()
			return recs, true
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-w.stop:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// finish applies change to the tracker and marks the new commit point, if
// it moved.
func (w *worker) finish(change func(*tracker)) {
	w.mu.Lock()
	before, full := w.track.through, w.track.len() >= maxTracked
	n := w.track.done
	change(&w.track)
	w.finished += w.track.done - n
	through, epoch := w.track.through, w.track.throughEpoch
	w.mu.Unlock()
	if through == before {
		return
	}
	if w.mark && w.client != nil {
		w.client.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{w.topic: {w.partition: {Epoch: epoch, Offset: through + 1}}})
	}
	if full {
		w.signal() // Next may be waiting for room
	}
}

func (w *worker) finishedCount() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.finished
}

func (w *worker) isStopped() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopped
}

// retake queues the records taken and not finished to be handed out again
// first, and returns them.
func (w *worker) retake() []*kgo.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.redo = w.track.unfinished()
	return w.redo
}

func (w *worker) setPause(change func(*worker)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setPauseLocked(change)
}

// setPauseLocked applies change to the pause reasons and pauses or resumes
// fetching when the partition goes from no reason to some or back.
func (w *worker) setPauseLocked(change func(*worker)) {
	was := w.full || w.held
	change(w)
	if w.client == nil {
		return
	}
	switch is := w.full || w.held; {
	case is && !was:
		w.client.PauseFetchPartitions(map[string][]int32{w.topic: {w.partition}})
	case !is && was:
		w.client.ResumeFetchPartitions(map[string][]int32{w.topic: {w.partition}})
	}
}

// tracker is a partition's taken records, in offset order, from the oldest
// unfinished one to the newest: the commit point is just before the
// oldest unfinished record.
type tracker struct {
	entries      []entry // entries[head:] are tracked
	head         int
	through      int64 // every record through this offset is finished; -1 before any
	throughEpoch int32 // leader epoch of that record
	done         int64 // records finished, ever
}

type entry struct {
	offset int64
	epoch  int32
	rec    *kgo.Record // nil once finished, so a finished record's memory is not held
}

func (t *tracker) len() int { return len(t.entries) - t.head }

func (t *tracker) add(recs []*kgo.Record) {
	for _, r := range recs {
		if n := len(t.entries); (n > t.head && r.Offset <= t.entries[n-1].offset) || r.Offset <= t.through {
			continue // taken already (a fetch overlapping an earlier one)
		}
		t.entries = append(t.entries, entry{offset: r.Offset, epoch: r.LeaderEpoch, rec: r})
	}
}

// newest is the offset of the newest taken record, or -1.
func (t *tracker) newest() int64 {
	if t.len() == 0 {
		return t.through
	}
	return t.entries[len(t.entries)-1].offset
}

func (t *tracker) finish(offset int64) {
	live := t.entries[t.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset })
	if i < len(live) && live[i].offset == offset && live[i].rec != nil {
		live[i].rec = nil
		t.done++
	}
	t.advance()
}

func (t *tracker) finishThrough(offset int64) {
	for i := t.head; i < len(t.entries) && t.entries[i].offset <= offset; i++ {
		if t.entries[i].rec != nil {
			t.entries[i].rec = nil
			t.done++
		}
	}
	t.advance()
}

// advance moves the commit point past the finished records at the head.
func (t *tracker) advance() {
	for t.head < len(t.entries) && t.entries[t.head].rec == nil {
		t.through, t.throughEpoch = t.entries[t.head].offset, t.entries[t.head].epoch
		t.head++
	}
	switch {
	case t.head == len(t.entries):
		t.entries, t.head = t.entries[:0], 0
	case t.head >= 1024 && t.head > len(t.entries)/2:
		n := copy(t.entries, t.entries[t.head:])
		clear(t.entries[n:])
		t.entries, t.head = t.entries[:n], 0
	}
}

// unfinished returns the tracked records not finished, in offset order.
func (t *tracker) unfinished() []*kgo.Record {
	var out []*kgo.Record
	for _, e := range t.entries[t.head:] {
		if e.rec != nil {
			out = append(out, e.rec)
		}
	}
	return out
}
