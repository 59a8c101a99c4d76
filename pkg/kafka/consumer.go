package kafka

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/wire"
)

// Batch is the records of one partition from one poll, in offset order:
// what a Handler gets.
type Batch struct {
	Topic     string
	Partition int32
	Records   []*kgo.Record
	// Fetched is a moment by which every record of the batch had been
	// fetched, so was in Kafka (zero: unknown). A reader of another topic
	// synced after it has read everything written there before these
	// records (the matcher's subscriptions, kafka.Syncs).
	Fetched time.Time
	p       *Partition // nil for a Batch made outside a Consumer
}

// Done records that r and the records before it are finished before the
// handler returns, for handlers that may stop halfway (a retry tier waiting
// for a due time when its partition is revoked). Their offsets may then be
// committed, and if the handler fails, the batch is retried from the record
// after r.
func (b Batch) Done(r *kgo.Record) {
	if b.p != nil {
		b.p.FinishThrough(r)
	}
}

// Pause stops fetching this partition until Resume; records already
// fetched still arrive.
func (b Batch) Pause() {
	if b.p != nil {
		b.p.Pause()
	}
}

// Resume undoes Pause.
func (b Batch) Resume() {
	if b.p != nil {
		b.p.Resume()
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
	if b.p == nil {
		<-ctx.Done()
		return nil
	}
	return b.p.Next(ctx)
}

// Stopping is closed when the partition is revoked or the consumer stops.
// A handler waiting for something unbounded (a due time) returns when it
// closes; what it marked Done is committed and the rest is read again by
// the partition's next owner. A handler doing bounded work may finish it:
// its ctx is canceled only after a grace period.
func (b Batch) Stopping() <-chan struct{} {
	if b.p == nil {
		return nil
	}
	return b.p.Stopping()
}

// Handler processes one partition's batch. It returns nil only once
// everything the batch produced is acknowledged by Kafka: then the batch's
// offsets may be committed. It is never called concurrently for the same
// partition. Poison records are the handler's to divert (to a rejected or
// dead-letter topic); an error means "try this batch again" and blocks the
// partition, so it is for infrastructure failures only.
type Handler func(ctx context.Context, b Batch) error

// Stream is a Handler as a StreamHandler: one batch at a time, each
// finished when the handler returns nil.
func (h Handler) Stream() StreamHandler {
	return func(ctx context.Context, p *Partition) error {
		for {
			recs := p.Next(ctx)
			if recs == nil {
				return nil
			}
			b := Batch{Topic: p.Topic, Partition: p.Partition, Records: recs, Fetched: time.Now(), p: p}
			if err := h(ctx, b); err != nil {
				return err
			}
			p.finishTaken()
		}
	}
}

type tp struct {
	topic     string
	partition int32
}

const (
	// stopGrace is how long a revoked or stopping handler may finish its
	// work before its context is canceled. It stays well inside the
	// group's rebalance timeout (60s), which bounds the revoke callback.
	stopGrace = 15 * time.Second
	// maxQueuedBytes of fetched records (recordBytes) per partition
	// wait for its handler before the partition's fetching is paused, so
	// a slow partition holds a bounded amount of memory and never blocks
	// the poll loop that feeds the other partitions: four fetches of the
	// largest size (kafka.Config.Options). It is counted in bytes, not
	// fetches: at a few hundred records a second each fetch holds a few
	// records, and pausing after four of them paused a matcher behind on
	// one transaction, whose partition then waited for the fetch in
	// flight (FetchMaxWait) once resumed: a quarter of a second on every
	// few transactions (issue 18).
	maxQueuedBytes = 4 * wire.MaxRecordBytes
	// maxQueued fetches per partition pause it too, whatever their size.
	maxQueued = 256
	// maxTracked bounds the records a partition's handler has taken and
	// the consumer still tracks (those not finished, and the finished ones
	// after the oldest unfinished one). A handler that leaves one record
	// unfinished while taking ever more would otherwise grow memory
	// without bound: past it, Next waits. A handler that finishes every
	// record within a minute never meets it below 8,000 records/s.
	maxTracked = 500_000
	// commitTimeout bounds the final commit of a stopping consumer.
	commitTimeout = 10 * time.Second
)

// Consumer runs a handler over a consumer group with one goroutine per
// assigned partition. Offsets are marked as the handler finishes records
// and committed by franz-go's autocommit of marks, and synchronously when
// partitions are revoked or the consumer stops, so a record's offset is
// committed only after what it produced is acknowledged. With a
// Transactor, offsets are committed only inside its transactions.
//
// The poll loop never waits for a worker: a partition whose worker falls
// behind is paused until it catches up.
type Consumer struct {
	client *kgo.Client
	group  string
	handle StreamHandler
	log    zerolog.Logger
	inTxn  atomic.Bool // offsets are committed by a Transactor, not here

	mu      sync.Mutex
	workers map[tp]*worker
	closing bool // Run is stopping: no new workers
}

// NewConsumer joins group on topics and runs h over each partition's
// batches. extra options are added last (hooks, fetch sizes).
func NewConsumer(cfg Config, group string, topics []string, h Handler, log zerolog.Logger, extra ...kgo.Opt) (*Consumer, error) {
	return NewStreamConsumer(cfg, group, topics, h.Stream(), log, extra...)
}

// NewStreamConsumer joins group on topics and runs h on each assigned
// partition for as long as it stays assigned. extra options are added
// last (hooks, fetch sizes).
func NewStreamConsumer(cfg Config, group string, topics []string, h StreamHandler, log zerolog.Logger, extra ...kgo.Opt) (*Consumer, error) {
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
		// A partition's new owner waits for the offsets a Transactor's
		// transaction still holds (KIP-447) instead of reading from the
		// older commit and producing what that transaction did again.
		// Without transactional offsets in the group it costs nothing.
		kgo.RequireStableFetchOffsets(),
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
// work within a grace period), commits what they finished, leaves the
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
			w := newWorker(k, cl, cancel)
			w.mark = !c.inTxn.Load()
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
		w.queue, w.queued = nil, 0
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

// work runs the handler on one partition until the partition stops. A
// handler that fails (or returns before the partition stops) is run again
// with backoff, and first given the records it took but did not finish:
// skipping them would lose records.
func (c *Consumer) work(ctx context.Context, w *worker) {
	defer close(w.done)
	defer w.setPause(func(w *worker) { w.full, w.held = false, false })
	defer w.cancel()
	backoff := 100 * time.Millisecond
	for {
		before := w.finishedCount()
		err := c.handle(ctx, &Partition{Topic: w.topic, Partition: w.partition, w: w})
		if w.isStopped() || ctx.Err() != nil {
			return // the next owner reads the rest again
		}
		if w.finishedCount() > before {
			backoff = 100 * time.Millisecond // it made progress: not a failing loop
		}
		redo := w.retake()
		var ev *zerolog.Event
		if err != nil {
			ev = c.log.Error().Err(err)
		} else {
			ev = c.log.Warn()
		}
		if len(redo) > 0 {
			ev = ev.Int64("offset", redo[0].Offset)
		}
		ev.Str("topic", w.topic).Int32("partition", w.partition).Dur("retry_in", backoff).Msg("partition handler ended early; running it again")
		select {
		case <-time.After(backoff):
		case <-w.stop:
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
