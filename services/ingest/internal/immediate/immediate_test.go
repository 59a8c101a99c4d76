package immediate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
	"github.com/hookline/hookline/services/ingest/internal/immediate"
)

// env is one test's Kafka topics and Redis keys, a Deliverer on them and
// the index it matches against.
type env struct {
	t      *testing.T
	kafka  kafka.Config
	codecs *record.Codecs
	box    *secretbox.Box
	ix     *index.Index
	claims *claim.Store
	marks  *idempotency.Store
	d      *immediate.Deliverer
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newEnv builds a Deliverer that trusts rcv, allowlisting 127.0.0.1 unless
// guard says otherwise, on Redis rdb (nil: the test Redis).
func newEnv(t *testing.T, rcv *testreceiver.Receiver, guard *ssrf.Guard, rdb redis.UniversalClient) *env {
	t.Helper()
	sch, err := backoff.Parse("1s,2s")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, kafka: testinfra.Kafka(t, sch.Delays...), ix: index.New(testinfra.Logger())}
	if e.codecs, err = record.LoadCodecs(); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if e.box, err = secretbox.New(key); err != nil {
		t.Fatal(err)
	}
	producer, err := kafka.NewClient(e.kafka, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	if rdb == nil {
		rdb = testinfra.Redis(t)
	}
	if guard == nil {
		guard = testreceiver.Guard(t)
	}
	keys := "hookline-test:" + randomID() + ":"
	e.claims, e.marks = claim.New(rdb, keys+"claim:"), idempotency.New(rdb, keys+"delivered:", time.Hour)
	opts := deliver.ClientOptions{Guard: guard, RootCAs: rcv.Cert.Pool(), MaxConnsPerHost: 8}
	client := deliver.NewClient(opts)
	t.Cleanup(client.CloseIdleConnections)
	e.d = &immediate.Deliverer{
		Index: e.ix, Opener: deliver.Opener{Box: e.box, Certs: deliver.NewClients(opts, 4)}, Client: client, Guard: guard,
		Limiter: ratelimit.New(rdb, keys+"rate:"), Claims: e.claims, Delivered: e.marks, Producer: producer,
		Codecs: e.codecs, Topics: e.kafka.Topics, Schedule: sch, Log: testinfra.Logger(), Now: time.Now,
		Metrics: immediate.NewMetrics(prometheus.NewRegistry()),
	}
	t.Cleanup(e.d.Wait)
	return e
}

// subscribe indexes an enabled subscription of tenant to url for
// order.created, signed with one secret, changed by mods.
func (e *env) subscribe(tenant, url string, mods ...func(*record.Subscription)) *record.Subscription {
	e.t.Helper()
	now := time.Now().UTC()
	sub := &record.Subscription{ID: "sub_" + randomID(), Tenant: tenant, Name: "test", URL: url,
		EventTypes: []string{"order.created"}, Payload: "full", Enabled: true, MaxAttempts: 3, CreatedAt: now, UpdatedAt: now}
	_, whsec, err := signature.NewSecret()
	if err != nil {
		e.t.Fatal(err)
	}
	sub.Secrets = []record.Secret{{Sealed: e.box.Seal([]byte(whsec), []byte(sub.ID)), CreatedAt: now}}
	for _, mod := range mods {
		mod(sub)
	}
	e.ix.Update(nil, sub)
	return sub
}

func event(tenant string) *record.Event {
	now := time.Now().UTC()
	return &record.Event{ID: "evt_" + randomID(), Tenant: tenant, Type: "order.created", Subject: "ord_1",
		OccurredAt: now, ReceivedAt: now, Data: `{"id":"ord_1"}`, Changed: []string{}}
}

// post plans and delivers ev as POST /v1/events?mode=immediate does (the
// event itself is not written: the pipeline is not under test here).
func (e *env) post(ev *record.Event, wait time.Duration) []immediate.Delivery {
	e.t.Helper()
	return e.d.Plan(context.Background(), ev, wait).Deliver(context.Background(), wait)
}

// attempts reads the delivery log, by delivery id.
func (e *env) attempts(n int) map[string][]record.DeliveryAttempt {
	e.t.Helper()
	out := map[string][]record.DeliveryAttempt{}
	for _, r := range testinfra.WaitRecords(e.t, e.kafka, e.kafka.Topics.DeliveryLog, n, 30*time.Second) {
		var a record.DeliveryAttempt
		if err := e.codecs.Attempt.Unmarshal(r.Value, &a); err != nil {
			e.t.Fatal(err)
		}
		out[a.DeliveryID] = append(out[a.DeliveryID], a)
	}
	return out
}

func (e *env) claim(id string) claim.Claim {
	e.t.Helper()
	c, err := e.claims.Look(context.Background(), []string{id})
	if err != nil {
		e.t.Fatal(err)
	}
	return c[0]
}

// counted checks the Deliverer's counters: deliveries by outcome, queued
// by reason (those named; any other must be zero), pending answers and
// the requests whose wait was observed.
func (e *env) counted(outcomes, queued map[string]float64, pending float64, requests uint64) {
	e.t.Helper()
	m := e.d.Metrics
	for _, o := range []string{immediate.Delivered, immediate.Failed, immediate.Queued} {
		if got := testutil.ToFloat64(m.Deliveries.WithLabelValues(o)); got != outcomes[o] {
			e.t.Errorf("deliveries %s: %v, want %v", o, got, outcomes[o])
		}
	}
	for _, r := range []string{"batch", "ordered", "undeliverable", "in_flight", "rate_limited", "redis", "claimed"} {
		if got := testutil.ToFloat64(m.Queued.WithLabelValues(r)); got != queued[r] {
			e.t.Errorf("queued %s: %v, want %v", r, got, queued[r])
		}
	}
	if got := testutil.ToFloat64(m.Pending); got != pending {
		e.t.Errorf("pending %v, want %v", got, pending)
	}
	var h dto.Metric
	if err := m.Wait.Write(&h); err != nil {
		e.t.Fatal(err)
	}
	if got := h.GetHistogram().GetSampleCount(); got != requests {
		e.t.Errorf("waits observed %d, want %d", got, requests)
	}
}

func only(t *testing.T, ds []immediate.Delivery) immediate.Delivery {
	t.Helper()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1: %+v", len(ds), ds)
	}
	return ds[0]
}

