package index

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/record"
)

func TestMatchType(t *testing.T) {
	tests := []struct {
		pattern, eventType string
		want               bool
	}{
		{"order.*", "order.created", true},
		{"order.*", "order.item.added", true},
		{"order.*", "order", false},
		{"order.*", "order.", false},
		{"order.*", "orders.created", false},
		{"order.*", "customer.created", false},
		{"*.created", "order.created", true},
		{"*.created", "order.item.created", false},
		{"*.created", "created", false},
		{"*.created", "order.updated", false},
		{"*", "order", true},
		{"*", "order.created", true},
		{"*", "", false},
		{"order.*.added", "order.item.added", true},
		{"order.*.added", "order.item.line.added", false},
		{"order.*.added", "order.item.removed", false},
		{"*.*", "order.created", true},
		{"*.*", "order.item.added", true},
		{"*.*", "order", false},
		{"order.created", "order.created", true},
		{"order.created", "order.created.v2", false},
		{"order.created", "order", false},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"~"+tc.eventType, func(t *testing.T) {
			if got := MatchType(strings.Split(tc.pattern, "."), tc.eventType); got != tc.want {
				t.Errorf("MatchType(%q, %q) = %v, want %v", tc.pattern, tc.eventType, got, tc.want)
			}
		})
	}
}

func sub(tenant, id string, types ...string) *record.Subscription {
	return &record.Subscription{ID: id, Tenant: tenant, URL: "https://example.com/" + id, EventTypes: types, Enabled: true}
}

// ids returns the subscription ids of the candidates, sorted, failing on
// any id that appears twice.
func ids(t *testing.T, es []*Entry) []string {
	t.Helper()
	out := make([]string, 0, len(es))
	for _, e := range es {
		if slices.Contains(out, e.Sub.ID) {
			t.Errorf("subscription %s is a candidate twice", e.Sub.ID)
		}
		out = append(out, e.Sub.ID)
	}
	slices.Sort(out)
	return out
}

func TestCandidates(t *testing.T) {
	ix := New(zerolog.Nop())
	for _, s := range []*record.Subscription{
		sub("acme", "exact", "order.created"),
		sub("acme", "two-exact", "order.created", "order.paid"),
		sub("acme", "dup-exact", "order.created", "order.created"),
		sub("acme", "prefix", "order.*"),
		sub("acme", "exact-and-prefix", "order.created", "order.*"),
		sub("acme", "two-patterns", "order.*", "*.created"),
		sub("acme", "all", "*"),
		sub("acme", "customer", "customer.created"),
		sub("globex", "globex-order", "order.created"),
		sub("globex", "globex-all", "*"),
	} {
		ix.Update(nil, s)
	}
	tests := []struct {
		name, tenant, eventType string
		want                    []string
	}{
		{"exact and patterns, each once", "acme", "order.created",
			[]string{"all", "dup-exact", "exact", "exact-and-prefix", "prefix", "two-exact", "two-patterns"}},
		{"second exact type", "acme", "order.paid",
			[]string{"all", "exact-and-prefix", "prefix", "two-exact", "two-patterns"}},
		{"nested type under prefix", "acme", "order.item.added",
			[]string{"all", "exact-and-prefix", "prefix", "two-patterns"}},
		{"suffix pattern only", "acme", "customer.created", []string{"all", "customer", "two-patterns"}},
		{"catch-all only", "acme", "invoice.sent", []string{"all"}},
		{"other tenant sees its own", "globex", "order.created", []string{"globex-all", "globex-order"}},
		{"unknown tenant", "initech", "order.created", []string{}},
		{"tenant is not a prefix match", "acm", "order.created", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(t, ix.Candidates(tc.tenant, tc.eventType))
			if !slices.Equal(got, tc.want) {
				t.Errorf("Candidates(%s, %s) = %v, want %v", tc.tenant, tc.eventType, got, tc.want)
			}
		})
	}
	t.Run("a snapshot: later updates leave it alone", func(t *testing.T) {
		before := ix.Candidates("globex", "order.created")
		ix.Update(nil, sub("globex", "globex-later", "order.created"))
		after := ix.Candidates("globex", "order.created")
		ix.Update(sub("globex", "globex-later", "order.created"), nil)
		if got := ids(t, before); !slices.Equal(got, []string{"globex-all", "globex-order"}) {
			t.Errorf("earlier result became %v", got)
		}
		if got := ids(t, after); !slices.Equal(got, []string{"globex-all", "globex-later", "globex-order"}) {
			t.Errorf("after an update: %v", got)
		}
	})
	t.Run("cache is bounded", func(t *testing.T) {
		for i := range 2 * maxCachedTypes {
			if got := ids(t, ix.Candidates("globex", fmt.Sprint("type.", i))); !slices.Equal(got, []string{"globex-all"}) {
				t.Fatalf("Candidates(globex, type.%d) = %v, want [globex-all]", i, got)
			}
		}
		if n := ix.byTenant["globex"].cached.Load(); n > maxCachedTypes {
			t.Errorf("%d event types cached, want at most %d", n, maxCachedTypes)
		}
	})
	if ix.Len() != 10 {
		t.Errorf("Len = %d, want 10", ix.Len())
	}
}

