package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// batchOf is a subscription option: batches of up to maxEvents, waiting
// up to maxWait.
func batchOf(maxEvents int32, maxWait time.Duration, ordered bool) func(*record.Subscription) {
	return func(s *record.Subscription) {
		s.Batch = &record.Batch{MaxEvents: maxEvents, MaxWaitMS: int32(maxWait.Milliseconds())}
		s.Ordered = ordered
	}
}

// elements decodes a batch request's body: one JSON object per delivery.
func elements(t *testing.T, body []byte) []json.RawMessage {
	t.Helper()
	var got []json.RawMessage
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("batch body %.80q is not a JSON array: %v", body, err)
	}
	return got
}

func TestBatchRequests(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		maxEvents int32
		maxWait   time.Duration // long ones show that full batches do not wait
		ordered   bool
		sizes     []int // of the requests, in arrival order when ordered
	}{
		{"25 events in batches of 10: three requests", 25, 10, 200 * time.Millisecond, false, []int{10, 10, 5}},
		{"full batches go without waiting for the window", 20, 10, time.Minute, false, []int{10, 10}},
		{"ordered: FIFO across batches", 25, 10, 0, true, []int{10, 10, 5}},
		{"one event per batch", 3, 1, time.Minute, false, []int{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rcv := testreceiver.New(t, nil)
			sub, secrets := e.subscribe(rcv.URL+"/hooks", []time.Duration{0}, batchOf(tc.maxEvents, tc.maxWait, tc.ordered))
			ds := make([]record.Delivery, tc.n)
			order := map[string]int{} // payload -> position
			for i := range ds {
				ds[i] = e.delivery(sub, fmt.Sprintf(`{"id":"evt_%d","type":"order.created","data":{"seq":%d}}`, i, i))
				order[ds[i].Payload] = i
			}
			e.publish(ds...)
			first := e.sender(rcv)
			e.run(first, "first").waitHandled(t, tc.n, 30*time.Second)

			reqs := rcv.Requests()
			if len(reqs) != len(tc.sizes) {
				t.Fatalf("receiver got %d requests, want %d", len(reqs), len(tc.sizes))
			}
			seen := map[int]int{}
			var sizes, sequence []int
			for _, req := range reqs {
				if err := (&signature.Verifier{Secrets: secrets}).Verify(req.Header, req.Body); err != nil {
					t.Errorf("the batch's signature does not verify over its body: %v", err)
				}
				els := elements(t, req.Body)
				sizes = append(sizes, len(els))
				var ids []string
				for _, el := range els {
					pos, ok := order[string(el)]
					if !ok {
						t.Fatalf("batch element %s is none of the payloads", el)
					}
					seen[pos]++
					sequence = append(sequence, pos)
					ids = append(ids, ds[pos].ID)
				}
				if id := req.Header.Get(signature.HeaderID); !strings.HasPrefix(id, "bat_") || slices.Contains(ids, id) {
					t.Errorf("webhook-id %q, want a bat_ id of its own", id)
				}
			}
			if !tc.ordered {
				slices.Sort(sizes)
				slices.Reverse(sizes)
			}
			if !slices.Equal(sizes, tc.sizes) {
				t.Errorf("batch sizes %v, want %v", sizes, tc.sizes)
			}
			for i := range ds {
				if seen[i] != 1 {
					t.Errorf("delivery %d sent %d times, want once", i, seen[i])
				}
			}
			if tc.ordered && !slices.IsSorted(sequence) {
				t.Errorf("deliveries arrived in the order %v: not FIFO", sequence)
			}
			log := e.attempts()
			for i, d := range ds {
				if as := log[d.ID]; len(as) != 1 || as[0].Outcome != record.OutcomeDelivered || as[0].StatusCode != 204 {
					t.Errorf("delivery %d: log %+v, want one delivered attempt", i, as)
				}
			}

			// Read again from the start by another group, as after a
			// reset: every delivery is marked, nothing goes out again.
			second := e.sender(rcv)
			e.run(second, "second").waitHandled(t, tc.n, 30*time.Second)
			if got := len(rcv.Requests()); got != len(tc.sizes) {
				t.Errorf("receiver got %d requests after a re-read, want still %d", got, len(tc.sizes))
			}
			if got := testutil.ToFloat64(second.Metrics.Suppressed); got != float64(tc.n) {
				t.Errorf("re-read suppressed %v deliveries, want %d", got, tc.n)
			}
		})
	}
}

