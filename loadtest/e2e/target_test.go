package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFixTheURLThenRetryAndReplay is "fix the endpoint, then re-run": a
// delivery failing at the old URL and one dead-lettered there both reach
// the URL the owner PATCHes in afterwards, the first through the retry
// service, the second through an API replay.
func TestFixTheURLThenRetryAndReplay(t *testing.T) {
	rc := newReceiver(t)
	rc.respond = func(r *http.Request, body []byte, _ int) (int, http.Header) {
		switch {
		case r.URL.Path == "/old" && bytes.Contains(body, []byte(`"subject":"ord_dead"`)):
			return http.StatusBadRequest, nil
		case r.URL.Path == "/old":
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusNoContent, nil
	}
	// The first retry is due 4 s after the failure: time to PATCH.
	s := startStack(t, rc.Cert.PEM, "4s,8s")
	var sub created
	if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + "/old", "event_types": []string{"order.*"}}, &sub); code != http.StatusCreated {
		t.Fatalf("create subscription: %d", code)
	}
	for _, subject := range []string{"ord_retry", "ord_dead"} {
		if code := s.postJSON("/v1/events", map[string]any{"type": "order.created", "subject": subject, "data": map[string]any{"id": subject}}, nil); code != http.StatusAccepted {
			t.Fatalf("send %s: %d", subject, code)
		}
	}
	rc.waitFor(t, 60*time.Second, "both first attempts at /old", func(_ []*http.Request, b [][]byte) bool {
		return countIn(b, "ord_retry") == 1 && countIn(b, "ord_dead") == 1
	})

	patch := []byte(`{"url":"` + rc.URL + `/new"}`)
	if code, _ := s.call(http.MethodPatch, "/v1/subscriptions/"+sub.ID, s.Key, "application/json", patch, nil); code != http.StatusOK {
		t.Fatalf("PATCH url: %d", code)
	}
	at := func(subject, path string) func([]*http.Request, [][]byte) bool {
		return func(reqs []*http.Request, bodies [][]byte) bool {
			for i, b := range bodies {
				if bytes.Contains(b, []byte(`"subject":"`+subject+`"`)) && reqs[i].URL.Path == path {
					return true
				}
			}
			return false
		}
	}
	rc.waitFor(t, 60*time.Second, "the retry at /new", at("ord_retry", "/new"))

	var replayed struct{ Replayed []string }
	for deadline := time.Now().Add(30 * time.Second); len(replayed.Replayed) == 0; {
		if code := s.postJSON("/v1/replay", map[string]any{"subscription_id": sub.ID}, &replayed); code != http.StatusAccepted {
			t.Fatalf("replay answered %d", code)
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing to replay: the dead letter never arrived")
		}
		time.Sleep(200 * time.Millisecond)
	}
	rc.waitFor(t, 60*time.Second, "the replay at /new", at("ord_dead", "/new"))

	// Two attempts at /old, then the retry and the replay at /new, each
	// logged with the URL it went to.
	attempts := readAttempts(t, s.Kafka, 4, 30*time.Second)
	atNew := 0
	for _, a := range attempts {
		if strings.HasSuffix(a.URL, "/new") && a.Outcome == "delivered" {
			atNew++
		}
	}
	if atNew != 2 {
		t.Errorf("delivery log: %d attempts delivered at /new, want 2: %+v", atNew, attempts)
	}
}
