package dispatch_test

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// TestAttemptRecordsTheExchange: each attempt in the delivery log holds
// what the delivery history shows: the delivery's created_at, the request
// headers as sent with the credentials redacted, and the answer's status,
// headers and first 4 KiB; a single delivery's body is its payload, so
// the log does not carry it again.
func TestAttemptRecordsTheExchange(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("z", record.MaxResponseBody+100)
	rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req_42")
		w.Header().Set("Set-Cookie", "session=s3cr3t")
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(long))
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	token := "t0ken-" + randomID()
	sub, _ := e.subscribe(rcv.URL+"/hooks", []time.Duration{0}, func(s *record.Subscription) {
		s.Headers = map[string]string{"X-Tenant": "acme", "X-Api-Key": "k3y"}
		s.Auth = &record.Auth{Type: "bearer", SealedCredential: e.box.Seal([]byte(token), []byte(s.ID))}
	})
	failing, _ := e.subscribe(rcv.URL+"/fail", []time.Duration{0})
	ok, bad := e.delivery(sub, `{"n":1}`), e.delivery(failing, `{"n":2}`)
	e.publish(ok, bad)
	e.run(e.sender(rcv), "history").waitHandled(t, 2, 30*time.Second)

	log := e.attempts()
	if len(log[ok.ID]) != 1 || len(log[bad.ID]) != 1 {
		t.Fatalf("log holds %d and %d attempts, want one each", len(log[ok.ID]), len(log[bad.ID]))
	}
	a, f := log[ok.ID][0], log[bad.ID][0]
	sent := byID(rcv.Requests())[ok.ID]
	if len(sent) != 1 {
		t.Fatalf("receiver got %d requests of %s", len(sent), ok.ID)
	}
	headers := http.Header(a.RequestHeaders)
	checks := []struct {
		what string
		ok   bool
	}{
		{"delivery_created_at", a.DeliveryCreatedAt != nil && a.DeliveryCreatedAt.Equal(ok.CreatedAt)},
		{"authorization redacted, scheme kept", headers.Get("Authorization") == "Bearer "+logstore.Redacted},
		{"custom credential header redacted", headers.Get("X-Api-Key") == logstore.Redacted},
		{"custom header kept", headers.Get("X-Tenant") == "acme"},
		{"webhook-id as sent", headers.Get(signature.HeaderID) == ok.ID},
		{"signature as sent", headers.Get(signature.HeaderSignature) == sent[0].Header.Get(signature.HeaderSignature)},
		{"no body: the payload is the delivery's", a.RequestBody == nil && a.RequestBodySHA256 == nil},
		{"response body", string(a.ResponseBody) == `{"ok":true}` && !a.ResponseTruncated},
		{"response header", http.Header(a.ResponseHeaders).Get("X-Request-Id") == "req_42"},
		{"response cookie redacted", http.Header(a.ResponseHeaders).Get("Set-Cookie") == logstore.Redacted},
		{"failure's body bounded", string(f.ResponseBody) == long[:record.MaxResponseBody] && f.ResponseTruncated},
		{"failure's status", f.StatusCode == http.StatusBadRequest && f.Outcome == record.OutcomeDeadLettered},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s wrong: %+v", c.what, a)
		}
	}
	for _, as := range log {
		for _, at := range as {
			for _, v := range at.RequestHeaders {
				if strings.Contains(strings.Join(v, " "), token) {
					t.Fatalf("the delivery log holds the endpoint's token: %v", at.RequestHeaders)
				}
			}
		}
	}
}

// TestBatchBodyLoggedOnce: the attempts of one batch request name its
// array by SHA-256, and only the first carries it: the log holds each
// array once, whatever the batch size.
func TestBatchBodyLoggedOnce(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL+"/hooks", []time.Duration{0}, batchOf(5, 200*time.Millisecond, false))
	ds := make([]record.Delivery, 5)
	for i := range ds {
		ds[i] = e.delivery(sub, `{"seq":`+string(rune('0'+i))+`}`)
	}
	e.publish(ds...)
	e.run(e.sender(rcv), "batch").waitHandled(t, len(ds), 30*time.Second)
	reqs := rcv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want one batch", len(reqs))
	}
	sum := sha256.Sum256(reqs[0].Body)
	log := e.attempts()
	carried := 0
	for i, d := range ds {
		as := log[d.ID]
		if len(as) != 1 {
			t.Fatalf("delivery %d: %d attempts", i, len(as))
		}
		if !bytes.Equal(as[0].RequestBodySHA256, sum[:]) {
			t.Errorf("delivery %d names body %x, want the array's %x", i, as[0].RequestBodySHA256, sum)
		}
		if as[0].RequestBody != nil {
			carried++
			if !bytes.Equal(as[0].RequestBody, reqs[0].Body) {
				t.Errorf("delivery %d carries %q, want the array sent", i, as[0].RequestBody)
			}
		}
	}
	if carried != 1 {
		t.Errorf("%d attempts carry the array, want exactly one", carried)
	}
}

// TestRedelivery: a re-run from the history is sent even though the
// delivery was delivered before, once however often its record is read,
// with the same webhook-id and marked as a replay; a failed re-run is
// dead-lettered at once, not retried, and its dead letter is an ordinary
// one (a later replay is not a re-run).
func TestRedelivery(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, statusHandler)
	sub, _ := e.subscribe(rcv.URL+"/status/204", []time.Duration{0}, func(s *record.Subscription) { s.MaxAttempts = 5 })
	d := e.delivery(sub, `{"n":1}`)
	e.publish(d)
	run := e.run(e.sender(rcv), "sender")
	run.waitHandled(t, 1, 30*time.Second)

	again := d
	again.Replay, again.Redelivery = true, "rdl_"+randomID()
	// The same re-run twice (a retried API call, a record read twice), and
	// an ordinary replay, which the delivered mark holds back.
	plain := d
	plain.Replay = true
	e.publish(again, again, plain)
	run.waitHandled(t, 4, 30*time.Second)
	if got := len(byID(rcv.Requests())[d.ID]); got != 2 {
		t.Fatalf("receiver got %d requests of %s, want 2 (the first delivery and one re-run)", got, d.ID)
	}
	log := e.attempts()[d.ID]
	if len(log) != 2 || !log[1].Replay || log[1].Outcome != record.OutcomeDelivered {
		t.Errorf("log %+v, want a second attempt marked as a replay", log)
	}

	// A re-run of a failing delivery: one attempt, then the DLQ.
	failing := e.delivery(sub, `{"n":2}`)
	failing.URL = rcv.URL + "/status/503"
	sub.URL = failing.URL
	e.putSubscription(sub)
	failing.Replay, failing.Redelivery = true, "rdl_"+randomID()
	e.publish(failing)
	run.waitHandled(t, 5, 30*time.Second)
	if got := e.attempts()[failing.ID]; len(got) != 1 || got[0].Outcome != record.OutcomeDeadLettered {
		t.Errorf("failed re-run logged %+v, want one dead-lettered attempt", got)
	}
	if got := e.retries()[failing.ID]; len(got) != 0 {
		t.Errorf("failed re-run went to a retry tier %d times", len(got))
	}
	dead := e.deliveries(e.kafka.Topics.DLQ)[failing.ID]
	if len(dead) != 1 || dead[0].Redelivery != "" || !strings.HasPrefix(dead[0].LastError, "redelivery failed: ") {
		t.Errorf("dead letter %+v, want one, not a re-run, saying the redelivery failed", dead)
	}
}
