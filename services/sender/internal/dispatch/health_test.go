package dispatch_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// TestEndpointHealthEvents: consecutive failures raise hookline.endpoint
// events at the thresholds, for the subscription's tenant, with the
// health.EndpointAlert payload, and failing past the disable window
// disables the subscription. Each delivery given up after its attempt is
// hookline.delivery.exhausted; the one dead-lettered unsent behind the
// disable is not.
func TestEndpointHealthEvents(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.MaxAttempts = 1; s.Ordered = true })
	s := e.sender(rcv)
	s.Health = health.New(e.rdb, e.keys+"health:", 3*time.Second)
	r := e.run(s, "sender")

	start := time.Now().Truncate(time.Millisecond)
	var first []record.Delivery
	for i := range health.CriticalAfter {
		first = append(first, e.delivery(sub, `{"n":`+string(rune('0'+i%10))+`}`))
	}
	e.publish(first...)
	r.waitHandled(t, len(first), 60*time.Second)
	time.Sleep(3 * time.Second) // past the disable window, still failing
	last, after := e.delivery(sub, `{"n":"last"}`), e.delivery(sub, `{"n":"after"}`)
	e.publish(last, after)
	r.waitHandled(t, len(first)+2, 30*time.Second)

	// The delivery behind the one that disabled it is dead-lettered unsent,
	// saying who disabled the subscription and why (not a 410).
	dead := e.deliveries(e.kafka.Topics.DLQ)[after.ID]
	if len(dead) != 1 || dead[0].Attempt != 0 || !strings.Contains(dead[0].LastError, "subscription disabled: disabled by Hookline") ||
		!strings.Contains(dead[0].LastError, "disable window") {
		t.Errorf("dead letters of the delivery after disabling: %+v, want one unsent with the health window reason", dead)
	}

	events := e.hooklineEvents()
	var got []string
	for _, ev := range events {
		if ev.Tenant != sub.Tenant || ev.Subject != sub.ID || ev.Source != "hookline" {
			t.Errorf("event %+v is not Hookline's about %s of %s", ev, sub.ID, sub.Tenant)
		}
		if ev.Type == health.Exhausted {
			continue
		}
		got = append(got, ev.Type)
		var a health.EndpointAlert
		if err := json.Unmarshal([]byte(ev.Data), &a); err != nil {
			t.Fatalf("%s data %s: %v", ev.Type, ev.Data, err)
		}
		want := map[string]int64{health.Failing: health.FailingAfter, health.Critical: health.CriticalAfter, health.Disabled: health.CriticalAfter + 1}[ev.Type]
		if a.SubscriptionID != sub.ID || a.URL != sub.URL || a.ConsecutiveFailures != want || a.LastStatus != 500 ||
			a.LastError == "" || a.FailingSince.Before(start) || a.RecoveredAt != nil {
			t.Errorf("%s data %+v, want %d failures of %s since the first, last 500", ev.Type, a, want, sub.ID)
		}
	}
	if strings.Join(got, ",") != strings.Join([]string{health.Failing, health.Critical, health.Disabled}, ",") {
		t.Fatalf("endpoint events %v, want failing, critical, disabled in order", got)
	}
	if n := len(exhaustedOf(t, events)); n != len(first)+1 {
		t.Errorf("%d deliveries given up, want %d: every attempted one, not the one dead-lettered unsent", n, len(first)+1)
	}
	if _, ok := exhaustedOf(t, events)[after.ID]; ok {
		t.Error("the delivery dead-lettered unsent behind the disable was reported as exhausted")
	}
	if s := lastState(t, e, sub.ID); s.Enabled {
		t.Error("the subscription was not disabled after failing past the window")
	} else if !strings.HasPrefix(s.DisabledReason, "disabled by Hookline: the endpoint has failed without a success since ") {
		t.Errorf("disabled_reason %q does not say who and why", s.DisabledReason)
	}
}

