package main

import (
	"fmt"
	"time"

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
}

// sizes scale the scenarios: quick runs them all in a few minutes on a
// laptop, full is the benchmark of record.
var sizes = map[string]struct {
	events, fanoutEvents, selectiveEvents, failingEvents int
	latencyFor                                           time.Duration
}{
	"quick": {events: 20000, fanoutEvents: 2000, selectiveEvents: 10000, failingEvents: 5000, latencyFor: 15 * time.Second},
	"full":  {events: 200000, fanoutEvents: 20000, selectiveEvents: 100000, failingEvents: 50000, latencyFor: 60 * time.Second},
}

// scenarioNames lists the scenarios in the order they run: the failing one
// last, so that its retries cannot disturb another's numbers.
var scenarioNames = []string{"throughput", "fanout", "selective", "latency", "failing"}

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
		send: sz.latencyFor + 30*time.Second, drain: time.Minute,
	}, {
		name:   "failing",
		about:  "20% of responses are 503; everything is eventually delivered",
		plan:   failing,
		events: sz.failingEvents, via: "kafka", faults: sink.Faults{ErrorRate: 0.2},
		send: 2 * time.Minute, drain: 2 * time.Minute,
	}}, nil
}