func TestDeliveredIsAttemptOne(t *testing.T) {
	rcv := testreceiver.New(t, nil)
	e := newEnv(t, rcv, nil, nil)
	sub := e.subscribe("acme", rcv.URL+"/hooks")
	ev := event("acme")
	ds := e.post(ev, immediate.DefaultWait)
	got := only(t, ds)
	if got.Outcome != immediate.Delivered || got.StatusCode != http.StatusNoContent || got.SubscriptionID != sub.ID || got.DeliveryID == "" {
		t.Fatalf("answer %+v, want delivered with 204 for %s", got, sub.ID)
	}
	if immediate.Status(ds) != http.StatusOK {
		t.Errorf("status %d, want 200", immediate.Status(ds))
	}
	reqs := rcv.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get(signature.HeaderID) != got.DeliveryID || reqs[0].Header.Get(signature.HeaderSignature) == "" {
		t.Fatalf("receiver got %d requests (want 1, webhook-id %s, signed)", len(reqs), got.DeliveryID)
	}
	e.d.Wait() // the answer comes before the claim is resolved
	if c := e.claim(got.DeliveryID); c.State != claim.Delivered {
		t.Errorf("claim %+v, want delivered", c)
	}
	if marked, err := e.marks.Marked(context.Background(), []string{got.DeliveryID}); err != nil || !marked[0] {
		t.Errorf("delivered mark %v %v, want set", marked, err)
	}
	as := e.attempts(1)[got.DeliveryID]
	if len(as) != 1 || as[0].Attempt != 1 || as[0].Outcome != record.OutcomeDelivered || as[0].StatusCode != 204 {
		t.Errorf("delivery log %+v, want attempt 1 delivered", as)
	}
	e.counted(map[string]float64{immediate.Delivered: 1}, nil, 0, 1)
}