// TestRecoveredOncePerStreak: the first success after a streak that
// reached failing raises one hookline.endpoint.recovered, saying how long
// the streak was, since when and how it last failed; a later streak too
// short to alert ends without one. An ordered lane's failure right after
// the success starts a new streak rather than joining the ended one.
func TestRecoveredOncePerStreak(t *testing.T) {
	e := newEnv(t)
	// Requests 1-6 fail, 7 succeeds, 8-10 fail, 11 succeeds.
	var n atomic.Int64
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) {
		switch i := n.Add(1); {
		case i <= 6 || (i >= 8 && i <= 10):
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.MaxAttempts = 1; s.Ordered = true })
	s := e.sender(rcv)
	s.Health = health.New(e.rdb, e.keys+"health:", time.Hour)
	var ds []record.Delivery
	for i := range 11 {
		ds = append(ds, e.delivery(sub, `{"n":`+strconv.Itoa(i)+`}`))
	}
	e.publish(ds...)
	e.run(s, "sender").waitHandled(t, len(ds), 60*time.Second)

	reqs := rcv.Requests()
	var types []string
	var recovered []health.EndpointAlert
	for _, ev := range e.hooklineEvents() {
		if ev.Type == health.Exhausted {
			continue
		}
		types = append(types, ev.Type)
		if ev.Type == health.Recovered {
			var a health.EndpointAlert
			if err := json.Unmarshal([]byte(ev.Data), &a); err != nil {
				t.Fatal(err)
			}
			recovered = append(recovered, a)
		}
	}
	if strings.Join(types, ",") != health.Failing+","+health.Recovered || len(recovered) != 1 {
		t.Fatalf("endpoint events %v, want one failing then one recovered", types)
	}
	a := recovered[0]
	if a.SubscriptionID != sub.ID || a.ConsecutiveFailures != 6 || a.LastStatus != http.StatusServiceUnavailable ||
		!strings.Contains(a.LastError, "503") || a.RecoveredAt == nil {
		t.Fatalf("recovered data %+v, want the 6 failures ending with a 503", a)
	}
	if len(reqs) == 11 {
		// The streak started when the first request failed, before the
		// second was made; the recovering request started before the
		// receiver saw it.
		if a.FailingSince.Before(reqs[0].At.Truncate(time.Millisecond)) || !a.FailingSince.Before(reqs[1].At) ||
			a.RecoveredAt.Before(reqs[5].At) || a.RecoveredAt.After(reqs[6].At) {
			t.Errorf("failing since %v, recovered at %v; requests 1, 2, 6 and 7 came at %v, %v, %v, %v",
				a.FailingSince, a.RecoveredAt, reqs[0].At, reqs[1].At, reqs[5].At, reqs[6].At)
		}
	}
	if st, _ := s.Health.Get(context.Background(), sub.ID); st.Failures != 0 {
		t.Errorf("streak after the last success: %+v, want none", st)
	}
}

