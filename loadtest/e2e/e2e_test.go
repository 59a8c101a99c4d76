// Package e2e runs Hookline's four services as separate processes against
// the real Kafka broker and Redis that `make test` starts, and checks the
// README's story: create a subscription, publish an event, see it arrive
// signed at an HTTPS receiver over HTTP/2.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
)

type created struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

func TestEventTravelsThroughAllFourServices(t *testing.T) {
	rc := newReceiver(t)
	// The first two attempts for subject ord_retry fail with a 503, so the
	// delivery goes through both retry tiers and the retry service.
	rc.respond = func(r *http.Request, body []byte, n int) (int, http.Header) {
		if bytes.Contains(body, []byte(`"subject":"ord_retry"`)) && countSubject(rc, "ord_retry") <= 2 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusNoContent, nil
	}
	s := startStack(t, rc.Cert.PEM, "1s,2s")

	var sub created
	if code := s.postJSON("/v1/subscriptions", map[string]any{
		"url": rc.URL + "/hooks", "event_types": []string{"order.*"},
	}, &sub); code != http.StatusCreated || sub.ID == "" || !strings.HasPrefix(sub.Secret, "whsec_") {
		t.Fatalf("create subscription: %d %+v", code, sub)
	}
	secret, err := signature.ParseSecret(sub.Secret)
	if err != nil {
		t.Fatal(err)
	}

	var ev created
	if code := s.postJSON("/v1/events", map[string]any{
		"type": "order.created", "subject": "ord_1", "data": map[string]any{"id": "ord_1", "total": 42},
	}, &ev); code != http.StatusAccepted || !strings.HasPrefix(ev.ID, "evt_") {
		t.Fatalf("post event: %d %+v", code, ev)
	}
	// Not subscribed: must not arrive.
	s.postJSON("/v1/events", map[string]any{"type": "invoice.paid", "data": map[string]any{"id": "inv_1"}}, nil)

	rc.waitFor(t, 60*time.Second, "the order.created delivery", func(reqs []*http.Request, _ [][]byte) bool { return len(reqs) >= 1 })
	rc.mu.Lock()
	req, body := rc.got[0], rc.body[0]
	rc.mu.Unlock()
	if req.Proto != "HTTP/2.0" {
		t.Errorf("protocol %s, want HTTP/2.0", req.Proto)
	}
	if req.URL.Path != "/hooks" || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s", req.URL.Path, req.Header.Get("Content-Type"))
	}
	v := &signature.Verifier{Secrets: []signature.Secret{secret}}
	if err := v.Verify(req.Header, body); err != nil {
		t.Errorf("signature does not verify: %v (headers %v)", err, req.Header)
	}
	var got struct {
		ID, Type, Subject string
		Data              map[string]any
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Type != "order.created" || got.Subject != "ord_1" || got.Data["total"] != 42.0 {
		t.Errorf("body %s", body)
	}
	webhookID := req.Header.Get(signature.HeaderID)
	if !strings.HasPrefix(webhookID, "dlv_") {
		t.Errorf("webhook-id %q", webhookID)
	}

	// Failing twice then succeeding: three attempts with the same
	// webhook-id, each retry no earlier than its tier's delay (1s, then 2s).
	s.postJSON("/v1/events", map[string]any{"type": "order.updated", "subject": "ord_retry", "data": map[string]any{"id": "ord_retry"}}, nil)
	rc.waitFor(t, 90*time.Second, "the twice retried delivery", func(_ []*http.Request, bodies [][]byte) bool { return countIn(bodies, "ord_retry") >= 3 })
	var retryIDs []string
	var arrived []time.Time
	rc.mu.Lock()
	for i, b := range rc.body {
		if bytes.Contains(b, []byte(`"subject":"ord_retry"`)) {
			retryIDs = append(retryIDs, rc.got[i].Header.Get(signature.HeaderID))
			arrived = append(arrived, rc.at[i])
		}
	}
	rc.mu.Unlock()
	if len(retryIDs) != 3 || retryIDs[0] != retryIDs[1] || retryIDs[1] != retryIDs[2] {
		t.Errorf("retry webhook-ids %v: want three equal ids", retryIDs)
	}
	if len(arrived) == 3 {
		if gap := arrived[1].Sub(arrived[0]); gap < time.Second {
			t.Errorf("first retry came %v after the first attempt, before its 1s tier", gap)
		}
		if gap := arrived[2].Sub(arrived[1]); gap < 2*time.Second {
			t.Errorf("second retry came %v after the first retry, before its 2s tier", gap)
		}
	}

	// The delivery log holds one record per attempt: 1 + 3.
	attempts := readAttempts(t, s.Kafka, 4, 30*time.Second)
	outcomes := map[string]int{}
	for _, a := range attempts {
		outcomes[a.Outcome]++
		if a.SubscriptionID != sub.ID || a.Tenant != "acme" {
			t.Errorf("attempt %+v", a)
		}
	}
	if outcomes[record.OutcomeDelivered] != 2 || outcomes[record.OutcomeRetrying] != 2 {
		t.Errorf("outcomes %v, want 2 delivered and 2 retrying", outcomes)
	}
	rc.mu.Lock()
	n := len(rc.got)
	rc.mu.Unlock()
	if n != 4 {
		t.Errorf("receiver got %d requests, want 4 (invoice.paid must not be delivered)", n)
	}
}

