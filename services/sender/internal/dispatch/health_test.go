package dispatch_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/services/sender/internal/testreceiver"
)

// TestEndpointHealthEvents: consecutive failures raise hookline.endpoint
// events at the thresholds, for the subscription's tenant, and failing past
// the disable window disables the subscription.
func TestEndpointHealthEvents(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.MaxAttempts = 1; s.Ordered = true })
	s := e.sender(rcv)
	s.Health = health.New(e.rdb, 3*time.Second)
	r := e.run(s, "sender")

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

	var got []string
	for _, rec := range e.read(e.kafka.Topics.Events) {
		var ev record.Event
		if err := e.codecs.Event.Unmarshal(rec.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Tenant != sub.Tenant || ev.Subject != sub.ID {
			t.Errorf("event %+v is not about %s of %s", ev, sub.ID, sub.Tenant)
		}
		got = append(got, ev.Type)
	}
	want := []string{health.Failing, health.Critical, health.Disabled}
	if len(got) != len(want) {
		t.Fatalf("endpoint events %v, want %v", got, want)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("no %s event in %v", w, got)
		}
	}
	disabled := false
	for _, rec := range e.read(e.kafka.Topics.Subscriptions) {
		var s record.Subscription
		if err := e.codecs.Subscription.Unmarshal(rec.Value, &s); err == nil && s.ID == sub.ID && !s.Enabled {
			disabled = true
			if !strings.HasPrefix(s.DisabledReason, "disabled by Hookline: the endpoint has failed without a success since ") {
				t.Errorf("disabled_reason %q does not say who and why", s.DisabledReason)
			}
		}
	}
	if !disabled {
		t.Error("the subscription was not disabled after failing past the window")
	}
}
