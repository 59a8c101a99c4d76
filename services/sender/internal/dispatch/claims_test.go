package dispatch_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/freeport"
	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// TestClaimedDeliveriesWaitForIngest: the pipeline's copy of a delivery
// that ingest claimed for immediate mode reaches the sender while that
// attempt is under way. It waits, without holding up another endpoint's
// delivery of the same fetch, and then goes as the claim resolved:
// dropped when ingest delivered it, moved on as attempt 1 to a retry tier
// (not sent) when ingest's attempt failed, sent when the claim expired
// (ingest died mid-attempt). Ingest's attempt counts toward the
// endpoint's health: delivered, it ends a streak counted before (and
// hookline.endpoint.recovered says so); failed, it adds to the streak.
func TestClaimedDeliveriesWaitForIngest(t *testing.T) {
	tests := []struct {
		name       string
		resolve    func(t *testing.T, claims *claim.Store, id string)
		ttl        time.Duration
		sent       int // requests the receiver gets for the claimed delivery
		retried    bool
		suppressed float64
		resolution string // hookline_sender_claims_resolved_total's label
		streak     int64  // the endpoint's failures counted before
		after      int64  // and after
		recovered  bool   // hookline.endpoint.recovered is written
	}{
		{name: "delivered by ingest: dropped", ttl: time.Minute, suppressed: 1, resolution: "delivered", streak: health.FailingAfter, recovered: true, resolve: func(t *testing.T, c *claim.Store, id string) {
			if err := c.Deliver(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "failed in ingest: attempt 2 from a retry tier", ttl: time.Minute, retried: true, resolution: "failed", streak: 2, after: 3, resolve: func(t *testing.T, c *claim.Store, id string) {
			res := deliver.Result{URL: "https://127.0.0.1/x", Class: deliver.Retryable, Status: 503, Err: "HTTP 503", Duration: 40 * time.Millisecond}
			if err := c.Fail(t.Context(), id, claim.FailureOf(res, time.Now())); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "claim expired (ingest died): sent", ttl: 1500 * time.Millisecond, sent: 1, resolution: "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rcv := testreceiver.New(t, nil)
			claimedSub, _ := e.subscribe(rcv.URL+"/claimed", []time.Duration{0})
			otherSub, _ := e.subscribe(rcv.URL+"/other", []time.Duration{0})
			claims := claim.New(e.rdb, e.keys+"claim:")
			tracker := health.New(e.rdb, e.keys+"health:", time.Hour)
			for i := range tc.streak {
				if _, err := tracker.Failure(t.Context(), claimedSub.ID, health.Failed{At: time.Now(), Status: 502, Error: "HTTP 502 #" + strconv.FormatInt(i, 10)}); err != nil {
					t.Fatal(err)
				}
			}
			claimed, other := e.delivery(claimedSub, `{"n":1}`), e.delivery(otherSub, `{"n":2}`)
			if taken, err := claims.Take(t.Context(), []string{claimed.ID}, tc.ttl); err != nil || !taken[0] {
				t.Fatalf("take claim: %v %v", taken, err)
			}
			s := e.sender(rcv)
			s.Health = tracker
			run := e.run(s, "sender")
			e.publishImmediate(claimed)
			e.publish(other)

			// The other endpoint's delivery goes while the claimed one waits.
			rcv.WaitFor(t, 1, 30*time.Second)
			time.Sleep(500 * time.Millisecond) // ticks in which the claim is looked at again
			if got := byID(rcv.Requests()); len(got[claimed.ID]) != 0 || len(got[other.ID]) != 1 {
				t.Fatalf("while the claim is pending: %d requests of the claimed delivery (want 0), %d of the other (want 1)",
					len(got[claimed.ID]), len(got[other.ID]))
			}
			if got := testutil.ToFloat64(s.Metrics.ClaimWaiting); got != 1 {
				t.Errorf("claim_waiting %v while the claim is pending, want 1", got)
			}
			if tc.resolve != nil {
				tc.resolve(t, claims, claimed.ID)
			}
			run.waitHandled(t, 2, 30*time.Second)

			if got := len(byID(rcv.Requests())[claimed.ID]); got != tc.sent {
				t.Errorf("the claimed delivery was sent %d times, want %d", got, tc.sent)
			}
			retries := e.retries()[claimed.ID]
			switch {
			case tc.retried && (len(retries) != 1 || retries[0].Attempt != 1 || retries[0].LastStatus != 503 || retries[0].DueAt == nil):
				t.Errorf("retry tiers hold %+v, want the delivery once as attempt 1 after a 503, with a due time", retries)
			case !tc.retried && len(retries) != 0:
				t.Errorf("retry tiers hold %+v, want nothing", retries)
			}
			// Ingest writes its attempt to the log; the sender adds one only
			// when it sent the delivery itself.
			if got := len(e.attempts()[claimed.ID]); got != tc.sent {
				t.Errorf("the sender logged %d attempts of the claimed delivery, want %d", got, tc.sent)
			}
			if got := testutil.ToFloat64(s.Metrics.Suppressed); got != tc.suppressed {
				t.Errorf("suppressed %v, want %v", got, tc.suppressed)
			}
			if got := testutil.ToFloat64(s.Metrics.Claims.WithLabelValues(tc.resolution)); got != 1 {
				t.Errorf("claims resolved %s: %v, want 1", tc.resolution, got)
			}
			if got := testutil.CollectAndCount(s.Metrics.Claims); got != 3 {
				t.Errorf("%d claims_resolved series, want 3", got)
			}
			var resolved float64
			for _, r := range []string{"delivered", "failed", "expired"} {
				resolved += testutil.ToFloat64(s.Metrics.Claims.WithLabelValues(r))
			}
			if resolved != 1 {
				t.Errorf("%v claims resolved in all, want 1", resolved)
			}
			if got := testutil.ToFloat64(s.Metrics.ClaimWaiting); got != 0 {
				t.Errorf("claim_waiting %v once the claim resolved, want 0", got)
			}
			st, err := tracker.Get(t.Context(), claimedSub.ID)
			if err != nil || st.Failures != tc.after {
				t.Errorf("the endpoint's streak: %d failures (%v), want %d", st.Failures, err, tc.after)
			}
			recovered := onlyRecovered(t, e)
			switch {
			case tc.recovered && (len(recovered) != 1 || recovered[0].SubscriptionID != claimedSub.ID || recovered[0].ConsecutiveFailures != tc.streak):
				t.Errorf("recovered events %+v, want one for the %d failures before", recovered, tc.streak)
			case !tc.recovered && len(recovered) != 0:
				t.Errorf("recovered events %+v, want none", recovered)
			}
		})
	}
}

// TestClaimsUnavailableHoldDeliveries: while the claims cannot be read
// (Redis refusing), a fresh delivery of an immediate-mode event is not
// sent (ingest may be sending
// it); once they can, it goes, once.
func TestClaimsUnavailableHoldDeliveries(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0})
	gate := newRedisGate(e.keys+"claim:", true, "mget")
	rdb := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	rdb.AddHook(gate)
	run := e.run(e.senderWith(rcv, rdb), "sender")
	t.Cleanup(gate.open)

	d := e.delivery(sub, `{}`)
	e.publishImmediate(d)
	gate.waitFor(t, d.ID)
	time.Sleep(500 * time.Millisecond) // ticks that look again, and fail
	if n := len(rcv.Requests()); n != 0 {
		t.Fatalf("sent %d requests while the claims were unreadable, want none", n)
	}
	gate.open()
	run.waitHandled(t, 1, 30*time.Second)
	if got := len(byID(rcv.Requests())[d.ID]); got != 1 {
		t.Errorf("sent %d times once the claims were readable, want once", got)
	}
}

