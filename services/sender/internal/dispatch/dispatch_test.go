package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/sender/internal/dispatch"
)

func TestSignaturesAndHeaders(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	hour := time.Hour
	tests := []struct {
		name       string
		secretAges []time.Duration
		mod        func(*record.Subscription)
		signatures int               // webhook-signature entries
		header     map[string]string // exact values the receiver must see
	}{
		{name: "one secret", secretAges: []time.Duration{0}, signatures: 1},
		{name: "rotation signs with both secrets", secretAges: []time.Duration{hour, 0}, signatures: 2},
		{
			name: "an expired secret no longer signs", secretAges: []time.Duration{24 * hour, 0}, signatures: 1,
			mod: func(s *record.Subscription) {
				past := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
				s.Secrets[0].ExpiresAt = &past
			},
		},
		{
			name: "custom headers and bearer token", secretAges: []time.Duration{0}, signatures: 1,
			mod: func(s *record.Subscription) {
				s.Headers = map[string]string{"X-Tenant": "acme"}
				s.Auth = &record.Auth{Type: "bearer", SealedCredential: e.box.Seal([]byte("tok_live"), []byte(s.ID))}
			},
			header: map[string]string{"X-Tenant": "acme", "Authorization": "Bearer tok_live"},
		},
		{
			name: "basic auth", secretAges: []time.Duration{0}, signatures: 1,
			mod: func(s *record.Subscription) {
				s.Auth = &record.Auth{Type: "basic", Username: "hook", SealedCredential: e.box.Seal([]byte("pw"), []byte(s.ID))}
			},
			header: map[string]string{"Authorization": "Basic aG9vazpwdw=="},
		},
	}
	type setup struct {
		sub     *record.Subscription
		secrets []signature.Secret
		d       record.Delivery
	}
	setups := make([]setup, len(tests))
	for i, tc := range tests {
		mods := []func(*record.Subscription){}
		if tc.mod != nil {
			mods = append(mods, tc.mod)
		}
		sub, secrets := e.subscribe(rcv.URL+"/hooks", tc.secretAges, mods...)
		d := e.delivery(sub, fmt.Sprintf(`{"id":"evt","type":"order.created","data":{"case":%d}}`, i))
		setups[i] = setup{sub, secrets, d}
		e.publish(d)
	}
	e.run(e.sender(rcv), "sender").waitHandled(t, len(tests), 30*time.Second)
	got := byID(rcv.Requests())
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := setups[i]
			reqs := got[st.d.ID]
			if len(reqs) != 1 {
				t.Fatalf("receiver got %d requests for the delivery, want 1", len(reqs))
			}
			req := reqs[0]
			if string(req.Body) != st.d.Payload || req.ProtoMajor != 2 {
				t.Errorf("body %q over HTTP/%d, want the payload over HTTP/2", req.Body, req.ProtoMajor)
			}
			if n := len(strings.Fields(req.Header.Get("webhook-signature"))); n != tc.signatures {
				t.Errorf("%d signatures, want %d", n, tc.signatures)
			}
			active := st.secrets[len(st.secrets)-tc.signatures:]
			for j, s := range active {
				if err := (&signature.Verifier{Secrets: []signature.Secret{s}}).Verify(req.Header, req.Body); err != nil {
					t.Errorf("active secret %d does not verify: %v", j, err)
				}
			}
			if tc.signatures < len(st.secrets) {
				if err := (&signature.Verifier{Secrets: st.secrets[:1]}).Verify(req.Header, req.Body); err == nil {
					t.Error("the expired secret still signs")
				}
			}
			newest := st.secrets[len(st.secrets)-1]
			if want := signature.SignGitHub(req.Body, newest); req.Header.Get("X-Hub-Signature-256") != want {
				t.Errorf("X-Hub-Signature-256 is not signed with the newest secret")
			}
			for k, v := range tc.header {
				if req.Header.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, req.Header.Get(k), v)
				}
			}
		})
	}
}