func TestFailedAttemptGoesOnAsAttemptOne(t *testing.T) {
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	e := newEnv(t, rcv, nil, nil)
	e.subscribe("acme", rcv.URL)
	ds := e.post(event("acme"), immediate.DefaultWait)
	got := only(t, ds)
	if got.Outcome != immediate.Failed || got.StatusCode != 503 || got.Error != "HTTP 503" {
		t.Fatalf("answer %+v, want failed with 503", got)
	}
	if immediate.Status(ds) != http.StatusOK {
		t.Errorf("status %d, want 200: the attempt ended", immediate.Status(ds))
	}
	e.d.Wait()
	c := e.claim(got.DeliveryID)
	if c.State != claim.Failed || c.Failure.Status != 503 || c.Failure.Class != deliver.Retryable {
		t.Errorf("claim %+v, want failed after a retryable 503", c)
	}
	as := e.attempts(1)[got.DeliveryID]
	if len(as) != 1 || as[0].Attempt != 1 || as[0].Outcome != record.OutcomeRetrying || as[0].NextAttemptAt == nil {
		t.Errorf("delivery log %+v, want attempt 1 retrying with its next attempt's time", as)
	}
	e.counted(map[string]float64{immediate.Failed: 1}, nil, 0, 1)
}

func TestPastTheWaitIsPendingAndEndsLater(t *testing.T) {
	release := make(chan struct{})
	rcv := testreceiver.New(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusOK)
	})
	e := newEnv(t, rcv, nil, nil)
	end := sync.OnceFunc(func() { close(release) })
	t.Cleanup(end) // before the Deliverer's Wait, should the test stop early
	e.subscribe("acme", rcv.URL)
	start := time.Now()
	ds := e.post(event("acme"), 200*time.Millisecond)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answered after %v with a 200 ms wait", took)
	}
	got := only(t, ds)
	if got.Outcome != immediate.Pending || immediate.Status(ds) != http.StatusAccepted {
		t.Fatalf("answer %+v (status %d), want pending and 202", got, immediate.Status(ds))
	}
	if c := e.claim(got.DeliveryID); c.State != claim.Pending {
		t.Errorf("claim %+v while the attempt is under way, want pending", c)
	}
	e.counted(nil, nil, 1, 1) // pending, not yet delivered
	end()
	e.d.Wait()
	if c := e.claim(got.DeliveryID); c.State != claim.Delivered {
		t.Errorf("claim %+v once the attempt ended, want delivered", c)
	}
	if as := e.attempts(1)[got.DeliveryID]; len(as) != 1 || as[0].Outcome != record.OutcomeDelivered {
		t.Errorf("delivery log %+v, want attempt 1 delivered", as)
	}
	e.counted(map[string]float64{immediate.Delivered: 1}, nil, 1, 1)
}

func TestRefusedTargetIsNotCalled(t *testing.T) {
	rcv := testreceiver.New(t, nil)
	noLoopback, err := ssrf.New(nil) // 127.0.0.1 is not public: refused at dial time
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, rcv, noLoopback, nil)
	e.subscribe("acme", rcv.URL)
	got := only(t, e.post(event("acme"), immediate.DefaultWait))
	if got.Outcome != immediate.Failed || got.StatusCode != 0 || len(got.Error) < 8 || got.Error[:8] != "refused:" {
		t.Fatalf("answer %+v, want failed: refused", got)
	}
	if n := len(rcv.Requests()); n != 0 {
		t.Errorf("receiver got %d requests, want none", n)
	}
	if as := e.attempts(1)[got.DeliveryID]; len(as) != 1 || as[0].Outcome != record.OutcomeDeadLettered {
		t.Errorf("delivery log %+v, want attempt 1 dead-lettered (a refused target is permanent)", as)
	}
	e.d.Wait()
	if c := e.claim(got.DeliveryID); c.State != claim.Failed || c.Failure.Class != deliver.Permanent {
		t.Errorf("claim %+v, want failed, permanent", c)
	}
}

