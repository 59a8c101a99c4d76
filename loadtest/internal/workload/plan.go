// Package workload creates a scenario's subscriptions through ingest's API
// and generates its events, straight to Kafka or through POST /v1/events,
// keeping the set of delivery ids those events owe so that a run can prove
// that none was lost.
package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/pkg/signature"
)

// Plan is the shape of a scenario: tenants, their subscriptions and
// endpoints, and how many subscriptions each event matches.
//
// Subscription j of a tenant listens to bucket j/MatchPerEvent, so each
// event (which carries one bucket) matches exactly MatchPerEvent of its
// tenant's SubsPerTenant subscriptions: the selectivity is
// MatchPerEvent/SubsPerTenant.
type Plan struct {
	Name          string // prefixes tenants and sink paths
	Tenants       int
	SubsPerTenant int
	MatchPerEvent int
	Endpoints     int // sink paths per tenant; subscription j uses j % Endpoints
	EventTypes    int // events cycle through bench.t0 ... bench.t<n-1>
	PayloadBytes  int // size of an event's data
	MaxAttempts   int // of each subscription; 0 keeps the API's default
	TimeoutMS     int // of each subscription; 0 keeps the API's default
	// URL, when set, gives endpoint e of tenant t a URL of its own instead
	// of the sink's (ok false keeps the sink's): an endpoint that refuses
	// connections, say.
	URL func(t, e int) (url string, ok bool)
}

// Check reports a plan that cannot work.
func (p Plan) Check() error {
	switch {
	case p.Tenants < 1 || p.SubsPerTenant < 1 || p.MatchPerEvent < 1 || p.Endpoints < 1 || p.EventTypes < 1:
		return fmt.Errorf("plan %s: tenants, subscriptions, matches, endpoints and event types must be at least 1", p.Name)
	case p.SubsPerTenant%p.MatchPerEvent != 0:
		return fmt.Errorf("plan %s: %d subscriptions per tenant are not a multiple of %d matches per event", p.Name, p.SubsPerTenant, p.MatchPerEvent)
	}
	return nil
}

// Buckets is how many distinct condition values a tenant's subscriptions use.
func (p Plan) Buckets() int { return p.SubsPerTenant / p.MatchPerEvent }

// Subscriptions is the total number of subscriptions.
func (p Plan) Subscriptions() int { return p.Tenants * p.SubsPerTenant }

// Tenant names tenant i.
func (p Plan) Tenant(i int) string { return fmt.Sprintf("%s-%d", p.Name, i) }

// Path is the sink path of endpoint e of tenant t.
func (p Plan) Path(t, e int) string { return fmt.Sprintf("/%s/t%d/e%d", p.Name, t, e) }

// BarrierPath is where the plan's barrier subscription delivers.
func (p Plan) BarrierPath() string { return "/" + p.Name + "/barrier" }

// Keys are the API keys of the plan's tenants, by tenant.
func (p Plan) Keys() map[string]string {
	keys := make(map[string]string, p.Tenants)
	for t := range p.Tenants {
		keys[p.Tenant(t)] = "key-" + p.Tenant(t)
	}
	return keys
}

// condition is subscription j's filter: its bucket, and a second leaf every
// event passes, so that matching evaluates a real AND. Nil when every event
// matches every subscription.
func (p Plan) condition(j int) json.RawMessage {
	if p.Buckets() == 1 {
		return nil
	}
	return json.RawMessage(fmt.Sprintf(`{"all":[{"field":"data.bucket","op":"eq","value":%d},{"field":"data.region","op":"in","value":["eu","us","ap"]}]}`, j/p.MatchPerEvent))
}

// Subs are the created subscription ids, by tenant and index.
type Subs struct {
	Plan Plan
	IDs  [][]string
}

// Path is the sink path of a subscription, "" for an id not among them.
func (s *Subs) Path(id string) string {
	for t, ids := range s.IDs {
		for j, sub := range ids {
			if sub == id {
				return s.Plan.Path(t, j%s.Plan.Endpoints)
			}
		}
	}
	return ""
}