func TestOutcomes(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, statusHandler)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}) // MaxAttempts 3
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "https://" + closed.Addr().String() + "/hook"
	closed.Close()

	const (
		none  = ""
		tier1 = "1s"
		tier2 = "2s"
		dlq   = "dlq"
	)
	tests := []struct {
		name     string
		path     string // on the receiver; a full URL when it starts with https
		attempt  int32  // attempts already made
		outcome  string
		to       string
		requests int
		minDelay time.Duration // of due_at after the attempt started
	}{
		{"200 delivered", "/status/200", 0, record.OutcomeDelivered, none, 1, 0},
		{"204 delivered", "/status/204", 1, record.OutcomeDelivered, none, 1, 0},
		{"500 first failure to the first tier", "/status/500", 0, record.OutcomeRetrying, tier1, 1, time.Second},
		{"503 second failure to the second tier", "/status/503", 1, record.OutcomeRetrying, tier2, 1, 2 * time.Second},
		{"408 retryable", "/status/408", 0, record.OutcomeRetrying, tier1, 1, time.Second},
		{"425 retryable", "/status/425", 0, record.OutcomeRetrying, tier1, 1, time.Second},
		{"429 retryable", "/status/429", 0, record.OutcomeRetrying, tier1, 1, time.Second},
		{"502 at the last attempt is dead-lettered", "/status/502", 2, record.OutcomeDeadLettered, dlq, 1, 0},
		{"400 permanent", "/status/400", 0, record.OutcomeDeadLettered, dlq, 1, 0},
		{"404 permanent", "/status/404", 0, record.OutcomeDeadLettered, dlq, 1, 0},
		{"422 permanent", "/status/422", 0, record.OutcomeDeadLettered, dlq, 1, 0},
		{"302 not followed, permanent", "/status/302", 0, record.OutcomeDeadLettered, dlq, 1, 0},
		{"Retry-After seconds honoured", "/status/503?retry-after=5", 0, record.OutcomeRetrying, tier2, 1, 5 * time.Second},
		{"Retry-After on 429", "/status/429?retry-after=3", 1, record.OutcomeRetrying, tier2, 1, 3 * time.Second},
		{"connection refused retryable", refused, 0, record.OutcomeRetrying, tier1, 0, time.Second},
	}
	ds := make([]record.Delivery, len(tests))
	for i, tc := range tests {
		ds[i] = e.delivery(sub, `{"case":"`+tc.name+`"}`)
		ds[i].URL = rcv.URL + tc.path
		if strings.HasPrefix(tc.path, "https") {
			ds[i].URL = tc.path
		}
		ds[i].Attempt = tc.attempt
	}
	e.publish(ds...)
	e.run(e.sender(rcv), "sender").waitHandled(t, len(ds), 30*time.Second)

	log, dead, reqs := e.attempts(), e.deliveries(e.kafka.Topics.DLQ), byID(rcv.Requests())
	tiers := map[string]map[string][]record.Delivery{}
	for _, tier := range e.schedule.Tiers() {
		tiers[wire.TierName(tier)] = e.deliveries(e.kafka.Topics.Retry(tier))
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ds[i]
			if n := len(reqs[d.ID]); n != tc.requests {
				t.Errorf("receiver got %d requests, want %d", n, tc.requests)
			}
			as := log[d.ID]
			if len(as) != 1 {
				t.Fatalf("%d delivery-log records, want 1", len(as))
			}
			a := as[0]
			if a.Outcome != tc.outcome || a.Attempt != tc.attempt+1 || a.SubscriptionID != sub.ID || a.URL != d.URL {
				t.Errorf("log: outcome %s attempt %d sub %s url %s; want %s attempt %d", a.Outcome, a.Attempt, a.SubscriptionID, a.URL, tc.outcome, tc.attempt+1)
			}
			var where []string
			var moved []record.Delivery
			for name, topic := range tiers {
				if got := topic[d.ID]; len(got) > 0 {
					where, moved = append(where, name), append(moved, got...)
				}
			}
			if got := dead[d.ID]; len(got) > 0 {
				where, moved = append(where, dlq), append(moved, got...)
			}
			if tc.to == none {
				if len(where) != 0 {
					t.Fatalf("delivered, yet written to %v", where)
				}
				return
			}
			if len(where) != 1 || where[0] != tc.to || len(moved) != 1 {
				t.Fatalf("written to %v (%d records), want once to %s", where, len(moved), tc.to)
			}
			m := moved[0]
			if m.Attempt != tc.attempt+1 || m.LastError == "" || m.LastError != a.Error && tc.to != dlq {
				t.Errorf("moved delivery: attempt %d, last error %q; log error %q", m.Attempt, m.LastError, a.Error)
			}
			if m.LastStatus != a.StatusCode {
				t.Errorf("last status %d, log status %d", m.LastStatus, a.StatusCode)
			}
			if tc.to == dlq {
				if m.DueAt != nil || a.NextAttemptAt != nil {
					t.Errorf("dead letter has due_at %v, next attempt %v", m.DueAt, a.NextAttemptAt)
				}
				if tc.attempt+1 == sub.MaxAttempts && !strings.Contains(m.LastError, "gave up after 3 attempts") {
					t.Errorf("last error %q does not say it gave up", m.LastError)
				}
				return
			}
			if m.DueAt == nil || a.NextAttemptAt == nil || !m.DueAt.Equal(*a.NextAttemptAt) {
				t.Fatalf("due_at %v, log next attempt %v: want both, equal", m.DueAt, a.NextAttemptAt)
			}
			if delay := m.DueAt.Sub(a.StartedAt); delay < tc.minDelay {
				t.Errorf("due %v after the attempt, want at least %v", delay, tc.minDelay)
			}
		})
	}
}