func ptr(s string) *string { return &s }

// TestUpdate applies a sequence of changes, as the view reports them, and
// checks the candidates for one event type after each.
func TestUpdate(t *testing.T) {
	a1 := sub("acme", "a", "order.created")
	a2 := sub("acme", "a", "order.paid") // new version: different type
	a3 := sub("acme", "a", "order.*")
	aOff := sub("acme", "a", "order.created")
	aOff.Enabled = false
	aGlobex := sub("globex", "a", "order.created") // moved tenant
	bad := sub("acme", "a", "order.created")
	bad.Condition = ptr(`{"field":"data.x","op":"equals","value":1}`)
	badExpr := sub("acme", "a", "order.created")
	badExpr.Expression = ptr(`event.data.x +`)
	badRoute := sub("acme", "a", "order.created")
	badRoute.Routes = []record.Route{{Condition: `{"any":[]}`, URL: "https://example.com/r"}}
	badDerive := sub("acme", "a", "order.created")
	badDerive.Derive = []record.Derive{{Field: "total_eur", Expression: "event.data.total / 100.0"}}
	b := sub("acme", "b", "order.created")

	type query struct {
		tenant, eventType string
		want              []string
	}
	tests := []struct {
		name       string
		prev, next *record.Subscription
		wantLen    int
		queries    []query
	}{
		{"add", nil, a1, 1, []query{{"acme", "order.created", []string{"a"}}}},
		{"add another", nil, b, 2, []query{{"acme", "order.created", []string{"a", "b"}}}},
		{"change event type", a1, a2, 2, []query{
			{"acme", "order.created", []string{"b"}},
			{"acme", "order.paid", []string{"a"}},
		}},
		{"exact to pattern", a2, a3, 2, []query{
			{"acme", "order.paid", []string{"a"}},
			{"acme", "order.created", []string{"a", "b"}},
		}},
		{"disable", a3, aOff, 1, []query{
			{"acme", "order.created", []string{"b"}},
			{"acme", "order.paid", []string{}},
		}},
		{"enable", aOff, a1, 2, []query{{"acme", "order.created", []string{"a", "b"}}}},
		{"move to another tenant", a1, aGlobex, 2, []query{
			{"acme", "order.created", []string{"b"}},
			{"globex", "order.created", []string{"a"}},
		}},
		{"move back", aGlobex, a1, 2, []query{
			{"acme", "order.created", []string{"a", "b"}},
			{"globex", "order.created", []string{}},
		}},
		{"condition does not compile: not indexed, old version gone", a1, bad, 1, []query{
			{"acme", "order.created", []string{"b"}},
		}},
		{"compiles again", bad, a1, 2, []query{{"acme", "order.created", []string{"a", "b"}}}},
		{"expression does not compile", a1, badExpr, 1, []query{{"acme", "order.created", []string{"b"}}}},
		{"route does not compile", badExpr, badRoute, 1, []query{{"acme", "order.created", []string{"b"}}}},
		{"derived field does not compile", badRoute, badDerive, 1, []query{{"acme", "order.created", []string{"b"}}}},
		{"re-add without prev replaces", nil, a1, 2, []query{{"acme", "order.created", []string{"a", "b"}}}},
		{"same again is idempotent", nil, a1, 2, []query{{"acme", "order.created", []string{"a", "b"}}}},
		{"delete", a1, nil, 1, []query{{"acme", "order.created", []string{"b"}}}},
		{"delete last", b, nil, 0, []query{{"acme", "order.created", []string{}}}},
		{"delete unknown", sub("acme", "zzz", "order.created"), nil, 0, []query{{"acme", "order.created", []string{}}}},
	}
	ix := New(zerolog.Nop())
	for _, tc := range tests {
		// Each step builds on the previous ones, so a failure stops the run.
		ok := t.Run(tc.name, func(t *testing.T) {
			ix.Update(tc.prev, tc.next)
			if ix.Len() != tc.wantLen {
				t.Errorf("Len = %d, want %d", ix.Len(), tc.wantLen)
			}
			for _, q := range tc.queries {
				if got := ids(t, ix.Candidates(q.tenant, q.eventType)); !slices.Equal(got, q.want) {
					t.Errorf("Candidates(%s, %s) = %v, want %v", q.tenant, q.eventType, got, q.want)
				}
			}
		})
		if !ok {
			break
		}
	}
	if len(ix.byTenant) != 0 {
		t.Errorf("empty index still holds tenants %v", ix.byTenant)
	}
}