func TestQueuedForThePipeline(t *testing.T) {
	rcv := testreceiver.New(t, nil)
	e := newEnv(t, rcv, nil, nil)
	batch := e.subscribe("acme", rcv.URL, func(s *record.Subscription) { s.Batch = &record.Batch{MaxEvents: 10, MaxWaitMS: 1000} })
	ordered := e.subscribe("acme", rcv.URL, func(s *record.Subscription) { s.Ordered = true })
	limited := e.subscribe("acme", rcv.URL, func(s *record.Subscription) { s.RateLimitPerSecond = 1 })
	ds := e.post(event("acme"), immediate.DefaultWait)
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3: %+v", len(ds), ds)
	}
	by := map[string]immediate.Delivery{}
	for _, d := range ds {
		by[d.SubscriptionID] = d
	}
	for name, sub := range map[string]*record.Subscription{"batch": batch, "ordered": ordered} {
		if d := by[sub.ID]; d.Outcome != immediate.Queued || d.Error == "" {
			t.Errorf("%s subscription: %+v, want queued with the reason", name, d)
		}
		if c := e.claim(by[sub.ID].DeliveryID); c.State != claim.None {
			t.Errorf("%s subscription: claim %+v, want none: the pipeline sends it", name, c)
		}
	}
	if d := by[limited.ID]; d.Outcome != immediate.Delivered {
		t.Errorf("rate-limited subscription's first delivery: %+v, want delivered", d)
	}
	// Its second within the second is over its rate: the pipeline sends it.
	ds = e.post(event("acme"), immediate.DefaultWait)
	for _, d := range ds {
		if d.SubscriptionID == limited.ID && (d.Outcome != immediate.Queued || d.Error != "rate limited") {
			t.Errorf("rate-limited subscription's second delivery: %+v, want queued: rate limited", d)
		}
	}
	if immediate.Status(ds) != http.StatusAccepted {
		t.Errorf("status %d, want 202 with deliveries queued", immediate.Status(ds))
	}
	if n := len(rcv.Requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1 (the rate-limited subscription's first)", n)
	}
	e.d.Wait()
	e.counted(map[string]float64{immediate.Delivered: 1, immediate.Queued: 5},
		map[string]float64{"batch": 2, "ordered": 2, "rate_limited": 1}, 0, 2)
}

// TestRedisDownQueues: without the claims no attempt is made (it could be
// sent twice): every delivery is queued for the pipeline.
func TestRedisDownQueues(t *testing.T) {
	rcv := testreceiver.New(t, nil)
	down := redis.NewClient(&redis.Options{Addr: testinfra.FreeAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = down.Close() })
	e := newEnv(t, rcv, nil, down)
	e.subscribe("acme", rcv.URL)
	got := only(t, e.post(event("acme"), immediate.DefaultWait))
	if got.Outcome != immediate.Queued {
		t.Errorf("answer %+v, want queued", got)
	}
	if n := len(rcv.Requests()); n != 0 {
		t.Errorf("receiver got %d requests, want none", n)
	}
	e.counted(map[string]float64{immediate.Queued: 1}, map[string]float64{"redis": 1}, 0, 1)
}

// TestHostileNeighbour: a tenant whose endpoint hangs fills only its own
// share of the immediate slots; its further deliveries are queued, and
// another tenant's request is delivered at once meanwhile.
func TestHostileNeighbour(t *testing.T) {
	hang := make(chan struct{})
	rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-hang
		}
		w.WriteHeader(http.StatusNoContent)
	})
	e := newEnv(t, rcv, nil, nil)
	e.d.MaxInFlight, e.d.MaxInFlightTenant = 4, 2
	e.subscribe("evil", rcv.URL+"/slow")
	e.subscribe("good", rcv.URL+"/fast")
	t.Cleanup(func() { close(hang) })

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		evil []immediate.Delivery
	)
	for range 2 {
		wg.Go(func() {
			ds := e.post(event("evil"), 300*time.Millisecond)
			mu.Lock()
			evil = append(evil, ds...)
			mu.Unlock()
		})
	}
	wg.Wait() // both evil attempts hang past their wait, holding the tenant's two slots
	for _, d := range evil {
		if d.Outcome != immediate.Pending {
			t.Fatalf("evil's hanging deliveries: %+v, want pending", evil)
		}
	}
	third := only(t, e.post(event("evil"), 300*time.Millisecond))
	if third.Outcome != immediate.Queued {
		t.Errorf("evil's third delivery: %+v, want queued (over its tenant's limit)", third)
	}
	if got := testutil.ToFloat64(e.d.Metrics.Queued.WithLabelValues("in_flight")); got != 1 {
		t.Errorf("queued in_flight %v, want 1", got)
	}
	start := time.Now()
	good := only(t, e.post(event("good"), immediate.DefaultWait))
	if good.Outcome != immediate.Delivered {
		t.Errorf("good's delivery beside a hanging neighbour: %+v, want delivered", good)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("good's delivery took %v beside a hanging neighbour", took)
	}
}
