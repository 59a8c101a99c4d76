package e2e

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
)

// TestDeadLetterReplayDeliversOnce: a 400 dead-letters the delivery at
// once; a replay through the API delivers it with the same webhook-id and
// marks the attempt as a replay; replaying again sends nothing more.
func TestDeadLetterReplayDeliversOnce(t *testing.T) {
	rc := newReceiver(t)
	rc.respond = func(_ *http.Request, body []byte, _ int) (int, http.Header) {
		if countSubject(rc, "ord_dlq") == 1 {
			return http.StatusBadRequest, nil
		}
		return http.StatusNoContent, nil
	}
	s := startStack(t, rc.Cert.PEM, "1s,2s")
	var sub created
	if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + "/hooks", "event_types": []string{"order.*"}}, &sub); code != http.StatusCreated {
		t.Fatalf("create subscription: %d", code)
	}
	s.postJSON("/v1/events", map[string]any{"type": "order.created", "subject": "ord_dlq", "data": map[string]any{"id": "ord_dlq"}}, nil)
	rc.waitFor(t, 60*time.Second, "the first attempt", func(_ []*http.Request, b [][]byte) bool { return countIn(b, "ord_dlq") == 1 })

	// The 400 is permanent: one attempt, dead-lettered, nothing retried.
	first := readAttempts(t, s.Kafka, 1, 30*time.Second)
	if first[0].Outcome != record.OutcomeDeadLettered || first[0].StatusCode != 400 {
		t.Fatalf("first attempt %+v, want dead_lettered with 400", first[0])
	}

	replay := func() []string {
		t.Helper()
		var ans struct{ Replayed []string }
		for deadline := time.Now().Add(30 * time.Second); ; {
			if code := s.postJSON("/v1/replay", map[string]any{"subscription_id": sub.ID}, &ans); code != http.StatusAccepted {
				t.Fatalf("replay answered %d", code)
			}
			if len(ans.Replayed) > 0 || time.Now().After(deadline) {
				return ans.Replayed
			}
			time.Sleep(200 * time.Millisecond) // the DLQ record may not be committed yet
		}
	}
	if ids := replay(); len(ids) != 1 || ids[0] != first[0].DeliveryID {
		t.Fatalf("replayed %v, want [%s]", ids, first[0].DeliveryID)
	}
	rc.waitFor(t, 60*time.Second, "the replayed delivery", func(_ []*http.Request, b [][]byte) bool { return countIn(b, "ord_dlq") == 2 })
	all := readAttempts(t, s.Kafka, 2, 30*time.Second)
	last := all[len(all)-1]
	if !last.Replay || last.Outcome != record.OutcomeDelivered || last.Attempt != 1 || last.DeliveryID != first[0].DeliveryID {
		t.Fatalf("replayed attempt %+v: want a delivered replay, attempt 1, same delivery id", last)
	}
	rc.mu.Lock()
	var ids []string
	for i, b := range rc.body {
		if bytes.Contains(b, []byte(`"subject":"ord_dlq"`)) {
			ids = append(ids, rc.got[i].Header.Get(signature.HeaderID))
		}
	}
	rc.mu.Unlock()
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Fatalf("webhook-ids %v, want the same id twice", ids)
	}

	// Replaying again: the sender knows it was delivered and sends nothing.
	replay()
	time.Sleep(3 * time.Second)
	if n := countSubject(rc, "ord_dlq"); n != 2 {
		t.Fatalf("receiver got %d requests after a second replay, want still 2", n)
	}
}