func TestGoneDisablesSubscription(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Ordered = true })
	first, second := e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`)
	e.publish(first, second)
	e.run(e.sender(rcv), "sender").waitHandled(t, 2, 30*time.Second)

	if n := len(rcv.Requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1: nothing after the 410", n)
	}
	dead := e.deliveries(e.kafka.Topics.DLQ)
	if len(dead[first.ID]) != 1 || len(dead[second.ID]) != 1 {
		t.Fatalf("dead letters: %d for the 410, %d for the next; want 1 each", len(dead[first.ID]), len(dead[second.ID]))
	}
	if got := dead[second.ID][0]; got.Attempt != 0 || !strings.Contains(got.LastError, "410") {
		t.Errorf("the unsent delivery: attempt %d, last error %q", got.Attempt, got.LastError)
	}
	if as := e.attempts(); len(as[first.ID]) != 1 || as[first.ID][0].StatusCode != 410 || len(as[second.ID]) != 0 {
		t.Errorf("log: %d attempts for the 410, %d for the unsent one", len(as[first.ID]), len(as[second.ID]))
	}
	var statuses []record.EndpointStatus
	for _, r := range e.read(e.kafka.Topics.EndpointStatus) {
		var st record.EndpointStatus
		if err := e.codecs.Status.Unmarshal(r.Value, &st); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) == sub.ID {
			statuses = append(statuses, st)
		}
	}
	if len(statuses) != 1 || !strings.Contains(statuses[0].DisabledReason, "410") || !statuses[0].SubscriptionUpdatedAt.Equal(sub.UpdatedAt) {
		t.Fatalf("want one status disabling the subscription as it was, giving 410 as the reason, got %+v", statuses)
	}
	got := lastState(t, e, sub.ID)
	if got.Enabled || !strings.Contains(got.DisabledReason, "410") || got.URL != sub.URL || len(got.Secrets) != 1 {
		t.Fatalf("the subscription as every reader sees it: %+v, want it disabled for the 410, its settings kept", got)
	}
}

func TestOrderedFIFOUnderFailures(t *testing.T) {
	e := newEnv(t)
	const n = 30
	failing := func(seq int) bool { return seq%4 == 1 }
	rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) {
		// Uneven response times would reorder concurrent requests.
		time.Sleep(time.Duration(rand.IntN(4)) * time.Millisecond)
		seq, _ := strconv.Atoi(r.URL.Query().Get("seq"))
		if failing(seq) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Ordered = true })
	ds := make([]record.Delivery, n)
	for i := range ds {
		ds[i] = e.delivery(sub, fmt.Sprintf(`{"seq":%d}`, i))
		ds[i].URL = fmt.Sprintf("%s/?seq=%d", rcv.URL, i)
	}
	e.publish(ds...)
	e.run(e.sender(rcv), "sender").waitHandled(t, n, 30*time.Second)

	reqs := rcv.Requests()
	if len(reqs) != n {
		t.Fatalf("receiver got %d requests, want %d", len(reqs), n)
	}
	for i, r := range reqs {
		if want := fmt.Sprintf(`{"seq":%d}`, i); string(r.Body) != want {
			t.Fatalf("request %d carried %s, want %s: not FIFO", i, r.Body, want)
		}
	}
	retried := e.retries()
	for i, d := range ds {
		if got := len(retried[d.ID]); got != map[bool]int{true: 1, false: 0}[failing(i)] {
			t.Errorf("seq %d handed to retry %d times", i, got)
		}
	}
}

func TestRateLimitAcrossSenders(t *testing.T) {
	e := newEnv(t)
	const (
		rate = 10
		n    = 36 // 3.5 s of sending
	)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.RateLimitPerSecond = rate })

	// Both senders must be in the group before any delivery is there, and
	// both must get some: spread the endpoint's deliveries over every
	// partition.
	senders := []*dispatch.Dispatcher{e.sender(rcv), e.sender(rcv)}
	for _, s := range senders {
		s.RateLimitWait = 20 * time.Second // no hand-off to the retry scheduler here
		e.run(s, "sender")
	}
	waitGroupMembers(t, e, e.kafka.Topics.Prefix+"sender", len(senders))
	manual, err := kafka.NewClient(e.kafka, testinfra.Logger(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer manual.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		d := e.delivery(sub, fmt.Sprintf(`{"n":%d}`, i))
		value, _ := e.codecs.Delivery.Marshal(&d)
		recs[i] = &kgo.Record{Topic: e.kafka.Topics.Deliveries, Partition: int32(i % int(e.kafka.Partitions)), Key: []byte(sub.ID), Value: value}
	}
	if err := manual.ProduceSync(e.ctx(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	reqs := rcv.WaitFor(t, n, 30*time.Second)

	span := reqs[n-1].At.Sub(reqs[0].At)
	observed := float64(n-1) / span.Seconds()
	t.Logf("%d requests in %v: %.2f/s", n, span.Round(time.Millisecond), observed)
	if observed < rate*0.9 || observed > rate*1.1 {
		t.Errorf("observed %.2f requests/s at the receiver, want %d within 10%%", observed, rate)
	}
	for i, s := range senders {
		if got := testutil.ToFloat64(s.Metrics.Attempts.WithLabelValues(record.OutcomeDelivered)); got == 0 {
			t.Errorf("sender %d delivered nothing: the limit was not shared", i)
		}
	}
}

// waitGroupMembers waits until group is stable with n members.
func waitGroupMembers(t *testing.T, e *env, group string, n int) {
	t.Helper()
	adm := kadm.NewClient(e.producer)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		described, err := adm.DescribeGroups(e.ctx(), group)
		if err == nil {
			if g, ok := described[group]; ok && g.State == "Stable" && len(g.Members) == n {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("group %s did not settle with %d members", group, n)
}

func TestRateLimitDeferralIsNotAnAttempt(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) {
		s.RateLimitPerSecond, s.Ordered, s.MaxAttempts = 1, true, 8
	})
	ds := make([]record.Delivery, 4)
	for i := range ds {
		ds[i] = e.delivery(sub, fmt.Sprintf(`{"n":%d}`, i))
		ds[i].Attempt = 2
	}
	e.publish(ds...)
	s := e.sender(rcv)
	s.RateLimitWait = 100 * time.Millisecond // less than the 1 s between two requests
	e.run(s, "sender").waitHandled(t, len(ds), 30*time.Second)

	if reqs := rcv.Requests(); len(reqs) != 1 || reqs[0].Header.Get("webhook-id") != ds[0].ID {
		t.Fatalf("receiver got %d requests, want only the first delivery", len(reqs))
	}
	log := e.attempts()
	if len(log) != 1 || len(log[ds[0].ID]) != 1 {
		t.Errorf("delivery log holds %d deliveries, want only the sent one", len(log))
	}
	retried := e.retries()
	var prev time.Time
	for i, d := range ds[1:] {
		got := retried[d.ID]
		if len(got) != 1 {
			t.Fatalf("delivery %d handed to retry %d times, want 1", i+1, len(got))
		}
		r := got[0]
		if r.Attempt != 2 || r.LastStatus != 0 || r.DueAt == nil {
			t.Errorf("delivery %d: attempt %d (want 2, unchanged), last status %d, due %v", i+1, r.Attempt, r.LastStatus, r.DueAt)
			continue
		}
		if !r.DueAt.After(prev) {
			t.Errorf("delivery %d due %v, not after the one before (%v): not spaced in order", i+1, r.DueAt, prev)
		}
		prev = *r.DueAt
	}
	if got := testutil.ToFloat64(s.Metrics.Deferred); got != 3 {
		t.Errorf("deferred metric %v, want 3", got)
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, statusHandler)
	sub, _ := e.subscribe(rcv.URL+"/status/204", []time.Duration{0})
	ok1, ok2, failing := e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`), e.delivery(sub, `{"n":3}`)
	failing.URL = rcv.URL + "/status/503"
	// The same delivery produced twice in a row, as a replay by mistake or
	// a producer retry would.
	e.publish(ok1, ok1, ok2, failing)
	first := e.sender(rcv)
	e.run(first, "first").waitHandled(t, 4, 30*time.Second)

	// A second group reads everything again from the start, like a
	// consumer whose offsets were reset: only the failed delivery, which was
	// never marked delivered, goes out again.
	second := e.sender(rcv)
	e.run(second, "second").waitHandled(t, 4, 30*time.Second)

	tests := []struct {
		name     string
		d        record.Delivery
		requests int
	}{
		{"delivered once despite two records and a reset", ok1, 1},
		{"delivered once despite a reset", ok2, 1},
		{"a failed delivery is not suppressed", failing, 2},
	}
	reqs := byID(rcv.Requests())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(reqs[tc.d.ID]); got != tc.requests {
				t.Errorf("receiver got %d requests, want %d", got, tc.requests)
			}
		})
	}
	if got := testutil.ToFloat64(first.Metrics.Suppressed); got != 1 {
		t.Errorf("first sender suppressed %v, want 1 (the repeat in its batch)", got)
	}
	if got := testutil.ToFloat64(second.Metrics.Suppressed); got != 3 {
		t.Errorf("second sender suppressed %v, want 3", got)
	}
}

