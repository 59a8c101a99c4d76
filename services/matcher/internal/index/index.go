// Package index is the matcher's in-memory index of subscriptions: per
// tenant, exact event types in a map and wildcard patterns in a list, each
// subscription's condition and expression compiled once per version.
package index

import (
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/record"
)

// Entry is one enabled subscription, compiled.
type Entry struct {
	Sub        *record.Subscription
	Condition  *condition.Condition  // nil: always true
	Expression *condition.Expression // nil: always true
	Routes     []Route
}

// Route is a compiled route.
type Route struct {
	Condition *condition.Condition
	URL       string
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

// URL is the target for this event: the first matching route's, else the
// subscription's.
func (e *Entry) URL(doc condition.Document) string {
	for _, r := range e.Routes {
		if r.Condition.Match(doc) {
			return r.URL
		}
	}
	return e.Sub.URL
}

type pattern struct {
	segs  []string
	entry *Entry
}

// tenantIndex is immutable once built; a change builds a new one.
type tenantIndex struct {
	entries  map[string]*Entry
	exact    map[string][]*Entry
	patterns []pattern
}

// Index is safe for concurrent Match while Update runs.
type Index struct {
	log      zerolog.Logger
	mu       sync.RWMutex
	byTenant map[string]*tenantIndex
}

// New returns an empty index.
func New(log zerolog.Logger) *Index {
	return &Index{log: log, byTenant: map[string]*tenantIndex{}}
}

// Update applies one change from the subscriptions view (its ChangeFunc).
// Disabled subscriptions are left out: their events are not matched.
func (ix *Index) Update(prev, next *record.Subscription) {
	var e *Entry
	if next != nil && next.Enabled {
		var err error
		if e, err = compile(next); err != nil {
			// Ingest validates before writing, so this is a record from an
			// incompatible writer; skipping it is logged, not silent.
			ix.log.Error().Err(err).Str("subscription", next.ID).Msg("subscription does not compile; not matched")
			e = nil
		}
	}
	tenant, id := "", ""
	if next != nil {
		tenant, id = next.Tenant, next.ID
	} else {
		tenant, id = prev.Tenant, prev.ID
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if prev != nil && prev.Tenant != tenant {
		ix.rebuild(prev.Tenant, prev.ID, nil)
	}
	ix.rebuild(tenant, id, e)
}

func (ix *Index) rebuild(tenant, id string, e *Entry) {
	old := ix.byTenant[tenant]
	entries := make(map[string]*Entry, 1)
	if old != nil {
		entries = make(map[string]*Entry, len(old.entries)+1)
		for k, v := range old.entries {
			entries[k] = v
		}
	}
	if e == nil {
		delete(entries, id)
	} else {
		entries[id] = e
	}
	if len(entries) == 0 {
		delete(ix.byTenant, tenant)
		return
	}
	t := &tenantIndex{entries: entries, exact: map[string][]*Entry{}}
	for _, en := range entries {
		for _, et := range en.Sub.EventTypes {
			if strings.Contains(et, "*") {
				t.patterns = append(t.patterns, pattern{segs: strings.Split(et, "."), entry: en})
			} else {
				t.exact[et] = append(t.exact[et], en)
			}
		}
	}
	ix.byTenant[tenant] = t
}

// Candidates appends to buf the tenant's subscriptions whose event types
// cover eventType, each once. Conditions are not evaluated here.
func (ix *Index) Candidates(buf []*Entry, tenant, eventType string) []*Entry {
	ix.mu.RLock()
	t := ix.byTenant[tenant]
	ix.mu.RUnlock()
	if t == nil {
		return buf
	}
	start := len(buf)
	buf = append(buf, t.exact[eventType]...)
	for _, p := range t.patterns {
		if MatchType(p.segs, eventType) && !contains(buf[start:], p.entry) {
			buf = append(buf, p.entry)
		}
	}
	return buf
}

func contains(es []*Entry, e *Entry) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
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
	n := 0
	for _, t := range ix.byTenant {
		n += len(t.entries)
	}
	return n
}

func compile(s *record.Subscription) (*Entry, error) {
	e := &Entry{Sub: s}
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
		e.Routes = append(e.Routes, Route{Condition: c, URL: r.URL})
	}
	return e, nil
}
