package main

import (
	"fmt"
	"time"

	"github.com/hookline/hookline/loadtest/internal/report"
	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/loadtest/internal/workload"
)

// scenario is one benchmark: a plan of subscriptions, a load of events and
// the sink's behaviour.
type scenario struct {
	name   string
	about  string
	plan   workload.Plan
	events int
	rate   float64 // events/s; 0 is as fast as possible
	via    string  // kafka or http
	faults sink.Faults
	// send bounds the time spent sending; drain the wait for deliveries
	// after the last event.
	send, drain time.Duration
	// endpoints, when set, gives some endpoints (by index within each
	// tenant) a behaviour of their own (endpoint).
	endpoints map[int]endpoint
	// groups, when set, names the set of each endpoint index: the report
	// shows each set's deliveries and latency.
	groups func(e int) string
	// alone, when set, is the same load without the misbehaving endpoints,
	// run first; compare says how this run fares next to it.
	alone   *scenario
	compare func(alone, with *report.Result)
	// hops asks for the per-hop breakdown of the latency (report.Hop).
	hops bool
	// idle, when set, sends nothing: the scenario measures the stack's
	// CPU at rest for this long.
	idle time.Duration
	// clients, when set, sends one event per request, this many requests
	// at a time, and measures the API against a bare Go HTTP server.
	clients int
	// single sends one event per request (at the scenario's rate).
	single bool
	// immediate sends each (single) event with ?mode=immediate and reports
	// the answer time less the attempt's own (report.Immediate).
	immediate bool
	// ingestAlone stops every service but ingest while the events are
	// sent and starts them again after the last answer, so that they
	// deliver everything then: the API's throughput with the machine to
	// itself, as where ingest runs on machines of its own.
	ingestAlone bool
}

// endpoint is how one endpoint of a scenario misbehaves.
type endpoint struct {
	faults sink.Faults // answered with these instead of the scenario's
	refuse bool        // its URL is a closed port: connections are refused
}

// owed reports whether an endpoint ever takes a delivery: one that times
// out on every request or refuses connections does not.
func (e endpoint) owed() bool {
	return !e.refuse && e.faults.TimeoutRate < 1 && e.faults.ErrorRate < 1 && e.faults.ResetRate < 1
}

// sizes scale the scenarios: quick runs them all in a few minutes on a
// laptop, full is the benchmark of record.
var sizes = map[string]struct {
	events, fanoutEvents, selectiveEvents, failingEvents int
	latencyFor, neighboursFor                            time.Duration
}{
	"quick": {events: 20000, fanoutEvents: 2000, selectiveEvents: 10000, failingEvents: 5000, latencyFor: 15 * time.Second, neighboursFor: 15 * time.Second},
	"full":  {events: 200000, fanoutEvents: 20000, selectiveEvents: 100000, failingEvents: 50000, latencyFor: 60 * time.Second, neighboursFor: 60 * time.Second},
}

// scenarioNames lists the scenarios in the order they run: the failing one
// last, so that its retries cannot disturb another's numbers, and the
// neighbours ones before it, since their bad endpoints retry too.
var scenarioNames = []string{"throughput", "fanout", "selective", "latency", "trickle", "api", "immediate", "idle", "neighbours", "at-scale", "failing"}

// slow3s is an endpoint that answers after 3 seconds.
var slow3s = endpoint{faults: sink.Faults{SlowRate: 1, Slow: 3 * time.Second}}