func TestRedisDownPausesAndRecovers(t *testing.T) {
	e := newEnv(t)
	var down atomic.Bool
	down.Store(true)
	addr := e.rdb.Options().Addr
	flaky := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			return nil, errRedisDown
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	t.Cleanup(func() { _ = flaky.Close() })

	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0})
	ds := []record.Delivery{e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`), e.delivery(sub, `{"n":3}`)}
	e.publish(ds...)
	s := e.senderWith(rcv, flaky)
	run := e.run(s, "sender")

	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(s.Metrics.RedisErrors) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the marks were not asked for again while Redis was down (%v failures counted)", testutil.ToFloat64(s.Metrics.RedisErrors))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(rcv.Requests()); n != 0 || run.handled() != 0 {
		t.Fatalf("while Redis was down: %d requests sent, %d records handled; want none", n, run.handled())
	}

	down.Store(false)
	run.waitHandled(t, len(ds), 30*time.Second)
	reqs := byID(rcv.Requests())
	log := e.attempts()
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = e.keys + "delivered:" + d.ID
		if len(reqs[d.ID]) != 1 || len(log[d.ID]) != 1 {
			t.Errorf("delivery %d: %d requests, %d log records; want 1 each", i, len(reqs[d.ID]), len(log[d.ID]))
		}
	}
	if n, err := e.rdb.Exists(e.ctx(), ids...).Result(); err != nil || n != int64(len(ds)) {
		t.Errorf("%d of %d deliveries marked delivered in Redis (err %v)", n, len(ds), err)
	}
}

func TestInterruptedBatchWritesNoFalseOutcome(t *testing.T) {
	tests := []struct {
		name      string
		rateLimit int32
		hang      bool // the receiver holds the first request until the batch is cancelled
		delivered int  // deliveries the endpoint took before the cancel
	}{
		{"request in flight", 0, true, 0},
		{"waiting for the rate limit", 1, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.hang {
					cancel()
					<-r.Context().Done()
				}
				w.WriteHeader(http.StatusNoContent)
			})
			// At its last attempt, a retryable outcome written by mistake
			// would be a dead letter.
			sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) {
				s.MaxAttempts, s.Ordered, s.RateLimitPerSecond = 1, true, tc.rateLimit
			})
			ds := []record.Delivery{e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`)}
			e.publish(ds...)
			parts := e.partitions()
			if len(parts) != 1 {
				t.Fatalf("%d partitions hold the deliveries, want one", len(parts))
			}
			if !tc.hang {
				go func() {
					// The second delivery now waits about 1 s for its slot.
					rcv.WaitFor(t, 1, 10*time.Second)
					time.Sleep(200 * time.Millisecond)
					cancel()
				}()
			}
			s := e.sender(rcv)
			if err := runOn(ctx, s, parts[0], 1); !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v, want the interruption reported", err)
			}
			if f, want := parts[0].Finished(), int64(tc.delivered)-1; f != want {
				t.Errorf("records finished through offset %d, want %d: an interrupted delivery's offset must not be committed", f, want)
			}
			if n := len(rcv.Requests()); n != 1 {
				t.Errorf("receiver got %d requests, want 1", n)
			}
			if dead := e.deliveries(e.kafka.Topics.DLQ); len(dead) != 0 {
				t.Errorf("%d dead letters written for an interrupted batch", len(dead))
			}
			if retried := e.retries(); len(retried) != 0 {
				t.Errorf("%d retries written for an interrupted batch", len(retried))
			}
			log := e.attempts()
			if len(log) != tc.delivered {
				t.Errorf("delivery log holds %d deliveries, want %d", len(log), tc.delivered)
			}
			for id, as := range log {
				if len(as) != 1 || as[0].Outcome != record.OutcomeDelivered || id != ds[0].ID {
					t.Errorf("log of %s: %+v, want only the first delivery, delivered", id, as)
				}
			}
			marked, err := e.rdb.Exists(context.Background(), e.keys+"delivered:"+ds[0].ID).Result()
			if err != nil || marked != int64(tc.delivered) {
				t.Errorf("first delivery marked %d times (err %v), want %d: a redelivery must not send it again", marked, err, tc.delivered)
			}
		})
	}
}

