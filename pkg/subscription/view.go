// Package subscription keeps a materialized view of the subscriptions in
// memory. Ingest answers reads from it, the matcher builds its index from
// it, the sender looks up endpoint settings in it and notify the
// addresses to email.
//
// A subscription has two writers, each the only writer of its own topic:
// its owner, through the API, writes the subscription record
// (hookline.subscriptions); the sender writes Hookline's own decision to
// disable it (hookline.endpoint-status: a 410, or failing past the disable
// window). The view merges the two: a status applies to the subscription
// record it was decided on (its updated_at), so any later change by the
// owner wins over it, whatever order the two topics are read in. No write
// of one can overwrite the other's: Kafka has no conditional write, and a
// read-then-write of the subscription record by the sender could not be
// made atomic with the owner's own (docs/decisions.md).
package subscription

import (
	"context"
	"sort"
	"sync"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/compacted"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// ChangeFunc is told of every change: prev is nil for a new subscription,
// next is nil for a deleted one. It runs on the view's goroutine, so it
// must not wait for the view (WaitFor, WaitReady) or for anything that does.
type ChangeFunc = compacted.ChangeFunc[record.Subscription]

// ErrNotReady is returned by Ready until the view has caught up.
var ErrNotReady = kafka.ErrNotReady

// View is the current state of every subscription, keyed by id: its
// owner's record with Hookline's status applied. Records it holds are
// never mutated: an update replaces the pointer.
type View struct {
	topics wire.Topics
	codecs *record.Codecs
	log    zerolog.Logger
	reader *kafka.Reader
	syncs  *kafka.Syncs

	mu       sync.RWMutex
	byID     map[string]*entry
	count    int // entries with a subscription
	onChange []ChangeFunc
}

// entry is what the view knows of one subscription id.
type entry struct {
	sub    *record.Subscription   // the owner's record; nil: none (deleted, or not read yet)
	status *record.EndpointStatus // Hookline's decision; nil: none
	eff    *record.Subscription   // sub with status applied; nil when sub is
}

// NewView returns an empty view of the subscriptions of topics; Run
// fills it.
func NewView(topics wire.Topics, codecs *record.Codecs, log zerolog.Logger) *View {
	v := &View{topics: topics, codecs: codecs, log: log, byID: map[string]*entry{},
		reader: kafka.NewReader(topics.Subscriptions, topics.EndpointStatus)}
	v.syncs = kafka.NewSyncs(v.Sync, log.With().Str("view", "subscriptions").Logger())
	v.reader.OnCaughtUp(func() { log.Info().Int("subscriptions", v.Len()).Msg("subscriptions view caught up") })
	return v
}

// OnChange registers fn; register before Run.
func (v *View) OnChange(fn ChangeFunc) { v.onChange = append(v.onChange, fn) }

// Run reads both topics from the start and follows them until ctx is
// done. The view is ready once it has read everything that existed when
// Run began.
func (v *View) Run(ctx context.Context, cfg kafka.Config, extra ...kgo.Opt) error {
	return v.reader.Run(ctx, cfg, v.log, v.apply, extra...)
}

func (v *View) apply(r *kgo.Record) bool {
	id := string(r.Key)
	var (
		sub    *record.Subscription
		status *record.EndpointStatus
		err    error
	)
	switch {
	case r.Value == nil: // a tombstone
	case r.Topic == v.topics.EndpointStatus:
		status = new(record.EndpointStatus)
		err = v.codecs.Status.Unmarshal(r.Value, status)
	default:
		sub = new(record.Subscription)
		err = v.codecs.Subscription.Unmarshal(r.Value, sub)
	}
	if err != nil {
		// Skipped, not taken for a deletion: the id keeps its last
		// readable state.
		v.log.Error().Err(err).Str("topic", r.Topic).Str("key", id).Int64("offset", r.Offset).Msg("undecodable record skipped")
		return true
	}
	v.mu.Lock()
	e := v.byID[id]
	if e == nil {
		e = &entry{}
		v.byID[id] = e
	}
	prev := e.eff
	if r.Topic == v.topics.EndpointStatus {
		e.status = status
	} else {
		e.sub = sub
	}
	e.eff = Effective(e.sub, e.status)
	next := e.eff
	switch {
	case prev == nil && next != nil:
		v.count++
	case prev != nil && next == nil:
		v.count--
	}
	if e.sub == nil && e.status == nil {
		delete(v.byID, id)
	}
	v.mu.Unlock()
	if prev == next {
		return true // a status that does not apply, or a tombstone of nothing
	}
	for _, fn := range v.onChange {
		fn(prev, next)
	}
	return true
}

// Effective is sub as Hookline treats it given its endpoint's status:
// disabled, with the status's reason and time, when the status was
// decided on this very record (the same updated_at) and the owner has not
// disabled it already; otherwise sub itself. A status decided on an older
// record lost to the owner's change. Nil when sub is nil.
func Effective(sub *record.Subscription, status *record.EndpointStatus) *record.Subscription {
	if sub == nil || status == nil || !sub.Enabled || !status.SubscriptionUpdatedAt.Equal(sub.UpdatedAt) {
		return sub
	}
	disabled := *sub
	disabled.Enabled, disabled.DisabledReason, disabled.UpdatedAt = false, status.DisabledReason, status.DisabledAt
	return &disabled
}

// Ready reports whether the view has caught up with both topics.
func (v *View) Ready() error { return v.reader.Ready() }

// WaitReady blocks until the view has caught up or ctx ends.
func (v *View) WaitReady(ctx context.Context) error { return v.reader.WaitReady(ctx) }

// WaitFor blocks until the view has read the subscription record at
// offset of partition, so a writer can read its own write.
func (v *View) WaitFor(ctx context.Context, partition int32, offset int64) error {
	return v.reader.WaitFor(ctx, v.topics.Subscriptions, partition, offset)
}

// WaitForStatus is WaitFor of a record of the endpoint status topic.
func (v *View) WaitForStatus(ctx context.Context, partition int32, offset int64) error {
	return v.reader.WaitFor(ctx, v.topics.EndpointStatus, partition, offset)
}

// Sync blocks until the view has read everything written to both topics
// before the call (kafka.Reader.Sync): a reader that learns of a
// subscription from elsewhere calls it before deciding it is gone, and
// the sender before deciding to disable one.
func (v *View) Sync(ctx context.Context) error { return v.reader.Sync(ctx) }

// Syncs shares the view's syncs among those who need one often: the
// matcher before it matches a batch, the sender's lanes waiting for a
// subscription it does not know (kafka.Syncs).
func (v *View) Syncs() *kafka.Syncs { return v.syncs }

// Get returns a subscription as Hookline treats it.
func (v *View) Get(id string) (*record.Subscription, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if e := v.byID[id]; e != nil && e.eff != nil {
		return e.eff, true
	}
	return nil, false
}

// Select returns the subscriptions keep accepts, in no particular order.
func (v *View) Select(keep func(*record.Subscription) bool) []*record.Subscription {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]*record.Subscription, 0)
	for _, e := range v.byID {
		if e.eff != nil && keep(e.eff) {
			out = append(out, e.eff)
		}
	}
	return out
}

// Len is the number of subscriptions.
func (v *View) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.count
}

// List returns a tenant's subscriptions, oldest first.
func (v *View) List(tenant string) []*record.Subscription {
	out := v.Select(func(s *record.Subscription) bool { return s.Tenant == tenant })
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
