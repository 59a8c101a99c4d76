// Package subscription keeps a materialized view of the compacted
// subscriptions topic in memory. Ingest answers reads from it, the matcher
// builds its index from it and the sender looks up endpoint settings in it.
package subscription

import (
	"sort"

	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/compacted"
	"github.com/hookline/hookline/pkg/record"
)

// ChangeFunc is told of every change: prev is nil for a new subscription,
// next is nil for a deleted one. It runs on the view's goroutine, so it
// must not wait for the view (WaitFor, WaitReady) or for anything that does.
type ChangeFunc = compacted.ChangeFunc[record.Subscription]

// ErrNotReady is returned by Ready until the view has caught up.
var ErrNotReady = compacted.ErrNotReady

// View is the current state of every subscription, keyed by id (Get,
// Run, Ready, WaitFor... are compacted.View's). Records it holds are never
// mutated: an update replaces the pointer.
type View struct {
	*compacted.View[record.Subscription]
}

// NewView returns an empty view; Run fills it.
func NewView(codecs *record.Codecs, log zerolog.Logger) *View {
	return &View{compacted.New(codecs.Subscription.Unmarshal, log)}
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
