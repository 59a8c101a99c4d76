package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/signature"
)

// The history API's answers, as much as the test reads of them.
type (
	historyAttempt struct {
		DeliveryID string `json:"delivery_id"`
		Attempt    int    `json:"attempt"`
		Outcome    string `json:"outcome"`
		Replay     bool   `json:"replay"`
		Request    struct {
			Headers http.Header `json:"headers"`
			Body    *struct {
				Text string `json:"text"`
			} `json:"body"`
		} `json:"request"`
		Response *struct {
			Status int `json:"status"`
			Body   struct {
				Text string `json:"text"`
			} `json:"body"`
		} `json:"response"`
	}
	historyDelivery struct {
		ID             string           `json:"id"`
		SubscriptionID string           `json:"subscription_id"`
		EventID        string           `json:"event_id"`
		Status         string           `json:"status"`
		Attempts       []historyAttempt `json:"attempts"`
	}
	historyPage struct {
		Data []historyDelivery `json:"data"`
	}
)

// TestDeliveryHistory runs the five services with the logs service on a
// real PostgreSQL and reads the story back from the history API: an
// endpoint down dead-letters a delivery (every attempt with what was sent
// and what came back), the owner fixes it and re-runs the delivery (same
// webhook-id, marked as a replay), recovers the failures of a window, and
// sends an old event to a new endpoint, once. Another tenant sees none of
// it, and the store holds every attempt of the topic.
func TestDeliveryHistory(t *testing.T) {
	rc := newReceiver(t)
	var broken atomic.Bool
	broken.Store(true)
	rc.respond = func(r *http.Request, _ []byte, _ int) (int, http.Header) {
		if broken.Load() && strings.HasPrefix(r.URL.Path, "/hooks") {
			return http.StatusServiceUnavailable, http.Header{"Content-Type": {"text/html"}}
		}
		return http.StatusNoContent, nil
	}
	rc.answer = func(r *http.Request) []byte {
		if broken.Load() && strings.HasPrefix(r.URL.Path, "/hooks") {
			return []byte("<h1>down for maintenance</h1>")
		}
		return nil
	}
	s := startStack(t, rc.Cert.PEM, "1s,2s", withHistory(t))
	var sub created
	if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + "/hooks", "event_types": []string{"order.*"},
		"max_attempts": 2, "auth": map[string]any{"type": "bearer", "token": "t0ken-e2e"}}, &sub); code != http.StatusCreated {
		t.Fatalf("create subscription: %d", code)
	}
	var ev1 created
	s.postJSON("/v1/events", map[string]any{"type": "order.created", "subject": "ord_h1", "data": map[string]any{"id": "ord_h1"}}, &ev1)

	// Two attempts, both 503, then the DLQ: the history says "failed".
	failed := s.waitDelivery(t, "/v1/deliveries?status=failed&subscription_id="+sub.ID, func(p historyPage) bool { return len(p.Data) == 1 })
	d := s.delivery(t, failed.Data[0].ID)
	if d.EventID != ev1.ID || len(d.Attempts) != 2 {
		t.Fatalf("delivery %+v, want two attempts of event %s", d, ev1.ID)
	}
	a := d.Attempts[0]
	switch {
	case a.Attempt != 2 || a.Outcome != "failed" || d.Attempts[1].Outcome != "retrying":
		t.Errorf("attempts %+v, want 2 failed then 1 retrying", d.Attempts)
	case a.Response == nil || a.Response.Status != 503 || a.Response.Body.Text != "<h1>down for maintenance</h1>":
		t.Errorf("attempt's answer %+v", a.Response)
	case a.Request.Headers.Get("Authorization") != "Bearer [redacted]" || a.Request.Headers.Get(signature.HeaderID) != d.ID:
		t.Errorf("attempt's request headers %v", a.Request.Headers)
	case a.Request.Body == nil || !strings.Contains(a.Request.Body.Text, `"subject":"ord_h1"`):
		t.Errorf("attempt's request body %+v", a.Request.Body)
	}

	// Fixed: one re-run of the delivery, with its webhook-id.
	broken.Store(false)
	if code := s.postJSON("/v1/deliveries/"+d.ID+"/redeliver", nil, nil); code != http.StatusAccepted {
		t.Fatalf("redeliver: %d", code)
	}
	rc.waitFor(t, 60*time.Second, "the re-run", func(reqs []*http.Request, _ [][]byte) bool {
		n := 0
		for _, r := range reqs {
			if r.Header.Get(signature.HeaderID) == d.ID {
				n++
			}
		}
		return n == 3 // two failed attempts, and the re-run
	})
	s.waitDelivery(t, "/v1/deliveries?status=delivered&subscription_id="+sub.ID, func(p historyPage) bool { return len(p.Data) == 1 })
	if d = s.delivery(t, d.ID); len(d.Attempts) != 3 || !d.Attempts[0].Replay || d.Attempts[0].Outcome != "delivered" || d.Attempts[0].Attempt != 1 {
		t.Errorf("after the re-run %+v, want a third attempt: a delivered replay numbered 1", d.Attempts)
	}

	// Down again for a while: a second event fails; recover the window.
	broken.Store(true)
	var ev2 created
	s.postJSON("/v1/events", map[string]any{"type": "order.created", "subject": "ord_h2", "data": map[string]any{"id": "ord_h2"}}, &ev2)
	s.waitDelivery(t, "/v1/deliveries?status=failed&event_id="+ev2.ID, func(p historyPage) bool { return len(p.Data) == 1 })
	broken.Store(false)
	var recovered struct {
		Count       int      `json:"count"`
		DeliveryIDs []string `json:"delivery_ids"`
	}
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if code := s.postJSON("/v1/subscriptions/"+sub.ID+"/recover", map[string]any{"since": since}, &recovered); code != http.StatusAccepted || recovered.Count != 1 {
		t.Fatalf("recover: %d %+v, want the one failed delivery", code, recovered)
	}
	s.waitDelivery(t, "/v1/deliveries?status=delivered&event_id="+ev2.ID, func(p historyPage) bool { return len(p.Data) == 1 })

	// A new endpoint gets the old event, shaped for it, once.
	var sub2 created
	if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + "/new", "event_types": []string{"invoice.*"},
		"metadata": map[string]string{"via": "history"}}, &sub2); code != http.StatusCreated {
		t.Fatalf("create the new subscription: %d", code)
	}
	var sent struct {
		DeliveryID string `json:"delivery_id"`
		Duplicate  bool   `json:"duplicate"`
	}
	if code := s.postJSON("/v1/events/"+ev1.ID+"/redeliver", map[string]any{"subscription_id": sub2.ID}, &sent); code != http.StatusAccepted ||
		sent.DeliveryID != id.Delivery(ev1.ID, sub2.ID) {
		t.Fatalf("send the event to the new endpoint: %d %+v", code, sent)
	}
	if code := s.postJSON("/v1/events/"+ev1.ID+"/redeliver", map[string]any{"subscription_id": sub2.ID}, &sent); code != http.StatusOK || !sent.Duplicate {
		t.Errorf("the second time: %d %+v, want a duplicate", code, sent)
	}
	rc.waitFor(t, 60*time.Second, "the old event at the new endpoint", func(reqs []*http.Request, bodies [][]byte) bool {
		for i, r := range reqs {
			if r.URL.Path == "/new" && r.Header.Get(signature.HeaderID) == sent.DeliveryID && strings.Contains(string(bodies[i]), `"via":"history"`) {
				return true
			}
		}
		return false
	})
	s.waitDelivery(t, "/v1/deliveries?status=delivered&subscription_id="+sub2.ID, func(p historyPage) bool { return len(p.Data) == 1 })
	time.Sleep(2 * time.Second)
	n := 0
	rc.mu.Lock()
	for _, r := range rc.got {
		if r.URL.Path == "/new" {
			n++
		}
	}
	rc.mu.Unlock()
	if n != 1 {
		t.Errorf("the new endpoint got %d requests, want 1", n)
	}

	// Another tenant: nothing of it.
	for _, path := range []string{"/v1/deliveries/" + d.ID, "/v1/events/" + ev1.ID, "/v1/subscriptions/" + sub.ID + "/attempts"} {
		if code, _ := s.call(http.MethodGet, path, "other-"+s.Key, "", nil, nil); code != http.StatusNotFound {
			t.Errorf("GET %s as another tenant: %d, want 404", path, code)
		}
	}

	// Attempts in the topic = attempts in the store.
	inTopic := countRecords(t, s, s.Kafka.Topics.DeliveryLog)
	conn, err := pgx.Connect(context.Background(), s.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var inStore int64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM attempts").Scan(&inStore); err != nil {
			t.Fatal(err)
		}
		if inStore == inTopic || time.Now().After(deadline) {
			break
		}
	}
	if inStore != inTopic || inTopic < 6 {
		t.Errorf("attempts: %d in the topic, %d in the store", inTopic, inStore)
	}
}

// waitDelivery polls a deliveries list until cond holds.
func (s *pipeline) waitDelivery(t *testing.T, path string, cond func(historyPage) bool) historyPage {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var p historyPage
		code, _ := s.call(http.MethodGet, path, s.Key, "", nil, &p)
		if code == http.StatusOK && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %+v; not what the test waits for within 90s", path, code, p)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *pipeline) delivery(t *testing.T, id string) historyDelivery {
	t.Helper()
	var d historyDelivery
	if code, _ := s.call(http.MethodGet, "/v1/deliveries/"+id, s.Key, "", nil, &d); code != http.StatusOK {
		t.Fatalf("GET /v1/deliveries/%s: %d", id, code)
	}
	return d
}

// countRecords is how many records topic holds.
func countRecords(t *testing.T, s *pipeline, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
