// Package subscription keeps a materialized view of the compacted
// subscriptions topic in memory. Ingest answers reads from it, the matcher
// builds its index from it and the sender looks up endpoint settings in it.
package subscription

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// ChangeFunc is told of every change: prev is nil for a new subscription,
// next is nil for a deleted one. It runs on the view's goroutine, so it
// must not wait for the view (WaitFor, WaitReady) or for anything that does.
type ChangeFunc func(prev, next *record.Subscription)

// View is the current state of every subscription. Records it holds are
// never mutated: an update replaces the pointer.
type View struct {
	codecs *record.Codecs
	log    zerolog.Logger

	mu       sync.RWMutex
	byID     map[string]*record.Subscription
	next     map[int32]int64 // next offset to read per partition
	target   map[int32]int64 // end offsets at start; ready once next reaches them
	ready    bool
	progress chan struct{} // closed and replaced whenever next advances
	onChange []ChangeFunc
}

// NewView returns an empty view; Run fills it.
func NewView(codecs *record.Codecs, log zerolog.Logger) *View {
	return &View{
		codecs:   codecs,
		log:      log,
		byID:     map[string]*record.Subscription{},
		next:     map[int32]int64{},
		progress: make(chan struct{}),
	}
}

// OnChange registers fn; register before Run.
func (v *View) OnChange(fn ChangeFunc) { v.onChange = append(v.onChange, fn) }

// Run reads the topic from the start and follows it until ctx is done.
// The view is ready once it has read everything that existed when Run began.
func (v *View) Run(ctx context.Context, cfg kafka.Config, topic string, extra ...kgo.Opt) error {
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

	ends, err := endOffsets(ctx, kadm.NewClient(cl), topic, v.log)
	if err != nil {
		return nil // ctx ended
	}
	v.mu.Lock()
	v.target = map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { v.target[o.Partition] = o.Offset })
	v.checkReadyLocked()
	v.mu.Unlock()

	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			v.log.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("subscriptions fetch")
		})
		fetches.EachRecord(v.apply)
		v.mu.Lock()
		v.checkReadyLocked()
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
		log.Warn().Err(err).Str("topic", topic).Dur("retry_in", wait).Msg("subscriptions end offsets")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("subscriptions end offsets: %w", err)
		case <-time.After(wait):
		}
	}
}

func (v *View) apply(r *kgo.Record) {
	if r.Attrs.IsControl() {
		v.advance(r)
		return
	}
	id := string(r.Key)
	var next *record.Subscription
	if r.Value != nil {
		var s record.Subscription
		if err := v.codecs.Subscription.Unmarshal(r.Value, &s); err != nil {
			// Skipped, not taken for a deletion: the subscription keeps
			// its last readable state.
			v.log.Error().Err(err).Str("key", id).Int64("offset", r.Offset).Msg("undecodable subscription record skipped")
			v.advance(r)
			return
		}
		next = &s
	}
	v.mu.Lock()
	prev := v.byID[id]
	if next == nil {
		delete(v.byID, id)
	} else {
		v.byID[id] = next
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
func (v *View) advance(r *kgo.Record) {
	v.mu.Lock()
	v.next[r.Partition] = r.Offset + 1
	v.mu.Unlock()
}

func (v *View) checkReadyLocked() {
	if v.ready || v.target == nil {
		return
	}
	for p, end := range v.target {
		if v.next[p] < end {
			return
		}
	}
	v.ready = true
	v.log.Info().Int("subscriptions", len(v.byID)).Msg("subscriptions view caught up")
}

// ErrNotReady is returned by Ready until the view has caught up.
var ErrNotReady = errors.New("subscriptions view is still catching up")

// Ready reports whether the view has caught up with the topic.
func (v *View) Ready() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if !v.ready {
		return ErrNotReady
	}
	return nil
}

// WaitReady blocks until the view has caught up or ctx ends.
func (v *View) WaitReady(ctx context.Context) error {
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
func (v *View) WaitFor(ctx context.Context, partition int32, offset int64) error {
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

// Get returns a subscription by id.
func (v *View) Get(id string) (*record.Subscription, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	s, ok := v.byID[id]
	return s, ok
}

// List returns a tenant's subscriptions, oldest first.
func (v *View) List(tenant string) []*record.Subscription {
	v.mu.RLock()
	out := make([]*record.Subscription, 0)
	for _, s := range v.byID {
		if s.Tenant == tenant {
			out = append(out, s)
		}
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Len is the number of subscriptions.
func (v *View) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.byID)
}
