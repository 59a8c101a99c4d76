package dispatch_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/pkg/dlq"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/routeurl"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/testreceiver"
	"github.com/hookline/hookline/services/sender/internal/dispatch"
)

// TestRetryAndReplayGoToTheCurrentURL: the owner fixes a failing
// endpoint's URL (or route); the retry of a failed delivery and the replay
// of a dead letter go to the URL as it is now, not the one they were
// matched with.
func TestRetryAndReplayGoToTheCurrentURL(t *testing.T) {
	e := newEnv(t)
	// /old fails: 503 (retryable), or 400 (permanent) for the replay case.
	rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/old") && strings.Contains(r.Header.Get(signature.HeaderID), "dead"):
			w.WriteHeader(http.StatusBadRequest)
		case strings.HasPrefix(r.URL.Path, "/old"):
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	region := `{"field":"data.region","op":"eq","value":"eu"}`
	sub, _ := e.subscribe(rcv.URL+"/old/main", []time.Duration{0}, func(s *record.Subscription) {
		s.AllowedHosts = []string{"127.0.0.1"}
		s.Routes = []record.Route{{Condition: region, URL: rcv.URL + "/old/eu/{{data.shop}}"}}
	})
	matched := func(id string, route bool) record.Delivery { // as the matcher writes them
		d := e.delivery(sub, `{"n":1}`)
		d.ID, d.URL, d.ResolveURL = "dlv_"+id+"_"+randomID(), sub.URL, true
		if route {
			d.URL, d.Route = rcv.URL+"/old/eu/acme", &record.RouteRef{Condition: routeurl.ConditionID(region), Values: map[string]string{"data.shop": "acme"}}
		}
		return d
	}
	retried, retriedRoute, dead := matched("retry", false), matched("retryroute", true), matched("dead", false)
	e.publish(retried, retriedRoute, dead)
	running := e.run(e.sender(rcv), "sender")
	running.waitHandled(t, 3, 30*time.Second)

	tiers := e.retries()
	if len(tiers[retried.ID]) != 1 || len(tiers[retriedRoute.ID]) != 1 || len(e.deliveries(e.kafka.Topics.DLQ)[dead.ID]) != 1 {
		t.Fatalf("want two retries and a dead letter after the failures at /old")
	}

	// The owner moves the URL and the route (as a PATCH writes them).
	fixed := *sub
	fixed.URL = rcv.URL + "/new/main"
	fixed.Routes = []record.Route{{Condition: region, URL: rcv.URL + "/new/eu/{{data.shop}}"}}
	fixed.UpdatedAt = time.Now().UTC()
	e.putSubscription(&fixed)

	// What the retry service does when they are due: the records, as they
	// are, back on the deliveries topic; and a replay of the dead letter.
	var again []record.Delivery
	for _, id := range []string{retried.ID, retriedRoute.ID} {
		again = append(again, tiers[id][0])
	}
	e.publish(again...)
	replayed, err := dlq.Replay(e.ctx(), e.kafka, e.codecs, e.producer, dlq.Filter{Tenant: sub.Tenant, DeliveryIDs: []string{dead.ID}})
	if err != nil || len(replayed) != 1 {
		t.Fatalf("replay: %v, %v", replayed, err)
	}
	running.waitHandled(t, 3+2+1, 30*time.Second)

	want := map[string]string{retried.ID: "/new/main", retriedRoute.ID: "/new/eu/acme", dead.ID: "/new/main"}
	for _, r := range rcv.Requests() {
		id := r.Header.Get(signature.HeaderID)
		if path, ok := want[id]; ok && r.Path == path {
			delete(want, id)
		}
	}
	if len(want) != 0 {
		t.Errorf("not sent to the current URL: %v", want)
	}
	for _, id := range []string{retried.ID, retriedRoute.ID, dead.ID} {
		as := e.attempts()[id]
		if last := as[len(as)-1]; last.Outcome != record.OutcomeDelivered || !strings.Contains(last.URL, "/new/") {
			t.Errorf("%s: last attempt %+v, want delivered to /new/", id, last)
		}
	}
}