// Paths maps every subscription id to its sink path.
func (s *Subs) Paths() map[string]string {
	out := map[string]string{}
	for t, ids := range s.IDs {
		for j, sub := range ids {
			out[sub] = s.Plan.Path(t, j%s.Plan.Endpoints)
		}
	}
	return out
}

// Matching appends the subscriptions an event of tenant t in bucket b matches.
func (s *Subs) Matching(dst []string, t, b int) []string {
	k := s.Plan.MatchPerEvent
	return append(dst, s.IDs[t][b*k:(b+1)*k]...)
}

// Setup registers the plan's endpoints with sk and creates its
// subscriptions through the API, concurrency at a time, then a barrier
// subscription (see Barrier).
func Setup(ctx context.Context, api *API, sk *sink.Sink, p Plan, concurrency int) (*Subs, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	secrets := make([][]string, p.Tenants) // whsec_ per tenant and endpoint
	for t := range p.Tenants {
		for e := range p.Endpoints {
			sec, whsec, err := signature.NewSecret()
			if err != nil {
				return nil, err
			}
			sk.Endpoint(p.Path(t, e), sec)
			secrets[t] = append(secrets[t], whsec)
		}
	}
	subs := &Subs{Plan: p, IDs: make([][]string, p.Tenants)}
	for t := range subs.IDs {
		subs.IDs[t] = make([]string, p.SubsPerTenant)
	}

	type job struct{ t, j int }
	jobs := make(chan job)
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for jb := range jobs {
				url := sk.URL + p.Path(jb.t, jb.j%p.Endpoints)
				if p.URL != nil {
					if own, ok := p.URL(jb.t, jb.j%p.Endpoints); ok {
						url = own
					}
				}
				body := map[string]any{
					"name":        fmt.Sprintf("%s %d", p.Name, jb.j),
					"url":         url,
					"event_types": []string{"bench.*"},
					"secret":      secrets[jb.t][jb.j%p.Endpoints],
				}
				if c := p.condition(jb.j); c != nil {
					body["condition"] = c
				}
				if p.MaxAttempts > 0 {
					body["max_attempts"] = p.MaxAttempts
				}
				if p.TimeoutMS > 0 {
					body["timeout_ms"] = p.TimeoutMS
				}
				var out struct{ ID string }
				if err := api.Post(ctx, p.Tenant(jb.t), "/v1/subscriptions", body, &out); err != nil {
					errs <- fmt.Errorf("create subscription %d of %s: %w", jb.j, p.Tenant(jb.t), err)
					return
				}
				subs.IDs[jb.t][jb.j] = out.ID
			}
		})
	}
	var err error
feed:
	for t := range p.Tenants {
		for j := range p.SubsPerTenant {
			select {
			case jobs <- job{t, j}:
			case err = <-errs:
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return subs, createBarrier(ctx, api, sk, p)
}

// barrierType is the event type only barrier subscriptions listen to.
const barrierType = "barrier.ping"

func createBarrier(ctx context.Context, api *API, sk *sink.Sink, p Plan) error {
	sec, whsec, err := signature.NewSecret()
	if err != nil {
		return err
	}
	sk.Barrier(p.BarrierPath(), sec)
	return api.Post(ctx, p.Tenant(0), "/v1/subscriptions", map[string]any{
		"url": sk.URL + p.BarrierPath(), "event_types": []string{barrierType}, "secret": whsec,
	}, nil)
}

// Barrier waits until a ping sent after every subscription was created
// comes out of the sink, so that the matcher has read the subscriptions
// before the load starts: the barrier subscription was written last, and
// on one broker a fetch that returns it also returns everything written
// before it. It pings every 500 ms until one arrives or timeout passes.
func Barrier(ctx context.Context, api *API, sk *sink.Sink, p Plan, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ev := map[string]any{"type": barrierType, "data": map[string]any{"plan": p.Name}}
		if err := api.Post(ctx, p.Tenant(0), "/v1/events", ev, nil); err != nil {
			return fmt.Errorf("barrier ping: %w", err)
		}
		for range 5 {
			if sk.Pings(p.BarrierPath()) > 0 {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return fmt.Errorf("no barrier ping of %s arrived within %s: is the pipeline running?", p.Name, timeout)
}
