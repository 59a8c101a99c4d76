package kafka

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Batch is the records of one partition from one poll, in offset order.
type Batch struct {
	Topic     string
	Partition int32
	Records   []*kgo.Record
	c         *Consumer
	w         *worker
}

// Done records that r and the records before it are finished before the
// handler returns, for handlers that may stop halfway (a retry tier waiting
// for a due time when its partition is revoked). Their offsets may then be
// committed, and if the handler fails, the batch is retried from the record
// after r.
func (b Batch) Done(r *kgo.Record) {
	if b.w == nil {
		return
	}
	b.w.finished(r.Offset)
	if !b.c.inTxn.Load() {
		b.w.client.MarkCommitRecords(r)
	}
}

// Pause stops fetching this partition until Resume; records already
// fetched still arrive.
func (b Batch) Pause() {
	if b.w != nil {
		b.w.setPause(func(w *worker) { w.held = true })
	}
}

// Resume undoes Pause.
func (b Batch) Resume() {
	if b.w != nil {
		b.w.setPause(func(w *worker) { w.held = false })
	}
}

// More waits for the partition's next fetched records and hands them to
// this handler call: they belong to the batch from then on, finished when
// the handler returns nil (or marks them Done) and retried with it when it
// fails. A handler holding some records back for a while (a batching
// window) calls it to keep serving the partition's other records
// meanwhile. It returns nil once ctx ends or the partition stops (a Batch
// made outside a Consumer gets nothing more: it waits for ctx).
func (b Batch) More(ctx context.Context) []*kgo.Record {
	if b.w == nil {
		<-ctx.Done()
		return nil
	}
	recs, ok := b.w.next(ctx)
	if !ok {
		return nil
	}
	b.w.mu.Lock()
	b.w.current = append(b.w.current, recs...)
	b.w.mu.Unlock()
	return recs
}

// Stopping is closed when the partition is revoked or the consumer stops.
// A handler waiting for something unbounded (a due time) returns when it
// closes; what it marked Done is committed and the rest is read again by
// the partition's next owner. A handler doing bounded work may finish it:
// its ctx is canceled only after a grace period.
func (b Batch) Stopping() <-chan struct{} {
	if b.w == nil {
		return nil
	}
	return b.w.stop
}

// Handler processes one partition's batch. It returns nil only once
// everything the batch produced is acknowledged by Kafka: then the batch's
// offsets may be committed. It is never called concurrently for the same
// partition. Poison records are the handler's to divert (to a rejected or
// dead-letter topic); an error means "try this batch again" and blocks the
// partition, so it is for infrastructure failures only.
type Handler func(ctx context.Context, b Batch) error

type tp struct {
	topic     string
	partition int32
}

const (
	// stopGrace is how long a revoked or stopping handler may finish its
	// batch before its context is canceled. It stays well inside the
	// group's rebalance timeout (60s), which bounds the revoke callback.
	stopGrace = 15 * time.Second
	// maxQueued batches per partition before its fetching is paused, so a
	// slow partition holds a bounded amount of memory and never blocks
	// the poll loop that feeds the other partitions.
	maxQueued = 4
	// commitTimeout bounds the final commit of a stopping consumer.
	commitTimeout = 10 * time.Second
)

// Consumer runs a Handler over a consumer group with one goroutine per
// assigned partition. Offsets are marked after the handler succeeds and
// committed by franz-go's autocommit of marks, and synchronously when
// partitions are revoked or the consumer stops, so a record's offset is
// committed only after what it produced is acknowledged. With a
// Transactor, offsets are committed only inside its transactions.
//
// The poll loop never waits for a worker: a partition whose worker falls
// behind is paused until it catches up.
type Consumer struct {
	client *kgo.Client
	group  string
	handle Handler
	log    zerolog.Logger
	inTxn  atomic.Bool // offsets are committed by a Transactor, not here

	mu      sync.Mutex
	workers map[tp]*worker
	closing bool // Run is stopping: no new workers
}

// worker owns one assigned partition. Its queue is fed by the poll loop.
type worker struct {
	tp
	client  *kgo.Client
	stop    chan struct{} // closed when the partition is revoked or the consumer stops
	wake    chan struct{} // a batch was queued
	done    chan struct{} // the goroutine has returned
	cancel  context.CancelFunc
	through atomic.Int64 // offset of the last finished record, -1 before any

	mu      sync.Mutex
	stopped bool
	queue   [][]*kgo.Record
	current []*kgo.Record // the handler's records, with those More added
	full    bool          // fetching paused because the queue is long
	held    bool          // fetching paused by the handler
}

// NewConsumer joins group on topics. extra options are added last (hooks,
// fetch sizes).
func NewConsumer(cfg Config, group string, topics []string, h Handler, log zerolog.Logger, extra ...kgo.Opt) (*Consumer, error) {
	c := &Consumer{group: group, handle: h, log: log, workers: map[tp]*worker{}}
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		// A partition resumed after a pause waits for the fetch in flight;
		// franz-go's 5 s default made resumed endpoints stall for seconds.
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			c.revoke(ctx, cl, m, stopGrace)
		}),
		// Lost partitions may already be someone else's: stop at once.
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			c.revoke(ctx, cl, m, 0)
		}),
	}, extra...)
	cl, err := NewClient(cfg, log, opts...)
	if err != nil {
		return nil, err
	}
	c.client = cl
	return c, nil
}

// Client is the underlying client, for producing and pausing partitions.
func (c *Consumer) Client() *kgo.Client { return c.client }