// TestRecoveredOnceAcrossSenders: a streak counted before (by another
// sender instance, or this partition's previous owner) ends at the first
// success of a new lane, and when two senders deliver for the endpoint at
// once only one reports the recovery.
func TestRecoveredOnceAcrossSenders(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0})
	tr := health.New(e.rdb, e.keys+"health:", time.Hour)
	since := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := range health.FailingAfter + 2 {
		if _, err := tr.Failure(context.Background(), sub.ID, health.Failed{At: since.Add(time.Duration(i) * time.Second), Status: 502, Error: "502 Bad Gateway"}); err != nil {
			t.Fatal(err)
		}
	}
	e.publish(e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`))

	// Two senders each own a copy of the partition, as during a rebalance
	// that hands it over while the old owner is still sending.
	var wg sync.WaitGroup
	for range 2 {
		parts := e.partitions()
		if len(parts) != 1 {
			t.Fatalf("%d partitions hold the deliveries, want one", len(parts))
		}
		s := e.sender(rcv)
		s.Health = health.New(e.rdb, e.keys+"health:", time.Hour)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runOn(e.ctx(), s, parts[0], 1); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	recovered := onlyRecovered(t, e)
	if len(recovered) != 1 {
		t.Fatalf("%d recovered events, want 1", len(recovered))
	}
	if a := recovered[0]; a.ConsecutiveFailures != health.FailingAfter+2 || !a.FailingSince.Equal(since) || a.LastStatus != 502 || a.LastError != "502 Bad Gateway" {
		t.Errorf("recovered data %+v, want the streak the other sender counted", a)
	}
}

// onlyRecovered returns the hookline.endpoint.recovered events written,
// failing the test on any other Hookline event.
func onlyRecovered(t *testing.T, e *env) []health.EndpointAlert {
	t.Helper()
	var recovered []health.EndpointAlert
	for _, ev := range e.hooklineEvents() {
		if ev.Type != health.Recovered {
			t.Errorf("unexpected %s event", ev.Type)
			continue
		}
		var a health.EndpointAlert
		if err := json.Unmarshal([]byte(ev.Data), &a); err != nil {
			t.Fatal(err)
		}
		recovered = append(recovered, a)
	}
	return recovered
}

// TestExhaustedWhenGivenUp: hookline.delivery.exhausted follows each
// delivery dead-lettered after an attempt (its last, or a permanent
// failure), with the health.DeliveryExhausted payload; not a delivery
// that may still be retried, nor one dead-lettered unsent (subscription
// disabled), nor a given-up delivery of an exhausted event itself.
func TestExhaustedWhenGivenUp(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, statusHandler)
	fails, _ := e.subscribe(rcv.URL+"/status/503", []time.Duration{0}, func(s *record.Subscription) { s.MaxAttempts = 3 })
	refuses, _ := e.subscribe(rcv.URL+"/status/400", []time.Duration{0})
	off, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Enabled, s.DisabledReason = false, "paused by its owner" })

	lastTry := e.delivery(fails, `{"n":1}`)
	lastTry.Attempt = 2 // two attempts failed before: this is the last
	retried := e.delivery(fails, `{"n":2}`)
	permanent := e.delivery(refuses, `{"n":3}`)
	ofExhausted := e.delivery(refuses, `{"n":4}`)
	ofExhausted.EventType = health.Exhausted
	unsent := e.delivery(off, `{"n":5}`)
	ds := []record.Delivery{lastTry, permanent, retried, ofExhausted, unsent}
	e.publish(ds...)
	s := e.sender(rcv)
	s.Health = health.New(e.rdb, e.keys+"health:", time.Hour)
	e.run(s, "sender").waitHandled(t, len(ds), 30*time.Second)

	got := exhaustedOf(t, e.hooklineEvents())
	tests := []struct {
		name     string
		d        record.Delivery
		sub      *record.Subscription
		want     bool
		attempts int
		status   int
	}{
		{"the last attempt failed", lastTry, fails, true, 3, 503},
		{"a permanent failure", permanent, refuses, true, 1, 400},
		{"attempts remain", retried, fails, false, 0, 0},
		{"a delivery of an exhausted event", ofExhausted, refuses, false, 0, 0},
		{"dead-lettered unsent", unsent, off, false, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, ok := got[tc.d.ID]
			if ok != tc.want {
				t.Fatalf("exhausted event: %v, want %v (%+v)", ok, tc.want, x)
			}
			if !ok {
				return
			}
			if x.EventID != tc.d.EventID || x.EventType != tc.d.EventType || x.SubscriptionID != tc.sub.ID || x.URL != tc.sub.URL ||
				x.Attempts != tc.attempts || x.LastStatus != tc.status || !strings.Contains(x.LastError, strconv.Itoa(tc.status)) ||
				x.DeadLetteredAt.IsZero() {
				t.Errorf("exhausted data %+v, want %d attempts ending with %d", x, tc.attempts, tc.status)
			}
		})
	}
	if len(got) != 2 {
		t.Errorf("%d exhausted events, want 2", len(got))
	}

	// A second group reads the deliveries again, as after a consumer reset
	// or a partition run again after a failed write: the same attempts
	// give each given-up delivery up again, with the same event id, which
	// notify and the matcher recognise as the same occurrence.
	first := map[string]string{}
	for _, ev := range e.hooklineEvents() {
		var x health.DeliveryExhausted
		_ = json.Unmarshal([]byte(ev.Data), &x)
		first[x.DeliveryID] = ev.ID
	}
	e.run(s, "again").waitHandled(t, len(ds), 30*time.Second)
	ids := map[string][]string{}
	for _, ev := range e.hooklineEvents() {
		var x health.DeliveryExhausted
		if err := json.Unmarshal([]byte(ev.Data), &x); err != nil {
			t.Fatal(err)
		}
		ids[x.DeliveryID] = append(ids[x.DeliveryID], ev.ID)
	}
	for _, d := range []record.Delivery{lastTry, permanent} {
		if got := ids[d.ID]; len(got) != 2 || got[0] != first[d.ID] || got[1] != first[d.ID] {
			t.Errorf("exhausted events of %s after a second reading: ids %v, want %s twice", d.ID, got, first[d.ID])
		}
	}
}

// hooklineEvents decodes what the sender wrote to hookline.events, in
// order (each test's events are about one subscription, one partition).
func (e *env) hooklineEvents() []record.Event {
	e.t.Helper()
	var out []record.Event
	for _, rec := range e.read(e.kafka.Topics.Events) {
		var ev record.Event
		if err := e.codecs.Event.Unmarshal(rec.Value, &ev); err != nil {
			e.t.Fatal(err)
		}
		if string(rec.Key) != ev.Subject {
			e.t.Errorf("event %s keyed %q, want its subject %q", ev.ID, rec.Key, ev.Subject)
		}
		out = append(out, ev)
	}
	return out
}

// exhaustedOf decodes the hookline.delivery.exhausted events, by delivery
// id; a delivery reported twice fails the test.
func exhaustedOf(t *testing.T, events []record.Event) map[string]health.DeliveryExhausted {
	t.Helper()
	out := map[string]health.DeliveryExhausted{}
	for _, ev := range events {
		if ev.Type != health.Exhausted {
			continue
		}
		var x health.DeliveryExhausted
		if err := json.Unmarshal([]byte(ev.Data), &x); err != nil {
			t.Fatalf("exhausted data %s: %v", ev.Data, err)
		}
		if _, dup := out[x.DeliveryID]; dup {
			t.Errorf("delivery %s reported exhausted twice", x.DeliveryID)
		}
		if ev.Subject != x.SubscriptionID {
			t.Errorf("exhausted event about %s has subject %s", x.SubscriptionID, ev.Subject)
		}
		out[x.DeliveryID] = x
	}
	return out
}
