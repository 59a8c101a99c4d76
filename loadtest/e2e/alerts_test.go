package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestAlertsReachOwnersAndOperators is issue 16's story with every
// service running, on the real broker, Redis and SMTP server (mailpit): a
// receiver fails 25 times, then recovers. Its subscription's alert_emails
// get exactly one "failing" email after the 5th failure, one "critical"
// after the 20th and one "recovered" after the first success; an operator
// subscription of the tenant on hookline.endpoint.* gets the matching
// events. Beside it, a subscription whose endpoint refuses three
// deliveries (400, permanent) gets one digest of the deliveries given up.
func TestAlertsReachOwnersAndOperators(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	const failures = 25
	rc := newReceiver(t)
	var (
		mu        sync.Mutex
		flaky     []time.Time // arrival of each request to /flaky
		flakyIDs  []string
		opsBodies [][]byte
	)
	rc.respond = func(r *http.Request, body []byte, _ int) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/flaky":
			flaky = append(flaky, time.Now())
			flakyIDs = append(flakyIDs, r.Header.Get(signature.HeaderID))
			if len(flaky) <= failures {
				return http.StatusServiceUnavailable, nil
			}
		case "/refuses":
			return http.StatusBadRequest, nil
		case "/ops":
			opsBodies = append(opsBodies, body)
		}
		return http.StatusNoContent, nil
	}
	// Every retry after 500 ms: the 27 requests take about 8 s.
	s := startStack(t, rc.Cert.PEM, "500ms", withAlerts(mp))

	owners := []string{testinfra.Address("owner"), testinfra.Address("oncall")}
	billing := testinfra.Address("billing")
	var ops, orders, invoices created
	for _, c := range []struct {
		body map[string]any
		out  *created
	}{
		{map[string]any{"name": "Operations", "url": rc.URL + "/ops", "event_types": []string{"hookline.endpoint.*"}}, &ops},
		{map[string]any{"name": "Orders", "url": rc.URL + "/flaky", "event_types": []string{"order.*"}, "max_attempts": 20, "alert_emails": owners}, &orders},
		{map[string]any{"name": "Billing", "url": rc.URL + "/refuses", "event_types": []string{"invoice.*"}, "alert_emails": []string{billing}}, &invoices},
	} {
		if code := s.postJSON("/v1/subscriptions", c.body, c.out); code != http.StatusCreated || c.out.ID == "" {
			t.Fatalf("create subscription %v: %d", c.body["name"], code)
		}
	}
	// Two orders: max_attempts is at most 20, so the 25 failures are
	// shared by two deliveries retried side by side, each delivered once
	// the endpoint recovers.
	var orderIDs []string
	for _, o := range []string{"ord_1", "ord_2"} {
		var ev created
		if code := s.postJSON("/v1/events", map[string]any{"type": "order.created", "subject": o, "data": map[string]any{"id": o}}, &ev); code != http.StatusAccepted {
			t.Fatalf("post an order event: %d", code)
		}
		orderIDs = append(orderIDs, ev.ID)
	}
	var given []string
	for i := range 3 {
		var ev created
		if code := s.postJSON("/v1/events", map[string]any{"type": "invoice.created", "data": map[string]any{"n": i}}, &ev); code != http.StatusAccepted {
			t.Fatalf("post an invoice event: %d", code)
		}
		given = append(given, ev.ID)
	}

	// The owners' three emails, each to one owner alone.
	wantSubjects := []string{
		"[Hookline] Webhook endpoint failing: Orders (5 failures in a row)",
		"[Hookline] CRITICAL: webhook endpoint still failing: Orders (20 failures in a row)",
		"[Hookline] Webhook endpoint recovered: Orders",
	}
	for _, owner := range owners {
		mp.WaitTo(t, owner, len(wantSubjects), 120*time.Second)
	}
	mp.WaitTo(t, billing, 1, 60*time.Second)
	rc.waitFor(t, 30*time.Second, "the operator's three endpoint events", func(_ []*http.Request, _ [][]byte) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(opsBodies) >= 3
	})
	time.Sleep(3 * time.Second) // a second email or event would come by now
	mu.Lock()
	arrived, ids, opsGot := slices.Clone(flaky), slices.Clone(flakyIDs), slices.Clone(opsBodies)
	mu.Unlock()

	slices.Sort(ids)
	if len(arrived) != failures+2 || len(slices.Compact(ids)) != 2 {
		t.Fatalf("the flaky endpoint got %d requests of deliveries %v, want %d failures, then each of the two delivered", len(arrived), ids, failures)
	}
	// after[i] is the moment the email of wantSubjects[i] may not precede:
	// the request that failed for the 5th time, the 20th, the success.
	after := []time.Time{arrived[health.FailingAfter-1], arrived[health.CriticalAfter-1], arrived[failures]}
	for _, owner := range owners {
		got := mp.To(t, owner)
		if len(got) != len(wantSubjects) {
			t.Errorf("%d emails to %s, want %d", len(got), owner, len(wantSubjects))
			continue
		}
		slices.SortFunc(got, func(a, b testinfra.MailSummary) int { return a.Created.Compare(b.Created) })
		for i, m := range got {
			if m.Subject != wantSubjects[i] || len(m.To) != 1 || m.To[0].Address != owner || len(m.Cc)+len(m.Bcc) != 0 {
				t.Errorf("email %d to %s: %q to %v, want %q to it alone", i+1, owner, m.Subject, m.To, wantSubjects[i])
			}
			if m.Created.Before(after[i].Truncate(time.Millisecond)) {
				t.Errorf("%q came at %v, before the attempt it reports (%v)", m.Subject, m.Created, after[i])
			}
		}
		if msg := mp.Message(t, got[2].ID); !strings.Contains(msg.Text, "after 25 failures in a row") ||
			!strings.Contains(msg.Text, s.API+"/console/#/subscriptions/"+orders.ID+"/logs") {
			t.Errorf("the recovered email says:\n%s", msg.Text)
		}
	}

	// The operator's endpoint events, in order, about the orders endpoint.
	wantEvents := []struct {
		typ      string
		failures int64
	}{{health.Failing, 5}, {health.Critical, 20}, {health.Recovered, failures}}
	if len(opsGot) != len(wantEvents) {
		t.Fatalf("the operator got %d events, want %d", len(opsGot), len(wantEvents))
	}
	for i, body := range opsGot {
		var ev struct {
			ID, Type, Subject string
			Data              health.EndpointAlert
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("operator event %s: %v", body, err)
		}
		w := wantEvents[i]
		a := ev.Data
		if ev.Type != w.typ || ev.Subject != orders.ID || a.SubscriptionID != orders.ID || a.URL != rc.URL+"/flaky" ||
			a.ConsecutiveFailures != w.failures || a.LastStatus != http.StatusServiceUnavailable || a.FailingSince.IsZero() ||
			(w.typ == health.Recovered) != (a.RecoveredAt != nil) {
			t.Errorf("operator event %d: %s", i+1, body)
		}
	}

	// One digest of the three deliveries given up.
	digest := mp.To(t, billing)
	if len(digest) != 1 || digest[0].Subject != "[Hookline] 3 webhook deliveries given up: Billing" {
		t.Fatalf("emails to %s: %+v, want one digest of 3", billing, digest)
	}
	msg := mp.Message(t, digest[0].ID)
	for _, id := range given {
		if !strings.Contains(msg.Text, id) {
			t.Errorf("the digest does not list event %s:\n%s", id, msg.Text)
		}
	}
	for _, id := range orderIDs {
		if strings.Contains(msg.Text, id) {
			t.Errorf("the digest lists order event %s, which was delivered", id)
		}
	}
}
