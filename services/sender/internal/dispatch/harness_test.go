package dispatch_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/sender/internal/dispatch"
)

// schedule is the tests' retry schedule: two short tiers.
const schedule = "1s,2s"

// env is one test's share of the real Kafka and Redis: topics under a
// fresh prefix, Redis keys under a fresh prefix, a subscriptions view and
// a producer.
type env struct {
	t        testing.TB
	kafka    kafka.Config
	rdb      *redis.Client
	keys     string // Redis key prefix
	codecs   *record.Codecs
	box      *secretbox.Box
	view     *subscription.View
	producer *kgo.Client
	schedule backoff.Schedule
}

func newEnv(t testing.TB) *env {
	t.Helper()
	sch, err := backoff.Parse(schedule)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, schedule: sch, kafka: testinfra.Kafka(t, sch.Delays...), rdb: testinfra.Redis(t), keys: "hookline-test:" + randomID() + ":"}
	if e.codecs, err = record.LoadCodecs(); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if e.box, err = secretbox.New(key); err != nil {
		t.Fatal(err)
	}
	if e.producer, err = kafka.NewClient(e.kafka, testinfra.Logger()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.producer.Close)
	e.view = subscription.NewView(e.kafka.Topics, e.codecs, testinfra.Logger())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := e.view.Run(ctx, e.kafka); err != nil {
			t.Errorf("subscriptions view: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-stopped })
	return e
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// sender is a Dispatcher on the env's infrastructure, with its own
// metrics, delivering through a client that trusts rcv and allowlists
// 127.0.0.1.
func (e *env) sender(rcv *testreceiver.Receiver) *dispatch.Dispatcher {
	return e.senderWith(rcv, e.rdb)
}

func (e *env) senderWith(rcv *testreceiver.Receiver, rdb redis.UniversalClient) *dispatch.Dispatcher {
	opts := deliver.ClientOptions{Guard: testreceiver.Guard(e.t), RootCAs: rcv.Cert.Pool(), MaxConnsPerHost: 8}
	client, certs := deliver.NewClient(opts), deliver.NewClients(opts, 4)
	e.t.Cleanup(client.CloseIdleConnections)
	e.t.Cleanup(certs.CloseIdleConnections)
	return &dispatch.Dispatcher{
		Client:      client,
		Certs:       certs,
		View:        e.view,
		Codecs:      e.codecs,
		Topics:      e.kafka.Topics,
		Schedule:    e.schedule,
		Producer:    e.producer,
		Delivered:   idempotency.New(rdb, e.keys+"delivered:", time.Hour),
		Claims:      claim.New(rdb, e.keys+"claim:"),
		Limiter:     ratelimit.New(rdb, e.keys+"rate:"),
		Tails:       dispatch.NewTails(rdb, e.keys+"parked:", time.Hour),
		Box:         e.box,
		Guard:       testreceiver.Guard(e.t),
		PerEndpoint: 16,
		MaxInFlight: 64,
		// Nothing is parked unless a test asks: on a loaded machine a
		// burst could otherwise be, and no retry service brings it back.
		BacklogWait: time.Minute,
		Metrics:     dispatch.NewMetrics(prometheus.NewRegistry(), 0),
		Log:         testinfra.Logger(),
		Now:         time.Now,
	}
}

// subscribe writes a subscription for url with one active signing secret
// per entry of secretAges (how long ago each was created; the newest signs
// the GitHub-style header), applies mods, and waits until the view has it.
// It returns the subscription and its secrets in the order given.
func (e *env) subscribe(url string, secretAges []time.Duration, mods ...func(*record.Subscription)) (*record.Subscription, []signature.Secret) {
	e.t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	sub := &record.Subscription{
		ID: "sub_" + randomID(), Tenant: "acme", Name: "test", URL: url,
		EventTypes: []string{"order.*"}, Payload: "full", Enabled: true, MaxAttempts: 3,
		CreatedAt: now, UpdatedAt: now,
	}
	var secrets []signature.Secret
	for _, age := range secretAges {
		s, whsec, err := signature.NewSecret()
		if err != nil {
			e.t.Fatal(err)
		}
		secrets = append(secrets, s)
		sub.Secrets = append(sub.Secrets, record.Secret{Sealed: e.box.Seal([]byte(whsec), []byte(sub.ID)), CreatedAt: now.Add(-age)})
	}
	for _, mod := range mods {
		mod(sub)
	}
	e.putSubscription(sub)
	return sub, secrets
}

func (e *env) putSubscription(sub *record.Subscription) {
	e.t.Helper()
	value, err := e.codecs.Subscription.Marshal(sub)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := e.ctx()
	r, err := e.producer.ProduceSync(ctx, &kgo.Record{Topic: e.kafka.Topics.Subscriptions, Key: []byte(sub.ID), Value: value}).First()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.view.WaitFor(ctx, r.Partition, r.Offset); err != nil {
		e.t.Fatalf("view did not read subscription %s: %v", sub.ID, err)
	}
}

// delivery is a fresh delivery of one event to sub.
func (e *env) delivery(sub *record.Subscription, payload string) record.Delivery {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return record.Delivery{
		ID: "dlv_" + randomID(), Tenant: sub.Tenant, SubscriptionID: sub.ID, EventID: "evt_" + randomID(),
		EventType: "order.created", URL: sub.URL, Payload: payload, CreatedAt: now, EventTime: now,
	}
}

// publish produces deliveries to the deliveries topic, keyed by endpoint.
func (e *env) publish(ds ...record.Delivery) {
	e.t.Helper()
	e.produce(false, ds)
}

// publishImmediate is publish for deliveries of events ingest wrote in
// immediate mode: marked (wire.HeaderImmediate) as the matcher marks them.
func (e *env) publishImmediate(ds ...record.Delivery) {
	e.t.Helper()
	e.produce(true, ds)
}

func (e *env) produce(immediate bool, ds []record.Delivery) {
	e.t.Helper()
	recs := make([]*kgo.Record, len(ds))
	for i := range ds {
		value, err := e.codecs.Delivery.Marshal(&ds[i])
		if err != nil {
			e.t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: e.kafka.Topics.Deliveries, Key: []byte(ds[i].SubscriptionID), Value: value}
		if immediate {
			wire.MarkImmediate(recs[i])
		}
	}
	if err := e.producer.ProduceSync(e.ctx(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// running is a sender consuming the deliveries topic in a consumer group.
type running struct {
	failed  atomic.Int64  // Run calls that returned an error
	started chan struct{} // closed when the first records are taken
	once    sync.Once

	mu    sync.Mutex
	parts []*kafka.Partition // every partition a Run got
}

// handled is how many records of the deliveries topic are finished: their
// outcomes are acknowledged by Kafka. Each test's topics are new, so
// offsets count from 0.
func (r *running) handled() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	through := map[int32]int64{}
	for _, p := range r.parts {
		if f := p.Finished(); f+1 > through[p.Partition] {
			through[p.Partition] = f + 1
		}
	}
	var n int64
	for _, t := range through {
		n += t
	}
	return n
}

// run consumes the deliveries topic with d in group until the test ends.
func (e *env) run(d *dispatch.Dispatcher, group string) *running {
	e.t.Helper()
	r := &running{started: make(chan struct{})}
	handle := func(ctx context.Context, p *kafka.Partition) error {
		r.mu.Lock()
		r.parts = append(r.parts, p)
		r.mu.Unlock()
		go func() {
			for p.Finished() < 0 {
				select {
				case <-ctx.Done():
					return
				case <-p.Stopping():
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
			r.once.Do(func() { close(r.started) })
		}()
		err := d.Run(ctx, p)
		if err != nil {
			r.failed.Add(1)
		}
		return err
	}
	c, err := kafka.NewStreamConsumer(e.kafka, e.kafka.Topics.Prefix+group, []string{e.kafka.Topics.Deliveries}, handle, testinfra.Logger())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = c.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			e.t.Errorf("consumer %s did not stop", group)
		}
	})
	return r
}

// waitHandled waits until n records have been handled: their outcomes are
// then acknowledged by Kafka.
func (r *running) waitHandled(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.handled() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%d records handled within %v, want %d (%d failed runs)", r.handled(), timeout, n, r.failed.Load())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitCommitted waits until group has committed the end of every
// partition of the deliveries topic: everything there is finished.
func waitCommitted(t testing.TB, e *env, group string) {
	t.Helper()
	adm := kadm.NewClient(e.producer)
	ctx := e.ctx()
	for {
		ends, err := adm.ListEndOffsets(ctx, e.kafka.Topics.Deliveries)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := adm.FetchOffsets(ctx, group)
		done := err == nil
		ends.Each(func(end kadm.ListedOffset) {
			if c, ok := committed.Lookup(end.Topic, end.Partition); end.Offset > 0 && (!ok || c.At < end.Offset) {
				done = false
			}
		})
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s did not commit everything", group)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// read returns every record written to topic so far.
func (e *env) read(topic string) []*kgo.Record {
	e.t.Helper()
	return testinfra.Records(e.t, e.kafka, topic)
}

// deliveries decodes the deliveries written to topic, by delivery id.
func (e *env) deliveries(topic string) map[string][]record.Delivery {
	e.t.Helper()
	out := map[string][]record.Delivery{}
	for _, r := range e.read(topic) {
		var d record.Delivery
		if err := e.codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
			e.t.Fatalf("%s holds an undecodable delivery: %v", topic, err)
		}
		out[d.ID] = append(out[d.ID], d)
	}
	return out
}

// retries decodes every retry tier, by delivery id.
func (e *env) retries() map[string][]record.Delivery {
	e.t.Helper()
	out := map[string][]record.Delivery{}
	for _, tier := range e.schedule.Tiers() {
		for id, ds := range e.deliveries(e.kafka.Topics.Retry(tier)) {
			out[id] = append(out[id], ds...)
		}
	}
	return out
}

// attempts decodes the delivery log, by delivery id.
func (e *env) attempts() map[string][]record.DeliveryAttempt {
	e.t.Helper()
	out := map[string][]record.DeliveryAttempt{}
	for _, r := range e.read(e.kafka.Topics.DeliveryLog) {
		var a record.DeliveryAttempt
		if err := e.codecs.Attempt.Unmarshal(r.Value, &a); err != nil {
			e.t.Fatalf("delivery log holds an undecodable attempt: %v", err)
		}
		out[a.DeliveryID] = append(out[a.DeliveryID], a)
	}
	return out
}

// partitions reads the deliveries topic into one Partition per partition,
// for tests that run a Dispatcher themselves (runOn).
func (e *env) partitions() []*kafka.Partition {
	e.t.Helper()
	byPartition := map[int32][]*kgo.Record{}
	for _, r := range e.read(e.kafka.Topics.Deliveries) {
		byPartition[r.Partition] = append(byPartition[r.Partition], r)
	}
	var out []*kafka.Partition
	for p, recs := range byPartition {
		out = append(out, kafka.NewPartition(e.kafka.Topics.Deliveries, p, recs))
	}
	return out
}

// runOn runs d on p until every record through offset last is finished,
// then stops it and returns nil; or returns what Run returned when it
// ended first (ctx ended, a write failed).
func runOn(ctx context.Context, d *dispatch.Dispatcher, p *kafka.Partition, last int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan error, 1)
	go func() { ended <- d.Run(ctx, p) }()
	for {
		select {
		case err := <-ended:
			return err
		case <-time.After(2 * time.Millisecond):
			if p.Finished() >= last {
				cancel()
				<-ended
				return nil
			}
		}
	}
}

// byID indexes receiver requests by webhook-id.
func byID(reqs []testreceiver.Request) map[string][]testreceiver.Request {
	out := map[string][]testreceiver.Request{}
	for _, r := range reqs {
		id := r.Header.Get(signature.HeaderID)
		out[id] = append(out[id], r)
	}
	return out
}

// statusHandler answers with the status named by the path /status/NNN and
// a Retry-After from the query ?retry-after=.
func statusHandler(w http.ResponseWriter, r *http.Request) {
	var code int
	if _, err := fmt.Sscanf(r.URL.Path, "/status/%d", &code); err != nil {
		code = http.StatusNoContent
	}
	if ra := r.URL.Query().Get("retry-after"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	if code >= 300 && code < 400 {
		w.Header().Set("Location", "/status/200")
	}
	w.WriteHeader(code)
}

var errRedisDown = errors.New("redis unreachable (test)")