func TestTraceContextTravels(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0})
	d := e.delivery(sub, `{"n":1}`)
	e.publish(d)
	parts := e.partitions()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled,
	})
	// What the consumer's tracing hook does with the record's headers.
	recs := parts[0].Next(e.ctx())
	recs[0].Context = trace.ContextWithSpanContext(context.Background(), sc)
	p := kafka.NewPartition(parts[0].Topic, parts[0].Partition, recs)
	if err := runOn(e.ctx(), e.sender(rcv), p, recs[0].Offset); err != nil {
		t.Fatal(err)
	}
	req := rcv.WaitFor(t, 1, 10*time.Second)[0]
	if got, want := req.Header.Get("traceparent"), "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01"; got != want {
		t.Errorf("traceparent %q, want %q", got, want)
	}
	if as := e.attempts()[d.ID]; len(as) != 1 || as[0].TraceID != sc.TraceID().String() {
		t.Errorf("delivery log trace id: %+v", as)
	}
}

func TestUndeliverable(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	live, _ := e.subscribe(rcv.URL, []time.Duration{0})
	off, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Enabled, s.DisabledReason = false, "paused by its owner" })
	// Disabled before reasons were always written: the dead letter still says something.
	mute, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Enabled, s.DisabledReason = false, "" })
	ghost := &record.Subscription{ID: "sub_never_created", Tenant: "acme", URL: rcv.URL}
	good, toOff, toGhost, toMute := e.delivery(live, `{"n":1}`), e.delivery(off, `{"n":2}`), e.delivery(ghost, `{"n":3}`), e.delivery(mute, `{"n":4}`)
	e.publish(good, toOff, toGhost, toMute)
	garbage := &kgo.Record{Topic: e.kafka.Topics.Deliveries, Key: []byte(live.ID), Value: []byte("not avro")}
	if err := e.producer.ProduceSync(e.ctx(), garbage).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.run(e.sender(rcv), "sender").waitHandled(t, 5, 30*time.Second)

	if reqs := rcv.Requests(); len(reqs) != 1 || reqs[0].Header.Get("webhook-id") != good.ID {
		t.Fatalf("receiver got %d requests, want only the live subscription's", len(reqs))
	}
	var undecodable []*kgo.Record
	byDelivery := map[string]record.Delivery{}
	for _, r := range e.read(e.kafka.Topics.DLQ) {
		var d record.Delivery
		if err := e.codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
			undecodable = append(undecodable, r)
			continue
		}
		byDelivery[d.ID] = d
	}
	tests := []struct {
		name   string
		d      record.Delivery
		reason string
	}{
		{"disabled subscription", toOff, "subscription disabled: paused by its owner"},
		{"unknown subscription", toGhost, "subscription deleted"},
		{"disabled without a recorded reason", toMute, "subscription disabled: no reason recorded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := byDelivery[tc.d.ID]
			if !ok || got.LastError != tc.reason || got.Attempt != 0 {
				t.Errorf("dead letter %+v, want one with reason %q and no attempt", got, tc.reason)
			}
		})
	}
	t.Run("undecodable record", func(t *testing.T) {
		if len(undecodable) != 1 || string(undecodable[0].Value) != "not avro" {
			t.Fatalf("%d undecodable dead letters, want the record as it was", len(undecodable))
		}
		if h := undecodable[0].Headers; len(h) == 0 || h[0].Key != wire.HeaderError || len(h[0].Value) == 0 {
			t.Errorf("headers %v, want the reason in %s", h, wire.HeaderError)
		}
	})
	if _, ok := byDelivery[good.ID]; ok {
		t.Error("the delivered delivery was dead-lettered")
	}
}