func TestBatchLoneEventWaitsForItsWindow(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	const window = 1500 * time.Millisecond
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, batchOf(10, window, false))
	plain, _ := e.subscribe(rcv.URL, []time.Duration{0})
	run := e.run(e.sender(rcv), "sender")
	// A first delivery makes sure the sender is consuming before the clock
	// starts.
	e.publish(e.delivery(plain, `{"warm":"up"}`))
	run.waitHandled(t, 1, 30*time.Second)

	lone := e.delivery(sub, `{"n":1}`)
	published := time.Now().Truncate(time.Millisecond) // as Kafka keeps timestamps
	e.publish(lone)
	req := rcv.WaitFor(t, 2, 30*time.Second)[1]
	if waited := req.At.Sub(published); waited < window {
		t.Errorf("the lone event went out %v after it was published, want its %v window first", waited, window)
	}
	if els := elements(t, req.Body); len(els) != 1 || string(els[0]) != lone.Payload {
		t.Errorf("request body %s, want an array of the one event", req.Body)
	}
	run.waitHandled(t, 2, 10*time.Second)
}

// TestBatchWindowHoldsUpNoOtherEndpoint: while a batch waits for its
// window, a plain subscription's delivery on the same partition goes out,
// and a later delivery of the batching subscription joins the batch.
func TestBatchWindowHoldsUpNoOtherEndpoint(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	batched, _ := e.subscribe(rcv.URL+"/batched", []time.Duration{0}, batchOf(10, 5*time.Second, false))
	plain, _ := e.subscribe(rcv.URL+"/plain", []time.Duration{0})
	run := e.run(e.sender(rcv), "sender")
	e.publish(e.delivery(plain, `{"warm":"up"}`))
	run.waitHandled(t, 1, 30*time.Second)

	// Every record is keyed by the batching subscription: one partition.
	samePartition := func(d record.Delivery) {
		v, err := e.codecs.Delivery.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Topic: e.kafka.Topics.Deliveries, Key: []byte(batched.ID), Value: v}
		if err := e.producer.ProduceSync(e.ctx(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	first, other, second := e.delivery(batched, `{"n":1}`), e.delivery(plain, `{"n":2}`), e.delivery(batched, `{"n":3}`)
	samePartition(first)
	time.Sleep(300 * time.Millisecond) // so the next records come in later fetches
	samePartition(other)
	time.Sleep(300 * time.Millisecond)
	samePartition(second)

	reqs := rcv.WaitFor(t, 3, 30*time.Second)
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3: the warm-up, the plain delivery, one batch", len(reqs))
	}
	if got := string(reqs[1].Body); got != other.Payload {
		t.Errorf("second request %s, want the plain delivery before the batch's window closes", got)
	}
	if els := elements(t, reqs[2].Body); len(els) != 2 || string(els[0]) != first.Payload || string(els[1]) != second.Payload {
		t.Errorf("batch %s, want both batching deliveries in one request", reqs[2].Body)
	}
	// The records More took are handled with the batch (the handled count
	// only sees the first fetch's): each gets its attempt in the log.
	deadline := time.Now().Add(30 * time.Second)
	for len(e.attempts()) < 4 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if log := e.attempts(); len(log) != 4 {
		t.Errorf("%d deliveries in the log, want 4", len(log))
	}
}

func TestBatchInterruptedInItsWindowSendsNothing(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, batchOf(10, time.Minute, false))
	e.publish(e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`))
	parts := e.partitions()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := runOn(ctx, e.sender(rcv), parts[0], 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want the interruption reported", err)
	}
	if f := parts[0].Finished(); f >= 0 {
		t.Errorf("records finished through offset %d, want none: their offsets must not be committed", f)
	}
	if n := len(rcv.Requests()); n != 0 {
		t.Errorf("receiver got %d requests, want none", n)
	}
	if log, dead, retried := e.attempts(), e.deliveries(e.kafka.Topics.DLQ), e.retries(); len(log)+len(dead)+len(retried) != 0 {
		t.Errorf("an abandoned window wrote %d attempts, %d dead letters, %d retries; want nothing", len(log), len(dead), len(retried))
	}
}

// TestBatchFailures: every delivery of a failed batch gets its own attempt
// with the request's status, and moves on by itself.
func TestBatchFailures(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, statusHandler)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, batchOf(10, 0, false)) // MaxAttempts 3
	tests := []struct {
		name    string
		path    string
		attempt int32 // attempts already made
		outcome string
		dlq     bool
		retried bool
	}{
		{"503: each delivery to the retry tier", "/status/503", 0, record.OutcomeRetrying, false, true},
		{"503 at a delivery's last attempt: that one dead-lettered", "/status/503", 2, record.OutcomeDeadLettered, true, false},
		{"400: each delivery dead-lettered", "/status/400", 0, record.OutcomeDeadLettered, true, false},
		{"204: each delivered", "/status/204", 1, record.OutcomeDelivered, false, false},
	}
	const each = 3
	ds := make([][]record.Delivery, len(tests))
	var all []record.Delivery
	for i, tc := range tests {
		for j := range each {
			d := e.delivery(sub, fmt.Sprintf(`{"case":%d,"n":%d}`, i, j))
			d.URL, d.Attempt = rcv.URL+tc.path, tc.attempt
			ds[i] = append(ds[i], d)
		}
		all = append(all, ds[i]...)
	}
	// The two 503 cases share a URL: they go in one request, and each
	// delivery's own attempt count decides where it goes next.
	e.publish(all...)
	e.run(e.sender(rcv), "sender").waitHandled(t, len(all), 30*time.Second)

	if got := len(rcv.Requests()); got != 3 {
		t.Errorf("receiver got %d requests, want 3: one per URL", got)
	}
	log, dead, retried := e.attempts(), e.deliveries(e.kafka.Topics.DLQ), e.retries()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for j, d := range ds[i] {
				as := log[d.ID]
				if len(as) != 1 || as[0].Outcome != tc.outcome || as[0].Attempt != tc.attempt+1 || as[0].RequestBytes != int64(len(d.Payload)) {
					t.Errorf("delivery %d: log %+v, want one %s attempt %d carrying its own bytes", j, as, tc.outcome, tc.attempt+1)
				}
				if got := len(dead[d.ID]) == 1; got != tc.dlq {
					t.Errorf("delivery %d: %d dead letters, want dead-lettered %v", j, len(dead[d.ID]), tc.dlq)
				}
				if got := len(retried[d.ID]) == 1; got != tc.retried {
					t.Errorf("delivery %d: %d retries, want retried %v", j, len(retried[d.ID]), tc.retried)
				}
			}
		})
	}
}

func TestBatchGoneDisablesSubscription(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, batchOf(2, 0, true))
	ds := []record.Delivery{e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`), e.delivery(sub, `{"n":3}`)}
	e.publish(ds...)
	e.run(e.sender(rcv), "sender").waitHandled(t, len(ds), 30*time.Second)

	if n := len(rcv.Requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1: nothing after the 410", n)
	}
	dead, log := e.deliveries(e.kafka.Topics.DLQ), e.attempts()
	for i, d := range ds {
		sent := i < 2
		if len(dead[d.ID]) != 1 || (len(log[d.ID]) == 1) != sent {
			t.Errorf("delivery %d: %d dead letters, %d attempts; want dead-lettered, attempted %v", i, len(dead[d.ID]), len(log[d.ID]), sent)
		}
	}
	if got := lastState(t, e, sub.ID); got.Enabled || !strings.Contains(got.DisabledReason, "410") {
		t.Errorf("subscription enabled %v (%q), want disabled by the 410", got.Enabled, got.DisabledReason)
	}
}

