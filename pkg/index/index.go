// Package index is the matcher's in-memory index of subscriptions: per
// tenant, exact event types in a map and wildcard patterns in a list, each
// subscription's condition, expression and derived fields compiled once per
// version.
package index

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/routeurl"
)

// Entry is one enabled subscription, compiled. It is immutable: a new
// version of the subscription gets a new Entry.
type Entry struct {
	Sub        *record.Subscription
	Condition  *condition.Condition  // nil: always true
	Expression *condition.Expression // nil: always true
	Routes     []Route
	Derived    []*condition.Derived // in order
	// Key is the Kafka key of the subscription's deliveries (its id).
	Key []byte
	// Metadata is Sub.Metadata as a JSON object, nil when there is none,
	// encoded once here rather than once per delivery.
	Metadata json.RawMessage

	exact    []string   // event types without wildcards, each once
	patterns [][]string // event types with wildcards, split on dots
}

// Route is a compiled route.
type Route struct {
	Condition *condition.Condition
	URL       string
	ID        string // routeurl.ConditionID: how a delivery names it
}

// Matches reports whether the event document satisfies the entry's
// condition and expression.
func (e *Entry) Matches(doc condition.Document) bool {
	if !e.Condition.Match(doc) {
		return false
	}
	if e.Expression == nil {
		return true
	}
	ok, err := e.Expression.Match(doc)
	return ok && err == nil
}

// coversPattern reports whether one of the entry's wildcard patterns
// matches eventType and none of its exact types does (an exact type has
// already put the entry among the candidates).
func (e *Entry) coversPattern(eventType string) bool {
	if slices.Contains(e.exact, eventType) {
		return false
	}
	for _, segs := range e.patterns {
		if MatchType(segs, eventType) {
			return true
		}
	}
	return false
}

// maxCachedTypes bounds each tenant's cache of candidates by event type,
// so that a producer inventing event types cannot grow it without limit.
const maxCachedTypes = 1024

// tenantIndex is one tenant's subscriptions. It is changed in place under
// the Index's write lock, so one change costs what it touches: the entry's
// own event types, not the tenant's other subscriptions.
type tenantIndex struct {
	entries  map[string]*Entry   // by subscription id
	exact    map[string][]*Entry // by event type
	patterns []*Entry            // entries with at least one wildcard type

	// candidates caches the candidates of each event type seen, so that
	// wildcard patterns are matched once per type rather than per event.
	// Filled under the read lock, cleared by every change.
	candidates sync.Map // event type -> []*Entry, never modified
	cached     atomic.Int32
}

// candidatesOf returns the candidates of eventType, a slice nobody
// modifies; the caller holds the Index's read lock.
func (t *tenantIndex) candidatesOf(eventType string) []*Entry {
	if c, ok := t.candidates.Load(eventType); ok {
		return c.([]*Entry)
	}
	c := slices.Clone(t.exact[eventType])
	for _, e := range t.patterns {
		if e.coversPattern(eventType) {
			c = append(c, e)
		}
	}
	if t.cached.Load() < maxCachedTypes {
		if _, loaded := t.candidates.LoadOrStore(eventType, c); !loaded {
			t.cached.Add(1)
		}
	}
	return c
}

// changed empties the cache; the caller holds the write lock.
func (t *tenantIndex) changed() {
	t.candidates.Clear()
	t.cached.Store(0)
}

// Index is safe for concurrent Candidates while Update runs.
type Index struct {
	log      zerolog.Logger
	mu       sync.RWMutex
	byTenant map[string]*tenantIndex
	n        int
}

// New returns an empty index.
func New(log zerolog.Logger) *Index {
	return &Index{log: log, byTenant: map[string]*tenantIndex{}}
}