func TestCompile(t *testing.T) {
	s := sub("acme", "a", "order.created", "order.*")
	s.Condition = ptr(`{"field":"data.total","op":"gt","value":100}`)
	s.Metadata = map[string]string{"team": "billing", "env": "prod"}
	s.Routes = []record.Route{{Condition: `{"field":"data.region","op":"eq","value":"eu"}`, URL: "https://eu.example.com"}}
	s.Derive = []record.Derive{
		{Field: "data.total_eur", Expression: "event.data.total / 100.0"},
		{Field: "data.name", Expression: "event.data.name", DefaultJSON: ptr(`"unknown"`)},
	}
	e, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Key) != "a" {
		t.Errorf("Key = %q, want a", e.Key)
	}
	if want := `{"env":"prod","team":"billing"}`; string(e.Metadata) != want {
		t.Errorf("Metadata = %s, want %s", e.Metadata, want)
	}
	if e.Condition == nil || len(e.Routes) != 1 {
		t.Errorf("condition or routes not compiled: %+v", e)
	}
	if len(e.Derived) != 2 || e.Derived[0].Field != "data.total_eur" || string(e.Derived[1].Default) != `"unknown"` {
		t.Errorf("derived fields not compiled in order: %+v", e.Derived)
	}
	if none, _ := Compile(sub("acme", "b", "x")); none.Metadata != nil || none.Condition != nil {
		t.Errorf("a subscription without metadata or condition compiled to %+v", none)
	}
}

// TestConcurrentUpdates runs Candidates while subscriptions change, for
// the race detector, and checks the end state.
func TestConcurrentUpdates(t *testing.T) {
	ix := New(zerolog.Nop())
	const n = 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, e := range ix.Candidates("acme", "order.created") {
					if e.Sub.Tenant != "acme" {
						t.Errorf("candidate of tenant %s", e.Sub.Tenant)
					}
				}
			}
		})
	}
	for i := range n {
		s := sub("acme", fmt.Sprint(i), "order.created")
		if i%2 == 0 {
			s.EventTypes = []string{"order.*"}
		}
		ix.Update(nil, s)
	}
	for i := 0; i < n; i += 4 {
		ix.Update(sub("acme", fmt.Sprint(i), "order.*"), nil)
	}
	close(stop)
	wg.Wait()
	if got := len(ix.Candidates("acme", "order.created")); got != n-n/4 {
		t.Errorf("%d candidates, want %d", got, n-n/4)
	}
}

// BenchmarkLoadTenant is the startup cost of one tenant with many
// subscriptions: it grows linearly, not quadratically.
func BenchmarkLoadTenant(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		subs := make([]*record.Subscription, n)
		for i := range subs {
			subs[i] = sub("acme", fmt.Sprint("sub_", i), fmt.Sprint("type.", i%50))
			if i%10 == 0 {
				subs[i].EventTypes = []string{"type.*"}
			}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				ix := New(zerolog.Nop())
				for _, s := range subs {
					ix.Update(nil, s)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sub")
		})
	}
}

// BenchmarkCandidates looks up random tenants and event types in an index
// of 10,000 subscriptions over 100 tenants, a fifth of them on wildcards.
func BenchmarkCandidates(b *testing.B) {
	ix := New(zerolog.Nop())
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("entity%d.action%d", i%5, i%4))
	}
	types := func(i int) string { return names[i%20] }
	for t := range 100 {
		for i := range 100 {
			s := sub(fmt.Sprint("tenant", t), fmt.Sprint("sub", t, "_", i), types(i*7+t))
			switch i % 10 {
			case 0:
				s.EventTypes = []string{fmt.Sprintf("entity%d.*", i%5)}
			case 1:
				s.EventTypes = []string{"*"}
			}
			ix.Update(nil, s)
		}
	}
	tenants := make([]string, 100)
	for t := range tenants {
		tenants[t] = fmt.Sprint("tenant", t)
	}
	i := 0
	for b.Loop() {
		i++
		ix.Candidates(tenants[i*31%100], types(i*13))
	}
}