// TestParkedGoesToTheCurrentURL: deliveries parked while their endpoint
// was saturated come back after the owner moved its URL, and go to the URL
// as it is now: a parked delivery keeps its target, like a retry, not the
// URL it was matched with.
func TestParkedGoesToTheCurrentURL(t *testing.T) {
	e := newEnv(t)
	g := newGate(t, "/old")
	rcv := testreceiver.New(t, g.respond)
	sub, _ := e.subscribe(rcv.URL+"/old", []time.Duration{0}, func(s *record.Subscription) { s.MaxInFlight = 1 })
	d := e.sender(rcv)
	d.BacklogWait = 100 * time.Millisecond
	run := e.run(d, "sender")
	ds := make([]record.Delivery, 6)
	for i := range ds {
		ds[i] = e.delivery(sub, fmt.Sprintf(`{"n":%d}`, i))
		ds[i].ResolveURL = true // as the matcher writes them
	}
	e.toPartition0(ds...)
	waitUntil(t, "the backlog parked", func() bool {
		parked, _ := e.parked()
		return len(parked) >= 3
	})

	fixed := *sub
	fixed.URL = rcv.URL + "/new"
	fixed.UpdatedAt = time.Now().UTC()
	e.putSubscription(&fixed)
	g.release()
	e.releaseParked(rcv, len(ds))
	parked, all := e.parked()
	run.waitHandled(t, len(ds)+len(all), 30*time.Second)

	reqs := byID(rcv.Requests())
	log := e.attempts()
	for _, p := range parked {
		if got := reqs[p.ID]; len(got) != 1 || got[0].Path != "/new" {
			t.Errorf("parked %s: requests %+v, want one to /new", p.ID, got)
		}
		if as := log[p.ID]; len(as) != 1 || as[0].Outcome != record.OutcomeDelivered || !strings.HasSuffix(as[0].URL, "/new") {
			t.Errorf("parked %s: attempts %+v, want one delivered to /new", p.ID, as)
		}
	}
}