// Group is the consumer group's id.
func (c *Consumer) Group() string { return c.group }

// Run polls until ctx is done, then stops the workers (each may finish its
// batch within a grace period), commits what they finished, leaves the
// group and closes.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.client.Close()
	for {
		fetches := c.client.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("fetch")
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			c.mu.Lock()
			w := c.workers[tp{p.Topic, p.Partition}]
			c.mu.Unlock()
			if w != nil {
				w.enqueue(p.Records)
			} // else revoked between fetch and dispatch; the new owner reads it again
		})
	}
	c.mu.Lock()
	c.closing = true
	all := make([]*worker, 0, len(c.workers))
	for k, w := range c.workers {
		all = append(all, w)
		delete(c.workers, k)
	}
	c.mu.Unlock()
	stopWorkers(all, stopGrace)
	cctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	c.commit(cctx, c.client)
	return nil
}

func (c *Consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	// A partition paused when it was last revoked would stay paused.
	cl.ResumeFetchPartitions(assigned)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	for topic, parts := range assigned {
		for _, p := range parts {
			k := tp{topic, p}
			if c.workers[k] != nil {
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			// The callback's client, not c.client: this may run before
			// NewConsumer has returned.
			w := &worker{tp: k, client: cl, stop: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{}), cancel: cancel}
			w.through.Store(-1)
			c.workers[k] = w
			go c.work(ctx, w)
		}
	}
}

// revoke stops the partitions' workers, giving their handlers grace to
// finish, and commits what they finished before the partitions move on.
func (c *Consumer) revoke(ctx context.Context, cl *kgo.Client, revoked map[string][]int32, grace time.Duration) {
	c.mu.Lock()
	var stopping []*worker
	for topic, parts := range revoked {
		for _, p := range parts {
			if w := c.workers[tp{topic, p}]; w != nil {
				delete(c.workers, tp{topic, p})
				stopping = append(stopping, w)
			}
		}
	}
	c.mu.Unlock()
	stopWorkers(stopping, grace)
	c.commit(ctx, cl)
}

// stopWorkers signals ws to stop, cancels the handlers still running after
// grace and waits for all of them.
func stopWorkers(ws []*worker, grace time.Duration) {
	for _, w := range ws {
		w.mu.Lock()
		w.stopped = true
		w.queue = nil
		close(w.stop)
		w.mu.Unlock()
	}
	t := time.AfterFunc(grace, func() {
		for _, w := range ws {
			w.cancel()
		}
	})
	defer t.Stop()
	for _, w := range ws {
		<-w.done
	}
}

func (c *Consumer) commit(ctx context.Context, cl *kgo.Client) {
	if c.inTxn.Load() {
		return
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		c.log.Error().Err(err).Msg("commit offsets")
	}
}

// work handles one partition's batches in order. A failing batch is retried
// with backoff from its first unfinished record: skipping it would lose
// records.
func (c *Consumer) work(ctx context.Context, w *worker) {
	defer close(w.done)
	defer w.setPause(func(w *worker) { w.full, w.held = false, false })
	defer w.cancel()
	for {
		recs, ok := w.next(ctx)
		if !ok {
			return
		}
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			recs = unfinished(recs, w.through.Load())
			if len(recs) == 0 {
				break // the handler marked everything Done, then failed
			}
			w.mu.Lock()
			w.current = recs
			w.mu.Unlock()
			err := c.handle(ctx, Batch{Topic: w.topic, Partition: w.partition, Records: recs, c: c, w: w})
			w.mu.Lock()
			recs, w.current = w.current, nil // with what More added
			w.mu.Unlock()
			if err == nil {
				last := recs[len(recs)-1]
				w.finished(last.Offset)
				if !c.inTxn.Load() {
					w.client.MarkCommitRecords(last)
				}
				break
			}
			select {
			case <-w.stop:
				return // the next owner reads the rest again
			default:
			}
			c.log.Error().Err(err).Str("topic", w.topic).Int32("partition", w.partition).
				Int64("offset", recs[0].Offset).Dur("retry_in", backoff).Msg("handle batch")
			select {
			case <-time.After(backoff):
			case <-w.stop:
				return
			}
		}
	}
}

func unfinished(recs []*kgo.Record, through int64) []*kgo.Record {
	for len(recs) > 0 && recs[0].Offset <= through {
		recs = recs[1:]
	}
	return recs
}

func (w *worker) finished(offset int64) {
	for {
		cur := w.through.Load()
		if offset <= cur || w.through.CompareAndSwap(cur, offset) {
			return
		}
	}
}

// enqueue hands recs to the worker without waiting; a long queue pauses
// the partition's fetching.
func (w *worker) enqueue(recs []*kgo.Record) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, recs)
	if len(w.queue) >= maxQueued && !w.full {
		w.setPauseLocked(func(w *worker) { w.full = true })
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next waits for the next batch; false once the worker is stopped or ctx
// ends.
func (w *worker) next(ctx context.Context) ([]*kgo.Record, bool) {
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return nil, false
		}
		if len(w.queue) > 0 {
			recs := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			if w.full && len(w.queue) < maxQueued/2 {
				w.setPauseLocked(func(w *worker) { w.full = false })
			}
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
	switch is := w.full || w.held; {
	case is && !was:
		w.client.PauseFetchPartitions(map[string][]int32{w.topic: {w.partition}})
	case !is && was:
		w.client.ResumeFetchPartitions(map[string][]int32{w.topic: {w.partition}})
	}
}
