package dispatch_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/sender/internal/dispatch"
)

// gate holds the requests of some paths until it is opened (or the
// client gives up), answering 204 then; other paths are answered at once.
type gate struct {
	held  []string // path prefixes held
	open  chan struct{}
	once  sync.Once
	inMu  sync.Mutex
	inNow int // requests held right now
}

func newGate(t *testing.T, held ...string) *gate {
	g := &gate{held: held, open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) holding() int {
	g.inMu.Lock()
	defer g.inMu.Unlock()
	return g.inNow
}

func (g *gate) respond(w http.ResponseWriter, r *http.Request) {
	for _, p := range g.held {
		if strings.HasPrefix(r.URL.Path, p) {
			g.inMu.Lock()
			g.inNow++
			g.inMu.Unlock()
			select {
			case <-g.open:
			case <-r.Context().Done():
			}
			g.inMu.Lock()
			g.inNow--
			g.inMu.Unlock()
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// toPartition0 produces deliveries to partition 0 of the deliveries topic,
// whatever their endpoint: neighbours sharing one partition.
func (e *env) toPartition0(ds ...record.Delivery) {
	e.t.Helper()
	manual, err := kafka.NewClient(e.kafka, testinfra.Logger(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer manual.Close()
	recs := make([]*kgo.Record, len(ds))
	for i := range ds {
		value, err := e.codecs.Delivery.Marshal(&ds[i])
		if err != nil {
			e.t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: e.kafka.Topics.Deliveries, Partition: 0, Key: []byte(ds[i].SubscriptionID), Value: value}
	}
	if err := manual.ProduceSync(e.ctx(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// parked reads the deliveries parked in the retry tiers so far, in the
// order the retry service would release each tier's partition 0, with
// their records.
func (e *env) parked() ([]record.Delivery, []*kgo.Record) {
	e.t.Helper()
	var ds []record.Delivery
	var recs []*kgo.Record
	for _, tier := range e.schedule.Tiers() {
		for _, r := range e.read(e.kafka.Topics.Retry(tier)) {
			if !slices.ContainsFunc(r.Headers, func(h kgo.RecordHeader) bool { return h.Key == wire.HeaderParked }) {
				continue
			}
			var d record.Delivery
			if err := e.codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
				e.t.Fatal(err)
			}
			ds, recs = append(ds, d), append(recs, r)
		}
	}
	return ds, recs
}

// unpark does what the retry service does with parked records once due:
// produces them back to the deliveries topic, in order, headers kept.
func (e *env) unpark(recs []*kgo.Record) {
	e.t.Helper()
	ds := make([]record.Delivery, len(recs))
	manual, err := kafka.NewClient(e.kafka, testinfra.Logger(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer manual.Close()
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		if err := e.codecs.Delivery.Unmarshal(r.Value, &ds[i]); err != nil {
			e.t.Fatal(err)
		}
		ds[i].DueAt = nil
		value, _ := e.codecs.Delivery.Marshal(&ds[i])
		out[i] = &kgo.Record{Topic: e.kafka.Topics.Deliveries, Partition: 0, Key: r.Key, Value: value, Headers: r.Headers}
	}
	if err := manual.ProduceSync(e.ctx(), out...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// releaseParked plays the retry service until the receiver has n
// requests: it releases each parked record once, as they appear (a
// delivery parked again comes back again).
func (e *env) releaseParked(rcv *testreceiver.Receiver, n int) {
	e.t.Helper()
	released := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(rcv.Requests()) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("receiver got %d requests, want %d", len(rcv.Requests()), n)
		}
		_, recs := e.parked()
		var fresh []*kgo.Record
		for _, r := range recs {
			if k := fmt.Sprint(r.Topic, r.Partition, r.Offset); !released[k] {
				released[k] = true
				fresh = append(fresh, r)
			}
		}
		if len(fresh) > 0 {
			e.unpark(fresh)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNeighboursKeepGoing: endpoints that are slow, never answer or refuse
// connections share a partition with a fast one; once their requests are
// under way, the fast endpoint's deliveries fetched later go out at once.
// (A partition handled batch by batch held them until the bad endpoints'
// batch had every outcome.)
func TestNeighboursKeepGoing(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "https://" + closed.Addr().String() + "/refused"
	closed.Close()
	tests := []struct {
		name string
		path string // of the bad endpoint; a full URL when it starts with https
		held bool   // its requests hang until the test ends
		mod  func(*record.Subscription)
	}{
		{name: "slow endpoint", path: "/slow", held: true},
		{name: "endpoint that never answers (timeout 60 s)", path: "/hang", held: true, mod: func(s *record.Subscription) { s.TimeoutMS = 60000 }},
		{name: "ordered slow endpoint", path: "/ordered", held: true, mod: func(s *record.Subscription) { s.Ordered = true }},
		{name: "endpoint refusing connections", path: refused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			g := newGate(t, "/slow", "/hang", "/ordered")
			rcv := testreceiver.New(t, g.respond)
			url := rcv.URL + tc.path
			if strings.HasPrefix(tc.path, "https") {
				url = tc.path
			}
			var mods []func(*record.Subscription)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			bad, _ := e.subscribe(url, []time.Duration{0}, mods...)
			fast, _ := e.subscribe(rcv.URL+"/fast", []time.Duration{0})
			run := e.run(e.sender(rcv), "sender")

			badOnes := make([]record.Delivery, 30)
			for i := range badOnes {
				badOnes[i] = e.delivery(bad, fmt.Sprintf(`{"bad":%d}`, i))
			}
			e.toPartition0(badOnes...)
			if tc.held {
				waitUntil(t, "the bad endpoint's requests under way", func() bool { return g.holding() > 0 })
			} else {
				waitUntil(t, "the refused attempts written", func() bool { return run.handled() >= int64(len(badOnes)) })
			}
			fastOnes := make([]record.Delivery, 20)
			for i := range fastOnes {
				fastOnes[i] = e.delivery(fast, fmt.Sprintf(`{"fast":%d}`, i))
			}
			e.toPartition0(fastOnes...)
			waitUntil(t, "every fast delivery arrived", func() bool {
				got := byID(rcv.Requests())
				for _, d := range fastOnes {
					if len(got[d.ID]) == 0 {
						return false
					}
				}
				return true
			})
			if tc.held && g.holding() == 0 {
				t.Fatal("the bad endpoint's requests ended before the fast deliveries arrived: the test proves nothing")
			}
			g.release()
			run.waitHandled(t, len(badOnes)+len(fastOnes), 30*time.Second)
			got := byID(rcv.Requests())
			for _, d := range fastOnes {
				if n := len(got[d.ID]); n != 1 {
					t.Errorf("fast delivery %s sent %d times, want once", d.ID, n)
				}
			}
		})
	}
}

// TestBacklogParkedAndBackOnce: a saturated endpoint's backlog beyond
// BacklogWait is parked in a retry tier, its attempt count unchanged and
// nothing in the delivery log, while the partition finishes everything
// else; parked deliveries that come back are sent, each exactly once.
// The per-endpoint metrics show the top endpoint only.
func TestBacklogParkedAndBackOnce(t *testing.T) {
	e := newEnv(t)
	g := newGate(t, "/slow")
	rcv := testreceiver.New(t, g.respond)
	slow, _ := e.subscribe(rcv.URL+"/slow", []time.Duration{0}, func(s *record.Subscription) { s.MaxInFlight = 2 })
	quiet, _ := e.subscribe(rcv.URL+"/slow/quiet", []time.Duration{0})
	reg := prometheus.NewRegistry()
	d := e.sender(rcv)
	d.BacklogWait, d.Metrics = 100*time.Millisecond, dispatch.NewMetrics(reg, 1)
	run := e.run(d, "sender")

	ds := make([]record.Delivery, 10)
	for i := range ds {
		ds[i] = e.delivery(slow, fmt.Sprintf(`{"n":%d}`, i))
		ds[i].Attempt = 1
	}
	e.toPartition0(ds...)
	e.toPartition0(e.delivery(quiet, `{"quiet":1}`)) // a second busy endpoint, held too
	waitUntil(t, "the backlog parked", func() bool {
		ds, _ := e.parked()
		return len(ds) >= 7
	})

	if n := g.holding(); n != 3 {
		t.Errorf("%d requests held, want the 2 of max_in_flight and the quiet endpoint's", n)
	}
	if got := testutil.ToFloat64(d.Metrics.Parked.WithLabelValues("backlog")); got != 7 {
		t.Errorf("%v parked, want 7: 2 in flight and 1 kept to go next", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "hookline_sender_endpoint_in_flight" {
			continue
		}
		if len(f.Metric) != 1 || f.Metric[0].GetGauge().GetValue() != 2 || f.Metric[0].GetLabel()[0].GetValue() != slow.ID {
			t.Errorf("per-endpoint in flight %v, want only the top endpoint's 2", f.Metric)
		}
	}
	parkedDs, parkedRecs := e.parked()
	if len(parkedDs) != 7 {
		t.Fatalf("%d deliveries in the retry tiers, want the 7 parked", len(parkedDs))
	}
	for i, p := range parkedDs {
		if p.Attempt != 1 || p.DueAt == nil || p.LastStatus != 0 {
			t.Errorf("parked %s: attempt %d (want 1), due %v, last status %d", p.ID, p.Attempt, p.DueAt, p.LastStatus)
		}
		if h := parkedRecs[i].Headers; h[len(h)-1].Key != wire.HeaderParked || string(h[len(h)-1].Value) != "1" {
			t.Errorf("parked %s carries headers %v, want %s: 1", p.ID, h, wire.HeaderParked)
		}
	}
	if log := e.attempts(); len(log) != 0 {
		t.Errorf("%d deliveries in the delivery log while parked, want none", len(log))
	}

	g.release()
	e.releaseParked(rcv, len(ds)+1)
	_, all := e.parked()
	run.waitHandled(t, len(ds)+1+len(all), 30*time.Second)
	got := byID(rcv.Requests())
	for _, dl := range ds {
		if n := len(got[dl.ID]); n != 1 {
			t.Errorf("%s sent %d times, want once", dl.ID, n)
		}
	}
	log := e.attempts()
	for _, dl := range ds {
		if as := log[dl.ID]; len(as) != 1 || as[0].Attempt != 2 || as[0].Outcome != record.OutcomeDelivered {
			t.Errorf("%s: log %+v, want one delivered attempt 2", dl.ID, as)
		}
	}
}

// TestOrderedParkingKeepsFIFO: an ordered subscription's backlog is parked
// in order; fresh deliveries are parked behind it, also by a next owner of
// the partition (the tail is in Redis); everything arrives in order.
func TestOrderedParkingKeepsFIFO(t *testing.T) {
	e := newEnv(t)
	g := newGate(t, "/ordered")
	var mu sync.Mutex
	first := true
	rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hold := first
		first = false
		mu.Unlock()
		if hold { // only the first request waits: the backlog builds behind it
			g.respond(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	sub, _ := e.subscribe(rcv.URL+"/ordered", []time.Duration{0}, func(s *record.Subscription) { s.Ordered = true })
	seq := func(from, to int) []record.Delivery {
		var ds []record.Delivery
		for i := from; i < to; i++ {
			ds = append(ds, e.delivery(sub, fmt.Sprintf(`{"seq":%d}`, i)))
		}
		return ds
	}
	d1 := e.sender(rcv)
	d1.BacklogWait = 100 * time.Millisecond
	ctx, stop1 := context.WithCancel(context.Background())
	defer stop1()
	ended := make(chan error, 1)
	c1, err := kafka.NewStreamConsumer(e.kafka, e.kafka.Topics.Prefix+"first", []string{e.kafka.Topics.Deliveries}, d1.Run, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	go func() { ended <- c1.Run(ctx) }()

	e.toPartition0(seq(0, 6)...) // 0 held in flight, 1..5 parked but 1
	waitUntil(t, "the backlog parked", func() bool { return testutil.ToFloat64(d1.Metrics.Parked.WithLabelValues("backlog")) >= 4 })
	e.toPartition0(seq(6, 9)...) // fresh: behind the parked ones
	waitUntil(t, "the fresh ones parked behind", func() bool { return testutil.ToFloat64(d1.Metrics.Parked.WithLabelValues("ordered")) >= 3 })
	g.release()
	waitUntil(t, "the first two sent", func() bool { return len(rcv.Requests()) >= 2 })
	stop1()
	<-ended

	// A next owner: a fresh delivery must go behind the parked ones, which
	// only Redis remembers now.
	d2 := e.sender(rcv)
	d2.BacklogWait = 100 * time.Millisecond
	run := e.run(d2, "first") // the same group: it starts where the first owner committed
	e.toPartition0(seq(9, 10)...)
	waitUntil(t, "the next owner parked the fresh one", func() bool { return testutil.ToFloat64(d2.Metrics.Parked.WithLabelValues("ordered")) >= 1 })
	if n := len(rcv.Requests()); n != 2 {
		t.Fatalf("receiver got %d requests before the parked ones came back, want 2", n)
	}
	_, parked := e.parked()
	if len(parked) != 8 {
		t.Fatalf("%d parked, want 8 (seq 2..9)", len(parked))
	}
	e.unpark(parked)
	reqs := rcv.WaitFor(t, 10, 30*time.Second)
	for i, r := range reqs {
		if want := fmt.Sprintf(`{"seq":%d}`, i); string(r.Body) != want {
			t.Fatalf("request %d carried %s, want %s: FIFO broken by parking", i, r.Body, want)
		}
	}
	run.waitHandled(t, 10+8, 30*time.Second)
	if n := len(rcv.Requests()); n != 10 {
		t.Errorf("receiver got %d requests, want 10", n)
	}
}

// TestMaxInFlightBoundsAnEndpoint: a subscription's max_in_flight is the
// most requests it gets at once.
func TestMaxInFlightBoundsAnEndpoint(t *testing.T) {
	e := newEnv(t)
	g := newGate(t, "/bounded")
	rcv := testreceiver.New(t, g.respond)
	sub, _ := e.subscribe(rcv.URL+"/bounded", []time.Duration{0}, func(s *record.Subscription) { s.MaxInFlight = 3 })
	d := e.sender(rcv)
	run := e.run(d, "sender")
	ds := make([]record.Delivery, 30)
	for i := range ds {
		ds[i] = e.delivery(sub, fmt.Sprintf(`{"n":%d}`, i))
	}
	e.toPartition0(ds...)
	waitUntil(t, "the endpoint's backlog queued", func() bool { return backlogOf(t, d, sub.ID) == 27 })
	time.Sleep(200 * time.Millisecond) // a fourth request would have been started with the others
	if n, held := len(rcv.Requests()), g.holding(); n != 3 || held != 3 {
		t.Fatalf("the endpoint got %d requests (%d held at once), want its max_in_flight of 3", n, held)
	}
	g.release()
	run.waitHandled(t, len(ds), 30*time.Second)
	if n := len(rcv.Requests()); n != len(ds) {
		t.Errorf("receiver got %d requests, want %d", n, len(ds))
	}
}

// TestAnEndpointsNextRequestDoesNotWaitForTheLog: a request holds its
// place in the endpoint's max_in_flight until the endpoint has answered,
// not until Kafka has acknowledged the attempt's records. With the
// sender's produce answers held back, a max_in_flight of 1 still sends
// one delivery after the other, up to MinWriteAhead outcomes waiting for
// Kafka, and no more; none is finished (its offset committable) before
// its records are acknowledged.
func TestAnEndpointsNextRequestDoesNotWaitForTheLog(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL+"/serial", []time.Duration{0}, func(s *record.Subscription) { s.MaxInFlight = 1 })
	acks := &heldAcks{release: make(chan struct{})}
	producer, err := kafka.NewClient(e.kafka, testinfra.Logger(), kgo.WithHooks(acks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	t.Cleanup(acks.let) // before Close, on a failure too
	d := e.sender(rcv)
	d.Producer = producer
	run := e.run(d, "sender")
	ds := make([]record.Delivery, dispatch.MinWriteAhead+4)
	for i := range ds {
		ds[i] = e.delivery(sub, fmt.Sprintf(`{"n":%d}`, i))
	}
	acks.hold.Store(true)
	e.toPartition0(ds...)
	waitUntil(t, "deliveries sent while the log's acknowledgements are held", func() bool {
		return len(rcv.Requests()) >= dispatch.MinWriteAhead
	})
	waitUntil(t, "a produce answer held", func() bool { return acks.held.Load() > 0 })
	time.Sleep(200 * time.Millisecond) // one more request would have been started by now
	if n := len(rcv.Requests()); n != dispatch.MinWriteAhead {
		t.Errorf("the endpoint got %d requests while their outcomes waited for Kafka, want %d", n, dispatch.MinWriteAhead)
	}
	if n := run.handled(); n != 0 {
		t.Errorf("%d deliveries finished before Kafka acknowledged their attempts", n)
	}
	acks.let()
	run.waitHandled(t, len(ds), 30*time.Second)
	got := e.attempts()
	for _, dl := range ds {
		if a := got[dl.ID]; len(a) != 1 || a[0].Outcome != record.OutcomeDelivered {
			t.Errorf("delivery %s: attempts %+v, want one, delivered", dl.ID, a)
		}
	}
	if n := len(rcv.Requests()); n != len(ds) {
		t.Errorf("receiver got %d requests, want %d", n, len(ds))
	}
}

// heldAcks holds back a client's produce answers while hold is set, until
// release is closed: franz-go reads a connection's answers one after the
// other and calls this hook before it hands an answer on.
type heldAcks struct {
	hold    atomic.Bool
	held    atomic.Int64
	release chan struct{}
	once    sync.Once
}

// let hands on the answers held and holds no more.
func (h *heldAcks) let() { h.once.Do(func() { close(h.release) }) }

func (h *heldAcks) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.Produce) && err == nil && h.hold.Load() {
		h.held.Add(1)
		<-h.release
	}
}

// backlogOf reads an endpoint's backlog from the dispatcher's metrics.
func backlogOf(t *testing.T, d *dispatch.Dispatcher, sub string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(d.Metrics); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "hookline_sender_endpoint_backlog" {
			for _, m := range f.Metric {
				if m.GetLabel()[0].GetValue() == sub {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBurstBeyondMaxBacklogWaitsInKafka: a burst larger than what a
// partition may hold goes out in full, none of it parked: it waits in
// Kafka while the partition holds MaxBacklog.
func TestBurstBeyondMaxBacklogWaitsInKafka(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL+"/burst", []time.Duration{0})
	d := e.sender(rcv)
	d.MaxBacklog = 20
	ds := make([]record.Delivery, 300)
	for i := range ds {
		ds[i] = e.delivery(sub, fmt.Sprintf(`{"n":%d}`, i))
	}
	e.toPartition0(ds...)
	e.run(d, "sender").waitHandled(t, len(ds), 60*time.Second)
	if got := byID(rcv.Requests()); len(got) != len(ds) {
		t.Errorf("receiver got %d deliveries, want %d", len(got), len(ds))
	}
	for _, reason := range []string{"backlog", "ordered", "rate_limit"} {
		if n := testutil.ToFloat64(d.Metrics.Parked.WithLabelValues(reason)); n != 0 {
			t.Errorf("%v parked for %s, want none", n, reason)
		}
	}
}
