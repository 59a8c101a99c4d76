package dispatch_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// A delivery the sender hands on to a retry tier (a failed attempt, a
// park) can come back from the retry service while the record it came
// from is still held, its outcome not all written: the endpoint health or
// parked tail write waits for Redis (restarting), or the delivery log's
// partition for a new leader. The copy is the delivery's next life, not a
// repeat of the one held: it must be sent. The sender dropped it as a
// repeat and finished its record, and the delivery was lost (the fault
// suite lost one at a Redis restart, and two after a broker was killed).
// These tests hold the Redis write at the door, so the copy surely comes
// back inside that window.

// TestRetryBackWhileItsAttemptIsWrittenIsSent: a retry record released
// while its failed attempt waits for the endpoint health write is sent.
func TestRetryBackWhileItsAttemptIsWrittenIsSent(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0})
	gate := newRedisGate(e.keys+"health:", false, "evalsha", "eval")
	rdb := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	rdb.AddHook(gate)
	s := e.senderWith(rcv, rdb)
	s.Health = health.New(rdb, e.keys+"health:", time.Hour)
	run := e.run(s, "sender")
	t.Cleanup(gate.open) // after the sender's cleanup, so it runs first

	d := e.delivery(sub, `{"n":1}`)
	e.toPartition0(d)
	gate.waitFor(t, sub.ID) // the failure is being counted: the attempt is not done
	var retry []*kgo.Record
	waitUntil(t, "the retry record", func() bool {
		retry = e.tierRecords()
		return len(retry) == 1
	})
	e.unpark(retry) // released by the retry service: due after 1 s
	waitUntil(t, "the retry sent or dropped", func() bool {
		return len(rcv.Requests()) >= 2 || testutil.ToFloat64(s.Metrics.Suppressed) > 0
	})
	gate.open()
	run.waitHandled(t, 2, 30*time.Second)

	if n := len(byID(rcv.Requests())[d.ID]); n != 2 {
		t.Errorf("delivery sent %d times, want 2: its retry came back while its first attempt was being written", n)
	}
	if got := testutil.ToFloat64(s.Metrics.Suppressed); got != 0 {
		t.Errorf("suppressed %v, want 0: the retry is no repeat", got)
	}
	log := e.attempts()[d.ID]
	if len(log) != 2 || log[0].Outcome != record.OutcomeRetrying || log[1].Attempt != 2 || log[1].Outcome != record.OutcomeDelivered {
		t.Errorf("delivery log %+v, want attempt 1 retrying, attempt 2 delivered", log)
	}
}

// TestParkedBackWhileItsTailIsSavedIsSent: an ordered subscription's
// parked deliveries released while the parked tail's save waits for Redis
// are all sent, in order.
func TestParkedBackWhileItsTailIsSavedIsSent(t *testing.T) {
	e := newEnv(t)
	g := newGate(t, "/")
	var calls atomic.Int32
	rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 { // only the first waits: the backlog builds behind it
			g.respond(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Ordered = true })
	tails := newRedisGate(e.keys+"parked:", false, "set")
	rdb := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	rdb.AddHook(tails)
	s := e.senderWith(rcv, rdb)
	s.BacklogWait = 100 * time.Millisecond
	run := e.run(s, "sender")
	t.Cleanup(tails.open)

	ds := make([]record.Delivery, 6)
	for i := range ds {
		ds[i] = e.delivery(sub, fmt.Sprintf(`{"seq":%d}`, i))
	}
	e.toPartition0(ds...) // 0 held in flight, the end of the queue parked
	tails.waitFor(t, sub.ID)
	_, parked := e.parked() // acknowledged: the tail is saved after the acks
	if len(parked) == 0 {
		t.Fatal("the tail is being saved, but nothing is parked")
	}
	e.unpark(parked)
	g.release()
	waitUntil(t, "every delivery sent or dropped", func() bool {
		return len(rcv.Requests()) >= len(ds) || testutil.ToFloat64(s.Metrics.Suppressed) > 0
	})
	tails.open()
	run.waitHandled(t, len(ds)+len(parked), 30*time.Second)

	reqs := rcv.Requests()
	if len(reqs) != len(ds) || testutil.ToFloat64(s.Metrics.Suppressed) != 0 {
		t.Fatalf("%d of %d deliveries sent, %v dropped as repeats: the %d parked came back while their tail was being saved",
			len(reqs), len(ds), testutil.ToFloat64(s.Metrics.Suppressed), len(parked))
	}
	for i, r := range reqs {
		if want := fmt.Sprintf(`{"seq":%d}`, i); string(r.Body) != want {
			t.Errorf("request %d carried %s, want %s", i, r.Body, want)
		}
	}
}

// tierRecords returns every record written to the retry tiers so far.
func (e *env) tierRecords() []*kgo.Record {
	e.t.Helper()
	var out []*kgo.Record
	for _, tier := range e.schedule.Tiers() {
		out = append(out, e.read(e.kafka.Topics.Retry(tier))...)
	}
	return out
}