// TestOnlyImmediateDeliveriesReadClaims: a delivery without the
// immediate-mode mark (wire.HeaderImmediate: queue mode, the bridge, a
// ping) has no claim, so the sender never reads one for it. With the
// claims in a Redis that is not there, an unmarked fresh delivery is sent
// at once, without a failed Redis call; a marked one of the same fetch
// waits for its claim.
func TestOnlyImmediateDeliveriesReadClaims(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0})
	port, err := freeport.Ports(1) // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	gone := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = gone.Close() })
	s := e.sender(rcv)
	s.Claims = claim.New(gone, e.keys+"claim:")
	e.run(s, "sender")

	queued := e.delivery(sub, `{"n":1}`)
	e.publish(queued)
	rcv.WaitFor(t, 1, 30*time.Second)
	if got := testutil.ToFloat64(s.Metrics.RedisErrors); got != 0 {
		t.Errorf("%v failed Redis calls for a delivery without the mark, want none (no claim read)", got)
	}

	immediate := e.delivery(sub, `{"n":2}`)
	e.publishImmediate(immediate)
	held := func() bool {
		return testutil.ToFloat64(s.Metrics.RedisErrors) > 0 && testutil.ToFloat64(s.Metrics.ClaimWaiting) == 1
	}
	for deadline := time.Now().Add(30 * time.Second); !held() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !held() {
		t.Fatalf("redis errors %v, claim_waiting %v: want the marked delivery's claim read, failing, and it held",
			testutil.ToFloat64(s.Metrics.RedisErrors), testutil.ToFloat64(s.Metrics.ClaimWaiting))
	}
	time.Sleep(300 * time.Millisecond) // ticks that look at the claim again, and fail
	got := byID(rcv.Requests())
	if len(got[queued.ID]) != 1 || len(got[immediate.ID]) != 0 {
		t.Errorf("sent the unmarked delivery %d times (want 1) and the marked one %d times (want 0: its claim is unreadable)",
			len(got[queued.ID]), len(got[immediate.ID]))
	}
}