func countSubject(rc *receiver, subject string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return countIn(rc.body, subject)
}

func countIn(bodies [][]byte, subject string) int {
	n := 0
	for _, b := range bodies {
		if bytes.Contains(b, []byte(`"subject":"`+subject+`"`)) {
			n++
		}
	}
	return n
}

// readAttempts reads n records from the delivery log.
func readAttempts(t *testing.T, cfg kafka.Config, n int, timeout time.Duration) []record.DeliveryAttempt {
	t.Helper()
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(cfg.Topics.DeliveryLog), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []record.DeliveryAttempt
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d delivery-log records", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var a record.DeliveryAttempt
			if err := codecs.Attempt.Unmarshal(r.Value, &a); err != nil {
				t.Errorf("decode attempt: %v", err)
				return
			}
			out = append(out, a)
		})
	}
	return out
}

func TestBadEventsGetProblemDetailsAndReachNoTopic(t *testing.T) {
	rc := newReceiver(t)
	s := startStack(t, rc.Cert.PEM, "1s,2s")
	before := endOffsets(t, s.Kafka)

	big := `{"type":"a.b","data":{"x":"` + strings.Repeat("x", 1<<20) + `"}}`
	tests := []struct {
		name        string
		contentType string
		key         string
		body        string
		status      int
		field       string
	}{
		{"malformed JSON", "application/json", s.Key, `{"type":`, 400, ""},
		{"missing type", "application/json", s.Key, `{"data":{}}`, 400, "type"},
		{"data not an object", "application/json", s.Key, `{"type":"a","data":"x"}`, 400, "data"},
		{"unknown field", "application/json", s.Key, `{"type":"a","data":{},"tpye":"x"}`, 400, "tpye"},
		{"batch item", "application/json", s.Key, `[{"type":"a","data":{}},{"type":"","data":{}}]`, 400, "[1].type"},
		{"body over the limit", "application/json", s.Key, big, 413, ""},
		{"wrong content type", "text/plain", s.Key, `{"type":"a","data":{}}`, 415, ""},
		{"no API key", "application/json", "", `{"type":"a","data":{}}`, 401, ""},
		{"unknown API key", "application/json", "nope", `{"type":"a","data":{}}`, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p struct {
				Type, Title string
				Status      int
				Errors      []struct{ Field, Detail string }
			}
			req, _ := http.NewRequest(http.MethodPost, s.API+"/v1/events", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %s, want %d problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Status != tc.status || p.Type == "" || p.Title == "" {
				t.Fatalf("problem %+v, %v", p, err)
			}
			if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field || p.Errors[0].Detail == "") {
				t.Fatalf("errors %+v, want field %q", p.Errors, tc.field)
			}
		})
	}
	// Give a wrongly accepted event time to land, then check none did.
	time.Sleep(500 * time.Millisecond)
	after := endOffsets(t, s.Kafka)
	for p, off := range after {
		if before[p] != off {
			t.Errorf("events partition %d moved from %d to %d: bad input reached Kafka", p, before[p], off)
		}
	}
}

func endOffsets(t *testing.T, cfg kafka.Config) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), cfg.Topics.Events)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}