// neighbours is endpoints on shared partitions: one slow (3 s), one
// timing out (never answers; the sender gives up after the default 15 s),
// one refusing connections, seven fast; 40 events/s to each. The fast
// endpoints' latency is compared with the same run where the three answer
// like the others.
func neighbours(size string, payload int, plan func(name string, tenants, subs, match, endpoints int) workload.Plan) scenario {
	for40 := sizes[size].neighboursFor
	groups := func(e int) string {
		switch e {
		case 7:
			return "slow"
		case 8:
			return "timeout"
		case 9:
			return "refused"
		}
		return "fast"
	}
	alone := scenario{
		name:   "neighbours-alone",
		about:  "ten endpoints on shared partitions, 40 events/s each, all fast: the baseline of neighbours",
		plan:   plan("neighbours-alone", 1, 10, 1, 10),
		events: int(400 * for40.Seconds()), rate: 400, via: "kafka",
		send: for40 + 30*time.Second, drain: time.Minute,
		groups: func(e int) string {
			if e < 7 {
				return "fast"
			}
			return "others"
		},
	}
	return scenario{
		name:   "neighbours",
		about:  "ten endpoints on shared partitions, 40 events/s each: one answers in 3 s, one never answers, one refuses connections, seven are fast",
		plan:   plan("neighbours", 1, 10, 1, 10),
		events: alone.events, rate: 400, via: "kafka",
		send: for40 + 30*time.Second, drain: 3 * time.Minute,
		endpoints: map[int]endpoint{
			7: slow3s,
			8: {faults: sink.Faults{TimeoutRate: 1, Hang: time.Minute}},
			9: {refuse: true},
		},
		groups: groups,
		alone:  &alone,
		compare: func(alone, with *report.Result) {
			a, _ := alone.Group("fast")
			w, _ := with.Group("fast")
			ratio := w.Latency.P99 / max(a.Latency.P99, 1)
			with.Actions = append(with.Actions, fmt.Sprintf(
				"fast endpoints: p50 %.0f ms and p99 %.0f ms next to the bad ones, p50 %.0f ms and p99 %.0f ms alone: p99 ratio %.2f (target <= 2)",
				w.Latency.P50, w.Latency.P99, a.Latency.P50, a.Latency.P99, ratio))
			if ratio > 2 {
				with.Problems = append(with.Problems, fmt.Sprintf("the fast endpoints' p99 is %.2fx their p99 alone, more than 2x", ratio))
			}
		},
	}
}

// api is single-event POSTs from 64 clients as fast as they are answered,
// measured twice against a bare Go HTTP server's ceiling: first with only
// ingest running (the pipeline stopped until the last answer, then
// delivering everything), then with the whole stack on the machine.
func api(events int, plan func(name string, tenants, subs, match, endpoints int) workload.Plan) scenario {
	alone := scenario{
		name:   "api-alone",
		about:  "single-event POST /v1/events from 64 concurrent clients with only ingest running; the pipeline starts after the last answer and delivers them all",
		plan:   plan("api-alone", 1, 1, 1, 1),
		events: events, via: "http", clients: 64, ingestAlone: true,
		send: 2 * time.Minute, drain: time.Minute,
	}
	return scenario{
		name:   "api",
		about:  "single-event POST /v1/events from 64 concurrent clients, as fast as they are answered, the whole pipeline running beside ingest",
		plan:   plan("api", 1, 1, 1, 1),
		events: events, via: "http", clients: 64,
		send: 2 * time.Minute, drain: time.Minute,
		alone: &alone,
		compare: func(alone, with *report.Result) {
			with.Actions = append(with.Actions, fmt.Sprintf(
				"ingest alone: %.0f events/s, %.2f of a bare Go server (target >= 0.30); beside the pipeline: %.0f events/s, %.2f",
				alone.Accepted, alone.Ratio, with.Accepted, with.Ratio))
		},
	}
}

// atScale is 1,000 endpoints, one in ten answering in 3 s, at the
// throughput scenario's load: the healthy ones' throughput is compared
// with the same run where every endpoint is fast.
func atScale(events, payload int, plan func(name string, tenants, subs, match, endpoints int) workload.Plan) scenario {
	slowOnes := map[int]endpoint{}
	for e := 9; e < 100; e += 10 {
		slowOnes[e] = slow3s
	}
	groups := func(e int) string {
		if e%10 == 9 {
			return "slow"
		}
		return "healthy"
	}
	alone := scenario{
		name:   "at-scale-alone",
		about:  "1,000 endpoints over 10 tenants, all fast, as fast as possible: the baseline of at-scale",
		plan:   plan("at-scale-alone", 10, 100, 1, 100),
		events: events, via: "kafka", send: 2 * time.Minute, drain: time.Minute,
		groups: groups,
	}
	return scenario{
		name:   "at-scale",
		about:  "1,000 endpoints over 10 tenants, one in ten answering in 3 s, as fast as possible",
		plan:   plan("at-scale", 10, 100, 1, 100),
		events: events, via: "kafka", send: 2 * time.Minute, drain: 3 * time.Minute,
		endpoints: slowOnes,
		groups:    groups,
		alone:     &alone,
		compare: func(alone, with *report.Result) {
			a, _ := alone.Group("healthy")
			w, _ := with.Group("healthy")
			ratio := w.PerSecond / max(a.PerSecond, 1)
			with.Actions = append(with.Actions, fmt.Sprintf(
				"healthy endpoints: %.0f deliveries/s next to the slow ones, %.0f/s alone: ratio %.2f (target >= 0.80)", w.PerSecond, a.PerSecond, ratio))
			if ratio < 0.8 {
				with.Problems = append(with.Problems, fmt.Sprintf("the healthy endpoints kept %.0f%% of their throughput alone, less than 80%%", 100*ratio))
			}
		},
	}
}

