package kafka

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Batch is the records of one partition from one poll, in offset order.
type Batch struct {
	Topic     string
	Partition int32
	Records   []*kgo.Record
	client    *kgo.Client
}

// Done marks r and the records before it as finished before the handler
// returns, for handlers that may stop halfway (a retry tier waiting for a
// due time when its partition is revoked).
func (b Batch) Done(r *kgo.Record) { b.client.MarkCommitRecords(r) }

// Pause stops fetching this partition until Resume; records already
// fetched still arrive.
func (b Batch) Pause() { b.client.PauseFetchPartitions(map[string][]int32{b.Topic: {b.Partition}}) }

// Resume undoes Pause.
func (b Batch) Resume() { b.client.ResumeFetchPartitions(map[string][]int32{b.Topic: {b.Partition}}) }

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

// Consumer runs a Handler over a consumer group with one goroutine per
// assigned partition. Offsets are marked after the handler succeeds and
// committed by franz-go's autocommit of marks, and synchronously when
// partitions are revoked or the consumer stops, so a record's offset is
// committed only after what it produced is acknowledged.
type Consumer struct {
	client  *kgo.Client
	handle  Handler
	log     zerolog.Logger
	mu      sync.Mutex
	workers map[tp]*worker
}

type worker struct {
	batches chan []*kgo.Record
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewConsumer joins group on topics. extra options are added last (hooks,
// fetch sizes).
func NewConsumer(cfg Config, group string, topics []string, h Handler, log zerolog.Logger, extra ...kgo.Opt) (*Consumer, error) {
	c := &Consumer{handle: h, log: log, workers: map[tp]*worker{}}
	opts := append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.revoked),
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

// Run polls until ctx is done, then stops the workers (each finishes its
// batch), commits what they finished, leaves the group and closes.
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
			if w == nil {
				return // revoked between fetch and dispatch; the new owner re-reads it
			}
			select {
			case w.batches <- p.Records:
			case <-w.done:
			case <-ctx.Done():
			}
		})
	}
	c.stopAll()
	c.commit(context.Background())
	return nil
}

func (c *Consumer) assigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, parts := range assigned {
		for _, p := range parts {
			wctx, cancel := context.WithCancel(context.Background())
			w := &worker{batches: make(chan []*kgo.Record, 4), cancel: cancel, done: make(chan struct{})}
			c.workers[tp{topic, p}] = w
			go c.work(wctx, topic, p, w)
		}
	}
}

func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	c.mu.Lock()
	var stopping []*worker
	for topic, parts := range revoked {
		for _, p := range parts {
			if w := c.workers[tp{topic, p}]; w != nil {
				delete(c.workers, tp{topic, p})
				close(w.batches)
				stopping = append(stopping, w)
			}
		}
	}
	c.mu.Unlock()
	for _, w := range stopping {
		<-w.done
	}
	c.commit(ctx)
}

func (c *Consumer) stopAll() {
	c.mu.Lock()
	all := c.workers
	c.workers = map[tp]*worker{}
	c.mu.Unlock()
	for _, w := range all {
		close(w.batches)
	}
	for _, w := range all {
		<-w.done
	}
}

func (c *Consumer) commit(ctx context.Context) {
	if err := c.client.CommitMarkedOffsets(ctx); err != nil {
		c.log.Error().Err(err).Msg("commit offsets")
	}
}

// work handles one partition's batches in order. A failing batch is retried
// with backoff: skipping it would lose its records.
func (c *Consumer) work(ctx context.Context, topic string, partition int32, w *worker) {
	defer close(w.done)
	defer w.cancel()
	for recs := range w.batches {
		b := Batch{Topic: topic, Partition: partition, Records: recs, client: c.client}
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			err := c.handle(ctx, b)
			if err == nil {
				c.client.MarkCommitRecords(recs[len(recs)-1])
				break
			}
			c.log.Error().Err(err).Str("topic", topic).Int32("partition", partition).
				Int64("offset", recs[0].Offset).Dur("retry_in", backoff).Msg("handle batch")
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
		}
	}
}
