package workload

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/hookline/hookline/pkg/condition"
)

// Every event must match exactly MatchPerEvent of its tenant's
// subscriptions, and exactly those Matching names, when the conditions are
// evaluated by the matcher's own condition package.
func TestConditionsSelectExactlyMatching(t *testing.T) {
	tests := []struct {
		name string
		plan Plan
	}{
		{"throughput: one subscription, no condition", Plan{Name: "a", Tenants: 1, SubsPerTenant: 1, MatchPerEvent: 1, Endpoints: 1, EventTypes: 1}},
		{"fanout: all ten match", Plan{Name: "b", Tenants: 1, SubsPerTenant: 10, MatchPerEvent: 10, Endpoints: 10, EventTypes: 1}},
		{"selective: 1% match", Plan{Name: "c", Tenants: 2, SubsPerTenant: 100, MatchPerEvent: 1, Endpoints: 1, EventTypes: 1}},
		{"groups of five", Plan{Name: "d", Tenants: 1, SubsPerTenant: 20, MatchPerEvent: 5, Endpoints: 3, EventTypes: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.plan
			if err := p.Check(); err != nil {
				t.Fatal(err)
			}
			subs := &Subs{Plan: p, IDs: make([][]string, p.Tenants)}
			conds := make([]*condition.Condition, p.SubsPerTenant)
			for j := range p.SubsPerTenant {
				for ten := range p.Tenants {
					subs.IDs[ten] = append(subs.IDs[ten], fmt.Sprintf("sub_%d_%d", ten, j))
				}
				c, err := condition.Parse(p.condition(j))
				if err != nil {
					t.Fatalf("condition of subscription %d: %v", j, err)
				}
				conds[j] = c // nil matches everything
			}
			for b := range p.Buckets() {
				for _, region := range []string{"eu", "us", "ap"} {
					var data any
					_ = json.Unmarshal(fmt.Appendf(nil, `{"id":"s-1","bucket":%d,"region":%q}`, b, region), &data)
					doc := condition.NewDocument(map[string]any{"type": "bench.t0", "data": data})
					var matched []string
					for j, c := range conds {
						if c == nil || c.Match(doc) {
							matched = append(matched, subs.IDs[1%p.Tenants][j])
						}
					}
					want := subs.Matching(nil, 1%p.Tenants, b)
					if fmt.Sprint(matched) != fmt.Sprint(want) || len(want) != p.MatchPerEvent {
						t.Fatalf("bucket %d: conditions match %v, Matching says %v, want %d", b, matched, want, p.MatchPerEvent)
					}
				}
			}
		})
	}
}

func TestCheckRefusesUnevenPlans(t *testing.T) {
	for _, p := range []Plan{
		{Name: "uneven", Tenants: 1, SubsPerTenant: 10, MatchPerEvent: 3, Endpoints: 1, EventTypes: 1},
		{Name: "empty", Tenants: 0, SubsPerTenant: 1, MatchPerEvent: 1, Endpoints: 1, EventTypes: 1},
	} {
		if p.Check() == nil {
			t.Errorf("%s: Check passed", p.Name)
		}
	}
}