func scenarios(size string, payload int) ([]scenario, error) {
	sz, ok := sizes[size]
	if !ok {
		return nil, fmt.Errorf("unknown size %q: quick or full", size)
	}
	plan := func(name string, tenants, subs, match, endpoints int) workload.Plan {
		return workload.Plan{Name: name, Tenants: tenants, SubsPerTenant: subs, MatchPerEvent: match,
			Endpoints: endpoints, EventTypes: 10, PayloadBytes: payload}
	}
	failing := plan("failing", 10, 1, 1, 1)
	if sz.neighboursFor == 0 {
		return nil, fmt.Errorf("size %q has no neighbours duration", size)
	}
	// 20% failures: 20 attempts make a loss a 1e-14 event.
	failing.MaxAttempts = 20
	return []scenario{{
		name:   "throughput",
		about:  "as fast as possible, one matching subscription per event (10 tenants, one endpoint each)",
		plan:   plan("throughput", 10, 1, 1, 1),
		events: sz.events, via: "kafka", send: 2 * time.Minute, drain: time.Minute,
	}, {
		name:   "fanout",
		about:  "each event matches 10 subscriptions on 10 endpoints",
		plan:   plan("fanout", 1, 10, 10, 10),
		events: sz.fanoutEvents, via: "kafka", send: 2 * time.Minute, drain: time.Minute,
	}, {
		name:   "selective",
		about:  "10,000 subscriptions with conditions over 100 tenants, 1% of a tenant's match each event",
		plan:   plan("selective", 100, 100, 1, 1),
		events: sz.selectiveEvents, via: "kafka", send: 2 * time.Minute, drain: time.Minute,
	}, {
		name:   "latency",
		about:  "a steady 1,000 events/s through POST /v1/events (batches of 10)",
		plan:   plan("latency", 1, 1, 1, 1),
		events: int(1000 * sz.latencyFor.Seconds()), rate: 1000, via: "http",
		send: sz.latencyFor + 30*time.Second, drain: time.Minute, hops: true,
	}, {
		name:   "trickle",
		about:  "a steady 50 events/s through POST /v1/events, one event per request: latency and CPU per delivery at a low rate",
		plan:   plan("trickle", 1, 1, 1, 1),
		events: int(50 * sz.latencyFor.Seconds()), rate: 50, via: "http", single: true,
		send: sz.latencyFor + 30*time.Second, drain: time.Minute, hops: true,
	},
		api(sz.events/2, plan),
		{
			name:   "immediate",
			about:  "a steady 500 events/s through POST /v1/events?mode=immediate, one event per request: the answer less the receiver's own time",
			plan:   plan("immediate", 1, 1, 1, 1),
			events: int(500 * sz.latencyFor.Seconds()), rate: 500, via: "http", single: true, immediate: true,
			send: sz.latencyFor + 30*time.Second, drain: time.Minute,
		}, {
			name:  "idle",
			about: "nothing sent: the stack's CPU at rest, the broker's included",
			plan:  plan("idle", 1, 1, 1, 1),
			idle:  20 * time.Second,
		},
		neighbours(size, payload, plan),
		atScale(sz.events, payload, plan),
		{
			name:   "failing",
			about:  "20% of responses are 503; everything is eventually delivered",
			plan:   failing,
			events: sz.failingEvents, via: "kafka", faults: sink.Faults{ErrorRate: 0.2},
			send: 2 * time.Minute, drain: 2 * time.Minute,
		}}, nil
}
