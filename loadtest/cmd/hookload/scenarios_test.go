package main

import (
	"strings"
	"testing"

	"github.com/hookline/hookline/loadtest/internal/report"
)

func find(t *testing.T, name string) scenario {
	t.Helper()
	all, err := scenarios("quick", 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		if sc.name == name {
			return sc
		}
	}
	t.Fatalf("no scenario %s", name)
	return scenario{}
}

func TestNeighboursScenario(t *testing.T) {
	sc := find(t, "neighbours")
	if sc.alone == nil || sc.alone.plan.Name == sc.plan.Name {
		t.Fatal("neighbours has no baseline of its own")
	}
	if got := sc.rate / float64(sc.plan.Endpoints); got != 40 {
		t.Errorf("%v events/s per endpoint, want 40", got)
	}
	owedByGroup := map[string]bool{}
	for e := range sc.plan.Endpoints {
		owedByGroup[sc.groups(e)] = sc.endpoints[e].owed()
	}
	want := map[string]bool{"fast": true, "slow": true, "timeout": false, "refused": false}
	for g, owed := range want {
		if got, ok := owedByGroup[g]; !ok || got != owed {
			t.Errorf("group %s: owed %v (present %v), want %v", g, got, ok, owed)
		}
	}
	tests := []struct {
		name           string
		alone, with    float64 // fast p99 ms
		wantProblem    bool
		wantNoteSubstr string
	}{
		{"within 2x", 100, 190, false, "p99 ratio 1.90"},
		{"past 2x", 100, 250, true, "p99 ratio 2.50"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alone := &report.Result{Groups: []report.Group{{Name: "fast", Latency: report.Latency{P99: tc.alone}}}}
			with := &report.Result{Groups: []report.Group{{Name: "fast", Latency: report.Latency{P99: tc.with}}}}
			sc.compare(alone, with)
			if (len(with.Problems) > 0) != tc.wantProblem {
				t.Errorf("problems %q, want a problem %v", with.Problems, tc.wantProblem)
			}
			if len(with.Actions) != 1 || !strings.Contains(with.Actions[0], tc.wantNoteSubstr) {
				t.Errorf("notes %q, want one with %q", with.Actions, tc.wantNoteSubstr)
			}
		})
	}
}

func TestAtScaleScenario(t *testing.T) {
	sc := find(t, "at-scale")
	if n := sc.plan.Subscriptions(); n != 1000 {
		t.Errorf("%d subscriptions, want 1,000", n)
	}
	slow := 0
	for e := range sc.plan.Endpoints {
		if sc.groups(e) == "slow" {
			slow++
			if !sc.endpoints[e].owed() || sc.endpoints[e].faults.Slow == 0 {
				t.Errorf("slow endpoint %d: %+v, want a slow one that is owed its deliveries", e, sc.endpoints[e])
			}
		}
	}
	if slow*10 != sc.plan.Endpoints {
		t.Errorf("%d of %d endpoints slow, want 10%%", slow, sc.plan.Endpoints)
	}
	if tp := find(t, "throughput"); sc.events != tp.events || sc.rate != tp.rate {
		t.Errorf("%d events at %v/s, want the throughput scenario's %d at %v/s", sc.events, sc.rate, tp.events, tp.rate)
	}
	alone := &report.Result{Groups: []report.Group{{Name: "healthy", PerSecond: 1000}}}
	with := &report.Result{Groups: []report.Group{{Name: "healthy", PerSecond: 700}}}
	sc.compare(alone, with)
	if len(with.Problems) != 1 {
		t.Errorf("problems %q, want one for 70%% of the throughput alone", with.Problems)
	}
}

// TestImmediateScenario: the figure is taken at 500 requests/s,
// one event each, in immediate mode.
func TestImmediateScenario(t *testing.T) {
	sc := find(t, "immediate")
	if sc.rate != 500 || !sc.single || !sc.immediate || sc.via != "http" {
		t.Errorf("immediate scenario: rate %v single %v immediate %v via %s, want 500/s single immediate requests over http", sc.rate, sc.single, sc.immediate, sc.via)
	}
}

func TestAPIScenario(t *testing.T) {
	sc := find(t, "api")
	if sc.ingestAlone || sc.clients != 64 {
		t.Fatalf("api: ingestAlone %v, clients %d; want the whole stack and 64 clients", sc.ingestAlone, sc.clients)
	}
	if sc.alone == nil || !sc.alone.ingestAlone || sc.alone.clients != sc.clients || sc.alone.events != sc.events {
		t.Fatal("api has no baseline with ingest alone and the same load")
	}
	alone := &report.Result{Accepted: 9000, Ratio: 0.31}
	with := &report.Result{Accepted: 2500, Ratio: 0.07}
	sc.compare(alone, with)
	want := "ingest alone: 9000 events/s, 0.31 of a bare Go server (target >= 0.30); beside the pipeline: 2500 events/s, 0.07"
	if len(with.Actions) != 1 || with.Actions[0] != want {
		t.Errorf("actions %q, want %q", with.Actions, want)
	}
}

// TestScenarioNames: the scenarios are those scenarioNames lists (what
// -scenarios offers), in its order, each with its own name.
func TestScenarioNames(t *testing.T) {
	for _, size := range []string{"quick", "full"} {
		all, err := scenarios(size, 1024)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, sc := range all {
			names = append(names, sc.name)
		}
		if strings.Join(names, ",") != strings.Join(scenarioNames, ",") {
			t.Errorf("%s: scenarios %q, want %q", size, names, scenarioNames)
		}
	}
}