func TestRebalanceHandsOverWithoutLoss(t *testing.T) {
	e := newEnv(t)
	const (
		subsPerPartition = 2
		perSub           = 100
	)
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(30 * time.Millisecond) // about 3 s of work per ordered endpoint
		w.WriteHeader(http.StatusNoContent)
	})
	// Ordered endpoints on every partition, so that whichever partitions
	// move to the second sender are mid-stream.
	partitions := int(e.kafka.Partitions)
	subs := make([]*record.Subscription, subsPerPartition*partitions)
	for i := range subs {
		subs[i], _ = e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Ordered = true })
	}
	manual, err := kafka.NewClient(e.kafka, testinfra.Logger(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer manual.Close()
	var recs []*kgo.Record
	var ids []string
	subOf := map[string]string{}
	for n := range perSub {
		for i, sub := range subs {
			d := e.delivery(sub, fmt.Sprintf(`{"seq":%d}`, n))
			ids, subOf[d.ID] = append(ids, d.ID), sub.ID
			value, _ := e.codecs.Delivery.Marshal(&d)
			recs = append(recs, &kgo.Record{Topic: e.kafka.Topics.Deliveries, Partition: int32(i % partitions), Key: []byte(sub.ID), Value: value})
		}
	}
	if err := manual.ProduceSync(e.ctx(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	first := e.run(e.sender(rcv), "sender")
	rcv.WaitFor(t, 3*len(subs), 30*time.Second)
	second := e.run(e.sender(rcv), "sender")
	reqs := rcv.WaitFor(t, len(ids), 40*time.Second)
	waitCommitted(t, e, e.kafka.Topics.Prefix+"sender")

	if second.handled() == 0 {
		t.Fatalf("the second sender took over nothing (first handled %d)", first.handled())
	}
	got := byID(rcv.Requests())
	for _, id := range ids {
		if len(got[id]) != 1 {
			t.Errorf("%s sent %d times, want once", id, len(got[id]))
		}
	}
	next := map[string]int{} // per subscription, the seq expected next
	for _, r := range reqs {
		var seq int
		if _, err := fmt.Sscanf(string(r.Body), `{"seq":%d}`, &seq); err != nil {
			t.Fatal(err)
		}
		sub := subOf[r.Header.Get("webhook-id")]
		if seq != next[sub] {
			t.Fatalf("subscription %s got seq %d, want %d: FIFO broken across the hand-over", sub, seq, next[sub])
		}
		next[sub]++
	}
	if dead, retried := e.deliveries(e.kafka.Topics.DLQ), e.retries(); len(dead)+len(retried) != 0 {
		t.Errorf("%d dead letters and %d retries written by a clean hand-over", len(dead), len(retried))
	}
}
