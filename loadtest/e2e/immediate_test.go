package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/record"
)

// immediateAnswer is POST /v1/events?mode=immediate's answer.
type immediateAnswer struct {
	ID         string
	Deliveries []struct {
		SubscriptionID string `json:"subscription_id"`
		DeliveryID     string `json:"delivery_id"`
		StatusCode     int    `json:"status_code"`
		Outcome        string
		Error          string
	}
}

// TestImmediateModeThroughTheStack runs immediate mode beside the whole
// pipeline (ingest, matcher, sender, retry as processes): the pipeline's
// copy of a delivery immediate mode made is dropped, a failed immediate
// attempt goes on as attempt 2 from the first retry tier, one still under
// way past the wait ends once, and a batch subscription's delivery is
// queued for the pipeline, which delivers it. Each history in the
// delivery log, and so in the history API, starts with the immediate
// attempt as attempt 1.
func TestImmediateModeThroughTheStack(t *testing.T) {
	rc := newReceiver(t)
	var (
		mu       sync.Mutex
		failed   = map[string]bool{} // /fail: delivery ids refused once
		slowOnce sync.Once
	)
	rc.respond = func(r *http.Request, _ []byte, _ int) (int, http.Header) {
		switch r.URL.Path {
		case "/fail":
			mu.Lock()
			defer mu.Unlock()
			if id := r.Header.Get("webhook-id"); !failed[id] {
				failed[id] = true
				return http.StatusServiceUnavailable, nil
			}
		case "/slow":
			slowOnce.Do(func() { time.Sleep(2 * time.Second) })
		}
		return http.StatusNoContent, nil
	}
	s := startStack(t, rc.Cert.PEM, "1s,2s", withHistory(t))
	subscribe := func(path, eventType string, extra map[string]any) string {
		t.Helper()
		body := map[string]any{"url": rc.URL + path, "event_types": []string{eventType}}
		for k, v := range extra {
			body[k] = v
		}
		var sub created
		if code := s.postJSON("/v1/subscriptions", body, &sub); code != http.StatusCreated {
			t.Fatalf("create subscription %s: %d", path, code)
		}
		return sub.ID
	}
	post := func(eventType, subject, query string, wantStatus int) immediateAnswer {
		t.Helper()
		var ans immediateAnswer
		code := s.postJSON("/v1/events?mode=immediate"+query, map[string]any{"type": eventType, "subject": subject, "data": map[string]any{"id": subject}}, &ans)
		if code != wantStatus || len(ans.Deliveries) != 1 {
			t.Fatalf("immediate %s: %d %+v, want %d with one delivery", eventType, code, ans, wantStatus)
		}
		return ans
	}
	sent := func(id string) int { // not inside waitFor's condition: it holds rc.mu
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return countID(rc.got, id)
	}
	// settled posts a queue-mode event of the same subject after the
	// immediate one and waits for it: the pipeline's copy of the immediate
	// delivery came before it through the same partitions, so the sender
	// has decided about that copy by then.
	settled := func(eventType, subject string) {
		t.Helper()
		var ev created
		if code := s.postJSON("/v1/events", map[string]any{"type": eventType, "subject": subject, "data": map[string]any{"marker": true}}, &ev); code != http.StatusAccepted {
			t.Fatalf("marker event: %d", code)
		}
		rc.waitFor(t, 60*time.Second, "the marker event", func(_ []*http.Request, bodies [][]byte) bool {
			return countIn(bodies, subject) >= 2
		})
	}

	okSub := subscribe("/ok", "imm.ok", nil)
	failSub := subscribe("/fail", "imm.fail", nil)
	slowSub := subscribe("/slow", "imm.slow", nil)
	subscribe("/batch", "imm.batch", map[string]any{"batch": map[string]any{"max_events": 10, "max_wait_ms": 200}})
	// The subscriptions view of ingest must know them before it can match:
	// retry the first until it is matched.
	var (
		ok             immediateAnswer
		failID, slowID string
	)
	for deadline := time.Now().Add(30 * time.Second); ; {
		var ans immediateAnswer
		s.postJSON("/v1/events?mode=immediate", map[string]any{"type": "imm.ok", "subject": "warmup", "data": map[string]any{"id": "w"}}, &ans)
		if len(ans.Deliveries) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ingest never matched the new subscription")
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("delivered once", func(t *testing.T) {
		ok = post("imm.ok", "ord_ok", "", http.StatusOK)
		d := ok.Deliveries[0]
		if d.Outcome != "delivered" || d.StatusCode != http.StatusNoContent || d.SubscriptionID != okSub {
			t.Fatalf("answer %+v, want delivered 204", d)
		}
		settled("imm.ok", "ord_ok")
		time.Sleep(time.Second) // a copy not dropped would be in flight by now
		if n := sent(d.DeliveryID); n != 1 {
			t.Errorf("the receiver got the delivery %d times, want once", n)
		}
	})

	t.Run("failed goes on as attempt 2", func(t *testing.T) {
		ans := post("imm.fail", "ord_fail", "", http.StatusOK)
		d := ans.Deliveries[0]
		failID = d.DeliveryID
		if d.Outcome != "failed" || d.StatusCode != http.StatusServiceUnavailable || d.SubscriptionID != failSub {
			t.Fatalf("answer %+v, want failed 503", d)
		}
		rc.waitFor(t, 60*time.Second, "the retry", func(reqs []*http.Request, _ [][]byte) bool { return countID(reqs, d.DeliveryID) >= 2 })
		time.Sleep(2 * time.Second)
		if n := sent(d.DeliveryID); n != 2 {
			t.Errorf("the receiver got the delivery %d times, want twice (the immediate attempt and the retry)", n)
		}
	})

	t.Run("pending past the wait, delivered once", func(t *testing.T) {
		ans := post("imm.slow", "ord_slow", "&wait_ms=300", http.StatusAccepted)
		d := ans.Deliveries[0]
		slowID = d.DeliveryID
		if d.Outcome != "pending" || d.SubscriptionID != slowSub {
			t.Fatalf("answer %+v, want pending", d)
		}
		rc.waitFor(t, 30*time.Second, "the slow delivery", func(reqs []*http.Request, _ [][]byte) bool { return countID(reqs, d.DeliveryID) >= 1 })
		time.Sleep(500 * time.Millisecond) // its claim resolved
		settled("imm.slow", "ord_slow")
		time.Sleep(time.Second)
		if n := sent(d.DeliveryID); n != 1 {
			t.Errorf("the receiver got the delivery %d times, want once", n)
		}
	})

	t.Run("batch subscription queued", func(t *testing.T) {
		ans := post("imm.batch", "ord_batch", "", http.StatusAccepted)
		if d := ans.Deliveries[0]; d.Outcome != "queued" || d.Error == "" {
			t.Fatalf("answer %+v, want queued with the reason", d)
		}
		rc.waitFor(t, 60*time.Second, "the batch", func(reqs []*http.Request, bodies [][]byte) bool { return countIn(bodies, "ord_batch") == 1 })
	})

	// One history per delivery: the immediate attempt is attempt 1.
	want := map[string]string{
		ok.Deliveries[0].DeliveryID: fmt.Sprint([]string{"1:" + record.OutcomeDelivered}),
		failID:                      fmt.Sprint([]string{"1:" + record.OutcomeRetrying, "2:" + record.OutcomeDelivered}),
		slowID:                      fmt.Sprint([]string{"1:" + record.OutcomeDelivered}),
	}
	var byID map[string][]string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		// At least: a warm-up, the three above (four attempts), the batch
		// and two markers.
		byID = map[string][]string{}
		for _, a := range readAttempts(t, s.Kafka, 8, 30*time.Second) {
			byID[a.DeliveryID] = append(byID[a.DeliveryID], fmt.Sprintf("%d:%s", a.Attempt, a.Outcome))
		}
		done := true
		for id, w := range want {
			done = done && fmt.Sprint(byID[id]) == w
		}
		if done || time.Now().After(deadline) {
			break
		}
	}
	for id, w := range want {
		if got := fmt.Sprint(byID[id]); got != w {
			t.Errorf("delivery log of %s: %s, want %s", id, got, w)
		}
	}

	// The history API tells the same story (the logs service's store).
	for id, w := range want {
		var got []string
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			var d historyDelivery
			code, _ := s.call(http.MethodGet, "/v1/deliveries/"+id, s.Key, "", nil, &d)
			got = nil
			for _, a := range d.Attempts {
				got = append(got, fmt.Sprintf("%d:%s", a.Attempt, a.Outcome))
			}
			slices.Sort(got)
			if code == http.StatusOK && fmt.Sprint(got) == w || time.Now().After(deadline) {
				break
			}
		}
		if fmt.Sprint(got) != w {
			t.Errorf("history of %s: %v, want %s", id, got, w)
		}
	}
}