// TestBatchTakesOneRateLimitSlot: a batch request takes one slot of the
// endpoint's rate limit, whatever its size.
func TestBatchTakesOneRateLimitSlot(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	const rate = 2
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, batchOf(5, 0, true), func(s *record.Subscription) { s.RateLimitPerSecond = rate })
	ds := make([]record.Delivery, 15)
	for i := range ds {
		ds[i] = e.delivery(sub, fmt.Sprintf(`{"n":%d}`, i))
	}
	e.publish(ds...)
	s := e.sender(rcv)
	e.run(s, "sender").waitHandled(t, len(ds), 30*time.Second)

	reqs := rcv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3 batches", len(reqs))
	}
	for i := 1; i < len(reqs); i++ {
		// Slots are 500 ms apart on Redis's clock; allow for the two clocks
		// and the network.
		if gap := reqs[i].At.Sub(reqs[i-1].At); gap < time.Second/rate-50*time.Millisecond {
			t.Errorf("requests %d and %d %v apart, want the rate limit's %v", i-1, i, gap, time.Second/rate)
		}
	}
	if got := testutil.ToFloat64(s.Metrics.Deferred); got != 0 {
		t.Errorf("%v deliveries deferred, want none: three slots fit in the wait", got)
	}
}

// lastState is a subscription as a view reading both of its topics
// from the start sees it: its owner's latest record with Hookline's
// status applied, what every service (restarted or not) agrees on.
func lastState(t *testing.T, e *env, id string) record.Subscription {
	t.Helper()
	v := subscription.NewView(e.kafka.Topics, e.codecs, testinfra.Logger())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx, e.kafka) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := v.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	sub, ok := v.Get(id)
	if !ok {
		t.Fatalf("no subscription %s", id)
	}
	return *sub
}