// TestUnresolvableTargetIsRefused: when the route a delivery was matched
// to is gone (other routes remain) or its URL can no longer be built, the
// attempt fails at once as permanent, with the reason, and nothing is sent.
func TestUnresolvableTargetIsRefused(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) {
		s.AllowedHosts = []string{"127.0.0.1"}
		s.Routes = []record.Route{
			{Condition: `{"field":"data.region","op":"eq","value":"us"}`, URL: rcv.URL + "/us"},
			{Condition: `{"field":"data.region","op":"eq","value":"eu"}`, URL: rcv.URL + "/eu/{{data.country}}"},
		}
	})
	gone, unfillable := e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`)
	gone.ResolveURL, gone.Route = true, &record.RouteRef{Condition: routeurl.ConditionID(`{"field":"data.region","op":"eq","value":"apac"}`)}
	unfillable.ResolveURL, unfillable.Route = true, &record.RouteRef{Condition: routeurl.ConditionID(sub.Routes[1].Condition), Values: map[string]string{"data.shop": "x"}}
	e.publish(gone, unfillable)
	e.run(e.sender(rcv), "sender").waitHandled(t, 2, 30*time.Second)

	if n := len(rcv.Requests()); n != 0 {
		t.Errorf("receiver got %d requests, want none", n)
	}
	dead := e.deliveries(e.kafka.Topics.DLQ)
	for d, reason := range map[string]string{gone.ID: "no longer on the subscription", unfillable.ID: "needs data.country"} {
		if got := dead[d]; len(got) != 1 || !strings.Contains(got[0].LastError, reason) {
			t.Errorf("%s: dead letters %+v, want one saying %q", d, got, reason)
		}
	}
}

// TestRefusedTargetsLeaveTheLimitAlone: attempts refused before any
// request (their route is gone) are dead-lettered, and the lane's adaptive
// limit learns nothing from them: it does not grow as if the endpoint
// had answered them at once.
func TestRefusedTargetsLeaveTheLimitAlone(t *testing.T) {
	e := newEnv(t)
	g := newGate(t, "/held")
	rcv := testreceiver.New(t, g.respond)
	sub, _ := e.subscribe(rcv.URL+"/held", []time.Duration{0}, func(s *record.Subscription) {
		s.Routes = []record.Route{{Condition: `{"field":"data.region","op":"eq","value":"us"}`, URL: rcv.URL + "/us"}}
	})
	gone := routeurl.ConditionID(`{"field":"data.region","op":"eq","value":"apac"}`)
	var ds []record.Delivery
	for i := range 20 {
		d := e.delivery(sub, fmt.Sprintf(`{"n":%d}`, i))
		d.ResolveURL, d.Route = true, &record.RouteRef{Condition: gone}
		ds = append(ds, d)
	}
	held := e.delivery(sub, `{"held":true}`)
	held.ResolveURL = true // to the subscription's url, which holds it
	reg := prometheus.NewRegistry()
	d := e.sender(rcv)
	d.Metrics = dispatch.NewMetrics(reg, 10)
	e.toPartition0(append(ds, held)...)
	running := e.run(d, "sender")
	running.waitHandled(t, len(ds), 30*time.Second)
	waitUntil(t, "the held request in flight", func() bool { return g.holding() == 1 })

	dead := e.deliveries(e.kafka.Topics.DLQ)
	for _, dl := range ds {
		if got := dead[dl.ID]; len(got) != 1 || !strings.Contains(got[0].LastError, "no longer on the subscription") {
			t.Errorf("%s: dead letters %+v, want one refused", dl.ID, got)
		}
	}
	limit := -1.0
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "hookline_sender_endpoint_limit" && len(f.Metric) == 1 {
			limit = f.Metric[0].GetGauge().GetValue()
		}
	}
	if limit != float64(d.PerEndpoint) {
		t.Errorf("the lane's limit is %v after %d refused attempts, want its start %d", limit, len(ds), d.PerEndpoint)
	}
	g.release()
	running.waitHandled(t, len(ds)+1, 30*time.Second)
}

// TestRouteOverHTTPToAnAllowlistedHost: a route URL filled from the event
// follows the rules of url: http is allowed to a host the operator
// allowlists (the local demo's 127.0.0.1), refused to any other.
func TestRouteOverHTTPToAnAllowlistedHost(t *testing.T) {
	e := newEnv(t)
	got := make(chan string, 4)
	plain := newPlainReceiver(t, func(r *http.Request) { got <- r.URL.Path })
	cond := `{"field":"data.region","op":"eq","value":"eu"}`
	sub, _ := e.subscribe("https://main.example", []time.Duration{0}, func(s *record.Subscription) {
		s.AllowedHosts = []string{"127.0.0.1", "*.hooks.example"}
		s.Routes = []record.Route{{Condition: cond, URL: plain + "/{{data.shop}}"}}
	})
	d := e.delivery(sub, `{"n":1}`)
	d.ResolveURL, d.Route = true, &record.RouteRef{Condition: routeurl.ConditionID(cond), Values: map[string]string{"data.shop": "acme"}}
	e.publish(d)
	rcv := testreceiver.New(t, nil)
	running := e.run(e.sender(rcv), "sender")
	running.waitHandled(t, 1, 30*time.Second)
	select {
	case path := <-got:
		if path != "/acme" {
			t.Errorf("path %q, want /acme", path)
		}
	default:
		t.Fatalf("nothing arrived over http; attempts %+v", e.attempts()[d.ID])
	}

	// Another host over http is refused before any request.
	other := *sub
	other.Routes = []record.Route{{Condition: cond, URL: "http://{{data.shop}}.hooks.example/"}}
	other.UpdatedAt = time.Now().UTC()
	e.putSubscription(&other)
	d2 := d
	d2.ID = "dlv_" + randomID()
	e.publish(d2)
	running.waitHandled(t, 2, 30*time.Second)
	if as := e.attempts()[d2.ID]; len(as) != 1 || as[0].Outcome != record.OutcomeDeadLettered || !strings.Contains(as[0].Error, "uses http") {
		t.Errorf("attempts %+v, want one dead-lettered: http refused", as)
	}
}

// newPlainReceiver serves plain http on 127.0.0.1, telling seen of every
// request, and returns its base URL.
func newPlainReceiver(t *testing.T, seen func(*http.Request)) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen(r)
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