// Update applies one change from the subscriptions view (its ChangeFunc):
// prev is nil for a new subscription, next is nil for a deleted one.
// Disabled subscriptions are left out: their events are not matched.
func (ix *Index) Update(prev, next *record.Subscription) {
	var e *Entry
	if next != nil && next.Enabled {
		var err error
		if e, err = Compile(next); err != nil {
			// Ingest validates before writing, so this is a record from an
			// incompatible writer; skipping it is logged, not silent.
			ix.log.Error().Err(err).Str("subscription", next.ID).Msg("subscription does not compile; not matched")
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// Whatever the index holds under the old or the new identity goes; a
	// subscription may even have moved to another tenant.
	if prev != nil {
		ix.remove(prev.Tenant, prev.ID)
	}
	if next != nil {
		ix.remove(next.Tenant, next.ID)
	}
	if e != nil {
		ix.add(e)
	}
}

func (ix *Index) add(e *Entry) {
	t := ix.byTenant[e.Sub.Tenant]
	if t == nil {
		t = &tenantIndex{entries: map[string]*Entry{}, exact: map[string][]*Entry{}}
		ix.byTenant[e.Sub.Tenant] = t
	}
	t.changed()
	t.entries[e.Sub.ID] = e
	for _, et := range e.exact {
		t.exact[et] = append(t.exact[et], e)
	}
	if len(e.patterns) > 0 {
		t.patterns = append(t.patterns, e)
	}
	ix.n++
}

func (ix *Index) remove(tenant, id string) {
	t := ix.byTenant[tenant]
	if t == nil {
		return
	}
	e := t.entries[id]
	if e == nil {
		return
	}
	is := func(x *Entry) bool { return x == e }
	t.changed()
	delete(t.entries, id)
	for _, et := range e.exact {
		if rest := slices.DeleteFunc(t.exact[et], is); len(rest) > 0 {
			t.exact[et] = rest
		} else {
			delete(t.exact, et)
		}
	}
	if len(e.patterns) > 0 {
		t.patterns = slices.DeleteFunc(t.patterns, is)
	}
	if len(t.entries) == 0 {
		delete(ix.byTenant, tenant)
	}
	ix.n--
}

// Candidates returns the tenant's subscriptions whose event types cover
// eventType, each once. Conditions are not evaluated here. The slice is
// shared with other callers and must not be modified; later Updates leave
// it as it is, a snapshot.
func (ix *Index) Candidates(tenant, eventType string) []*Entry {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	t := ix.byTenant[tenant]
	if t == nil {
		return nil
	}
	return t.candidatesOf(eventType)
}

// Entry is the tenant's enabled subscription id, or nil.
func (ix *Index) Entry(tenant, id string) *Entry {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	t := ix.byTenant[tenant]
	if t == nil {
		return nil
	}
	return t.entries[id]
}

// MatchType matches a dotted event type against a pattern split on dots.
// "*" stands for exactly one segment, except in last place, where it stands
// for one or more: "order.*" matches order.created and order.item.added,
// "*.created" matches order.created only, and "*" matches every type.
func MatchType(segs []string, eventType string) bool {
	rest := eventType
	for i, s := range segs {
		if rest == "" {
			return false
		}
		if s == "*" && i == len(segs)-1 {
			return true
		}
		seg, tail, more := strings.Cut(rest, ".")
		if s != "*" && s != seg {
			return false
		}
		if !more {
			rest = ""
		} else {
			rest = tail
			if rest == "" {
				return false
			}
		}
	}
	return rest == ""
}

// Len is the number of indexed subscriptions.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// Compile builds the Entry of one subscription version: its condition,
// expression, routes and derived fields compiled, its event types sorted into exact types
// and wildcard patterns.
func Compile(s *record.Subscription) (*Entry, error) {
	e := &Entry{Sub: s, Key: []byte(s.ID)}
	var err error
	if s.Condition != nil {
		if e.Condition, err = condition.Parse([]byte(*s.Condition)); err != nil {
			return nil, err
		}
	}
	if s.Expression != nil {
		if e.Expression, err = condition.CompileExpression(*s.Expression); err != nil {
			return nil, err
		}
	}
	for _, r := range s.Routes {
		c, err := condition.Parse([]byte(r.Condition))
		if err != nil {
			return nil, err
		}
		e.Routes = append(e.Routes, Route{Condition: c, URL: r.URL, ID: routeurl.ConditionID(r.Condition)})
	}
	for _, d := range s.Derive {
		cd, err := condition.CompileDerived(d.Field, d.Expression, d.DefaultJSON)
		if err != nil {
			return nil, fmt.Errorf("derive %s: %w", d.Field, err)
		}
		e.Derived = append(e.Derived, cd)
	}
	if len(s.Metadata) > 0 {
		if e.Metadata, err = json.Marshal(s.Metadata); err != nil {
			return nil, err
		}
	}
	for _, et := range s.EventTypes {
		if strings.Contains(et, "*") {
			e.patterns = append(e.patterns, strings.Split(et, "."))
		} else if !slices.Contains(e.exact, et) {
			e.exact = append(e.exact, et)
		}
	}
	return e, nil
}
