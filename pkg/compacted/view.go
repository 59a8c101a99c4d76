// Package compacted keeps a materialized view of a compacted Kafka topic
// in memory: the latest value of every key, a tombstone deleting it. The
// subscriptions view and ingest's event type catalog are built on it.
package compacted

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
)

// ChangeFunc is told of every change: prev is nil for a new key, next is
// nil for a deleted one. It runs on the view's goroutine, so it must not
// wait for the view (WaitFor, WaitReady) or for anything that does.
type ChangeFunc[T any] func(prev, next *T)

// View is the current value of every key of a topic. Values it holds are
// never mutated: an update replaces the pointer.
type View[T any] struct {
	decode func([]byte, *T) error
	log    zerolog.Logger

	mu       sync.RWMutex
	byKey    map[string]*T
	next     map[int32]int64 // next offset to read per partition
	target   map[int32]int64 // end offsets at start; ready once next reaches them
	ready    bool
	progress chan struct{} // closed and replaced whenever next advances
	onChange []ChangeFunc[T]
	topic    string
	adm      *kadm.Client // Run's client, for Sync; nil when not running
}

// New returns an empty view whose values decode is Unmarshal of the
// record's codec; Run fills it.
func New[T any](decode func([]byte, *T) error, log zerolog.Logger) *View[T] {
	return &View[T]{
		decode:   decode,
		log:      log,
		byKey:    map[string]*T{},
		next:     map[int32]int64{},
		progress: make(chan struct{}),
	}
}

// OnChange registers fn; register before Run.
func (v *View[T]) OnChange(fn ChangeFunc[T]) { v.onChange = append(v.onChange, fn) }

// Run reads the topic from the start and follows it until ctx is done.
// The view is ready once it has read everything that existed when Run began.
func (v *View[T]) Run(ctx context.Context, cfg kafka.Config, topic string, extra ...kgo.Opt) error {
	opts := append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Only committed writes count, and the markers of transactions
		// arrive too: a marker can be a partition's last offset, which
		// the view must pass to become ready.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	}, extra...)
	cl, err := kafka.NewClient(cfg, v.log, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	v.mu.Lock()
	v.topic, v.adm = topic, kadm.NewClient(cl)
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.adm = nil
		v.mu.Unlock()
	}()

	ends, err := endOffsets(ctx, kadm.NewClient(cl), topic, v.log)
	if err != nil {
		return nil // ctx ended
	}
	v.mu.Lock()
	v.target = map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { v.target[o.Partition] = o.Offset })
	v.checkReadyLocked(topic)
	v.mu.Unlock()

	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			v.log.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("compacted topic fetch")
		})
		fetches.EachRecord(v.apply)
		v.mu.Lock()
		v.checkReadyLocked(topic)
		close(v.progress)
		v.progress = make(chan struct{})
		v.mu.Unlock()
	}
}

// endOffsets lists the topic's end offsets, retrying while the cluster
// cannot answer yet: a topic created moments ago may be unknown to the
// broker that answers for a short while. It fails only when ctx ends.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string, log zerolog.Logger) (kadm.ListedOffsets, error) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			return ends, nil
		}
		log.Warn().Err(err).Str("topic", topic).Dur("retry_in", wait).Msg("compacted topic end offsets")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s end offsets: %w", topic, err)
		case <-time.After(wait):
		}
	}
}

func (v *View[T]) apply(r *kgo.Record) {
	if r.Attrs.IsControl() {
		v.advance(r)
		return
	}
	key := string(r.Key)
	var next *T
	if r.Value != nil {
		next = new(T)
		if err := v.decode(r.Value, next); err != nil {
			// Skipped, not taken for a deletion: the key keeps its last
			// readable value.
			v.log.Error().Err(err).Str("topic", r.Topic).Str("key", key).Int64("offset", r.Offset).Msg("undecodable record skipped")
			v.advance(r)
			return
		}
	}
	v.mu.Lock()
	prev := v.byKey[key]
	if next == nil {
		delete(v.byKey, key)
	} else {
		v.byKey[key] = next
	}
	v.next[r.Partition] = r.Offset + 1
	v.mu.Unlock()
	if prev == nil && next == nil {
		return
	}
	for _, fn := range v.onChange {
		fn(prev, next)
	}
}

// advance records that r was read without changing the view.
func (v *View[T]) advance(r *kgo.Record) {
	v.mu.Lock()
	v.next[r.Partition] = r.Offset + 1
	v.mu.Unlock()
}

func (v *View[T]) checkReadyLocked(topic string) {
	if v.ready || v.target == nil {
		return
	}
	for p, end := range v.target {
		if v.next[p] < end {
			return
		}
	}
	v.ready = true
	v.log.Info().Str("topic", topic).Int("keys", len(v.byKey)).Msg("view caught up")
}

// ErrNotReady is returned by Ready until the view has caught up.
var ErrNotReady = errors.New("view is still catching up with its topic")

// Ready reports whether the view has caught up with the topic.
func (v *View[T]) Ready() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if !v.ready {
		return ErrNotReady
	}
	return nil
}

// WaitReady blocks until the view has caught up or ctx ends.
func (v *View[T]) WaitReady(ctx context.Context) error {
	for {
		v.mu.RLock()
		ready, progress := v.ready, v.progress
		v.mu.RUnlock()
		if ready {
			return nil
		}
		select {
		case <-progress:
		case <-time.After(50 * time.Millisecond): // an empty topic makes no progress
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitFor blocks until the view has read the record at offset of partition,
// so a writer can read its own write.
func (v *View[T]) WaitFor(ctx context.Context, partition int32, offset int64) error {
	for {
		v.mu.RLock()
		done, progress := v.next[partition] > offset, v.progress
		v.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Sync blocks until the view has read everything written to its topic
// before the call. A reader that learns of a key from elsewhere (an event
// naming a subscription created a moment ago) and does not find it calls
// Sync before deciding that the key is gone: the view follows its topic
// on its own and may be behind, seconds behind on a loaded machine. It
// fails when the view is not running or the end offsets cannot be read.
func (v *View[T]) Sync(ctx context.Context) error {
	v.mu.RLock()
	adm, topic := v.adm, v.topic
	v.mu.RUnlock()
	if adm == nil {
		return ErrNotReady
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("%s end offsets: %w", topic, err)
	}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			errs = append(errs, v.WaitFor(ctx, o.Partition, o.Offset-1))
		}
	})
	return errors.Join(errs...)
}

// Get returns the value of a key.
func (v *View[T]) Get(key string) (*T, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.byKey[key]
	return t, ok
}

// Select returns the values keep accepts, in no particular order.
func (v *View[T]) Select(keep func(*T) bool) []*T {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]*T, 0)
	for _, t := range v.byKey {
		if keep(t) {
			out = append(out, t)
		}
	}
	return out
}

// Len is the number of keys.
func (v *View[T]) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.byKey)
}
