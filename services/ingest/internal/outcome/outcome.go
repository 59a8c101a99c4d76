// Package outcome lets the API wait for what became of a delivery it
// wrote, such as a test ping: a Watcher tails hookline.delivery-log, only
// the partitions where awaited attempts will land and only while someone
// waits, and hands each caller the first attempt of its delivery.
package outcome

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// Limits of waiting callers per ingest instance. Each holds an HTTP
// request open; the bounds keep one tenant, or a burst of callers, from
// tying up the instance.
const (
	DefaultMaxWaiting       = 64
	DefaultMaxWaitingTenant = 8
)

// ErrBusy is returned by Watch when the limits are reached: the caller
// answers without waiting.
var ErrBusy = errors.New("outcome: too many callers waiting")

// Watcher tails the delivery log for awaited deliveries. Run it; call
// Watch before writing the delivery, then Wait.
type Watcher struct {
	client      *kgo.Client // direct consumer: partitions added and removed as callers come and go
	codecs      *record.Codecs
	topic       string
	partitioner kgo.TopicPartitioner
	log         zerolog.Logger
	max, perTen int

	mu        sync.Mutex
	waiting   map[string]*Wait // by delivery id
	tailed    map[int32]int    // partition -> callers waiting on it
	perTenant map[string]int
}

// Wait is one caller's wait for a delivery's first attempt.
type Wait struct {
	w         *Watcher
	id        string
	tenant    string
	partition int32
	done      chan record.DeliveryAttempt // buffered: the first attempt
	closed    bool
}

// New connects a watcher of cfg's delivery log; max and perTenant bound
// the callers waiting at once (0: the defaults).
func New(cfg kafka.Config, codecs *record.Codecs, log zerolog.Logger, max, perTenant int) (*Watcher, error) {
	cl, err := kafka.NewClient(cfg, log, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		client: cl, codecs: codecs, topic: cfg.Topics.DeliveryLog, log: log,
		// The sender writes attempts keyed by delivery id with franz-go's
		// default partitioner: the same one finds the partition here.
		partitioner: kgo.StickyKeyPartitioner(nil).ForTopic(cfg.Topics.DeliveryLog),
		max:         max, perTen: perTenant,
		waiting: map[string]*Wait{}, tailed: map[int32]int{}, perTenant: map[string]int{},
	}
	if w.max <= 0 {
		w.max = DefaultMaxWaiting
	}
	if w.perTen <= 0 {
		w.perTen = DefaultMaxWaitingTenant
	}
	return w, nil
}

// Run reads the tailed partitions until ctx ends, then closes the client.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.client.Close()
	for {
		fetches := w.client.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			w.log.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("delivery log fetch")
		})
		fetches.EachRecord(w.take)
	}
}

// take hands a record to the caller waiting for its delivery, if any.
func (w *Watcher) take(r *kgo.Record) {
	w.mu.Lock()
	wt := w.waiting[string(r.Key)]
	w.mu.Unlock()
	if wt == nil {
		return
	}
	var a record.DeliveryAttempt
	if err := w.codecs.Attempt.Unmarshal(r.Value, &a); err != nil {
		w.log.Warn().Err(err).Str("delivery", wt.id).Msg("undecodable attempt in the delivery log")
		return
	}
	select {
	case wt.done <- a:
	default: // it has its first attempt already
	}
}

// Watch starts waiting for the first attempt of deliveryID, of tenant. It
// must be called before the delivery is written: it starts reading the
// attempt's partition at its current end. The caller must Close the Wait.
func (w *Watcher) Watch(ctx context.Context, tenant, deliveryID string) (*Wait, error) {
	w.mu.Lock()
	busy := len(w.waiting) >= w.max || w.perTenant[tenant] >= w.perTen || w.waiting[deliveryID] != nil
	if !busy {
		w.perTenant[tenant]++ // reserved; given back below on failure
	}
	w.mu.Unlock()
	if busy {
		return nil, ErrBusy
	}
	wt, err := w.watch(ctx, tenant, deliveryID)
	if err != nil {
		w.mu.Lock()
		w.release(tenant)
		w.mu.Unlock()
		return nil, err
	}
	return wt, nil
}

func (w *Watcher) watch(ctx context.Context, tenant, deliveryID string) (*Wait, error) {
	ends, err := kafka.EndOffsets(ctx, kadm.NewClient(w.client), w.topic)
	if err != nil {
		return nil, err
	}
	n := 0
	ends.Each(func(kadm.ListedOffset) { n++ })
	if n == 0 {
		return nil, fmt.Errorf("delivery log %s has no partitions", w.topic)
	}
	p := int32(w.partitioner.Partition(&kgo.Record{Key: []byte(deliveryID)}, n))
	end, ok := ends.Lookup(w.topic, p)
	if !ok {
		return nil, fmt.Errorf("delivery log %s: no end offset of partition %d", w.topic, p)
	}
	wt := &Wait{w: w, id: deliveryID, tenant: tenant, partition: p, done: make(chan record.DeliveryAttempt, 1)}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting[deliveryID] = wt
	if w.tailed[p] == 0 {
		// From the end listed just now: the attempt is written after
		// the delivery, and so after this. A partition already tailed
		// is at or before that offset.
		w.client.AddConsumePartitions(map[string]map[int32]kgo.Offset{w.topic: {p: kgo.NewOffset().At(end.Offset)}})
	}
	w.tailed[p]++
	return wt, nil
}

// release gives back a tenant's reservation; the caller holds w.mu.
func (w *Watcher) release(tenant string) {
	if w.perTenant[tenant]--; w.perTenant[tenant] <= 0 {
		delete(w.perTenant, tenant)
	}
}

// Attempt waits for the delivery's first attempt until ctx ends; false
// when none arrived by then.
func (wt *Wait) Attempt(ctx context.Context) (record.DeliveryAttempt, bool) {
	select {
	case a := <-wt.done:
		return a, true
	case <-ctx.Done():
		return record.DeliveryAttempt{}, false
	}
}

// Close ends the wait; a partition nobody waits on any more is no longer
// read.
func (wt *Wait) Close() {
	w := wt.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if wt.closed {
		return
	}
	wt.closed = true
	delete(w.waiting, wt.id)
	w.release(wt.tenant)
	if w.tailed[wt.partition]--; w.tailed[wt.partition] <= 0 {
		delete(w.tailed, wt.partition)
		w.client.RemoveConsumePartitions(map[string][]int32{w.topic: {wt.partition}})
	}
}

// Waiting is the number of callers waiting now.
func (w *Watcher) Waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting)
}
