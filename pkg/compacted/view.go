// Package compacted keeps a materialized view of a compacted Kafka topic
// in memory: the latest value of every key, a tombstone deleting it.
// Ingest's event type catalog is built on it; the subscriptions view
// (pkg/subscription) reads two topics with the same reader.
package compacted

import (
	"context"
	"sync"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
)

// ChangeFunc is told of every change: prev is nil for a new key, next is
// nil for a deleted one. It runs on the view's goroutine, so it must not
// wait for the view (WaitFor, WaitReady) or for anything that does.
type ChangeFunc[T any] func(prev, next *T)

// ErrNotReady is returned by Ready until the view has caught up.
var ErrNotReady = kafka.ErrNotReady

// View is the current value of every key of a topic. Values it holds are
// never mutated: an update replaces the pointer.
type View[T any] struct {
	topic  string
	decode func([]byte, *T) error
	log    zerolog.Logger
	reader *kafka.Reader

	mu       sync.RWMutex
	byKey    map[string]*T
	onChange []ChangeFunc[T]
}

// New returns an empty view of topic whose values decode is Unmarshal of
// the record's codec; Run fills it.
func New[T any](topic string, decode func([]byte, *T) error, log zerolog.Logger) *View[T] {
	v := &View[T]{topic: topic, decode: decode, log: log, byKey: map[string]*T{}, reader: kafka.NewReader(topic)}
	v.reader.OnCaughtUp(func() { log.Info().Str("topic", topic).Int("keys", v.Len()).Msg("view caught up") })
	return v
}

// OnChange registers fn; register before Run.
func (v *View[T]) OnChange(fn ChangeFunc[T]) { v.onChange = append(v.onChange, fn) }

// Run reads the topic from the start and follows it until ctx is done.
// The view is ready once it has read everything that existed when Run began.
func (v *View[T]) Run(ctx context.Context, cfg kafka.Config, extra ...kgo.Opt) error {
	return v.reader.Run(ctx, cfg, v.log, v.apply, extra...)
}

func (v *View[T]) apply(r *kgo.Record) bool {
	key := string(r.Key)
	var next *T
	if r.Value != nil {
		next = new(T)
		if err := v.decode(r.Value, next); err != nil {
			// Skipped, not taken for a deletion: the key keeps its last
			// readable value.
			v.log.Error().Err(err).Str("topic", r.Topic).Str("key", key).Int64("offset", r.Offset).Msg("undecodable record skipped")
			return true
		}
	}
	v.mu.Lock()
	prev := v.byKey[key]
	if next == nil {
		delete(v.byKey, key)
	} else {
		v.byKey[key] = next
	}
	v.mu.Unlock()
	if prev == nil && next == nil {
		return true
	}
	for _, fn := range v.onChange {
		fn(prev, next)
	}
	return true
}

// Ready reports whether the view has caught up with the topic.
func (v *View[T]) Ready() error { return v.reader.Ready() }

// WaitReady blocks until the view has caught up or ctx ends.
func (v *View[T]) WaitReady(ctx context.Context) error { return v.reader.WaitReady(ctx) }

// WaitFor blocks until the view has read the record at offset of partition,
// so a writer can read its own write.
func (v *View[T]) WaitFor(ctx context.Context, partition int32, offset int64) error {
	return v.reader.WaitFor(ctx, v.topic, partition, offset)
}

// Sync blocks until the view has read everything written to its topic
// before the call (kafka.Reader.Sync).
func (v *View[T]) Sync(ctx context.Context) error { return v.reader.Sync(ctx) }

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
