package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/logstore/pglogstore"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/logs/internal/history"
)

// stack is the logs service running as main runs it, on the test's
// topics and a database.
type stack struct {
	t      *testing.T
	cfg    settings
	codecs *record.Codecs
	prod   *kgo.Client
	cancel context.CancelFunc
	done   chan error
}

// testSettings are main's settings for a test on kcfg and dbURL.
func testSettings(tb testing.TB, kcfg kafka.Config, dbURL string) settings {
	tb.Helper()
	sch, err := backoff.Parse("1s,2s")
	if err != nil {
		tb.Fatal(err)
	}
	return settings{
		Base:        service.Base{Name: "logs", LogLevel: "warn", OpsAddr: testinfra.FreeAddr(tb), Kafka: kcfg, Schedule: sch},
		Group:       kcfg.Topics.Prefix + "logs",
		PostgresURL: dbURL, Retention: logstore.DefaultRetention, MaxConns: 4,
		MaxBatch: 500, Linger: 20 * time.Millisecond, Writers: 2, Maintain: time.Hour,
	}
}

func start(t *testing.T, kcfg kafka.Config, dbURL string) *stack {
	t.Helper()
	s := &stack{t: t, done: make(chan error, 1), cfg: testSettings(t, kcfg, dbURL)}
	var err error
	if s.codecs, err = record.LoadCodecs(); err != nil {
		t.Fatal(err)
	}
	if s.prod, err = kafka.NewClient(kcfg, testinfra.Logger()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.prod.Close)
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	go func() { s.done <- run(ctx, s.cfg, testinfra.Logger()) }()
	t.Cleanup(s.stop)
	return s
}

func (s *stack) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Error("the logs service did not stop within 30s")
	}
}

func (s *stack) produce(recs ...*kgo.Record) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) event(e record.Event) *kgo.Record {
	v, err := s.codecs.Event.Marshal(&e)
	if err != nil {
		s.t.Fatal(err)
	}
	return &kgo.Record{Topic: s.cfg.Kafka.Topics.Events, Key: []byte(e.Subject), Value: v}
}

func (s *stack) delivery(topic string, d record.Delivery) *kgo.Record {
	v, err := s.codecs.Delivery.Marshal(&d)
	if err != nil {
		s.t.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(d.SubscriptionID), Value: v}
}

func (s *stack) attempt(a record.DeliveryAttempt) *kgo.Record {
	v, err := s.codecs.Attempt.Marshal(&a)
	if err != nil {
		s.t.Fatal(err)
	}
	return &kgo.Record{Topic: s.cfg.Kafka.Topics.DeliveryLog, Key: []byte(a.DeliveryID), Value: v}
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newDelivery(tenant, sub string, now time.Time) record.Delivery {
	ev := "evt_" + randomID()
	return record.Delivery{
		ID: "dlv_" + randomID(), Tenant: tenant, SubscriptionID: sub, EventID: ev, EventType: "order.created",
		URL: "https://example.com/hook", Payload: `{"id":"` + ev + `"}`, CreatedAt: now, EventTime: now, ResolveURL: true,
	}
}

func attemptOf(d record.Delivery, n int32, at time.Time, outcome string, status int32) record.DeliveryAttempt {
	created := d.CreatedAt
	return record.DeliveryAttempt{
		DeliveryID: d.ID, Tenant: d.Tenant, SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventType: d.EventType,
		URL: d.URL, Attempt: n, StartedAt: at, DurationMS: 12, StatusCode: status, Outcome: outcome,
		DeliveryCreatedAt: &created, RequestHeaders: map[string][]string{"Webhook-Id": {d.ID}},
		ResponseHeaders: map[string][]string{"Content-Type": {"text/plain"}}, ResponseBody: []byte("ok"),
	}
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func reader(t *testing.T, dbURL string) *pglogstore.Store {
	t.Helper()
	r, err := pglogstore.Open(context.Background(), pglogstore.Config{URL: dbURL, ReadOnly: true}, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestRun: the service stores what the four topics say, each delivery at
// its latest state, the body of every attempt (a payload once, a batch's
// array once for all its deliveries), diverts what it cannot store with
// the reason, commits what it stored, and exports its lag.
func TestRun(t *testing.T) {
	kcfg := testinfra.Kafka(t)
	dbURL := testinfra.Postgres(t)
	s := start(t, kcfg, dbURL)
	topics := kcfg.Topics
	now := time.Now().UTC().Truncate(time.Millisecond)

	ev := record.Event{ID: "evt_" + randomID(), Tenant: "acme", Type: "order.created", Subject: "ord_1",
		OccurredAt: now, ReceivedAt: now, Data: `{"total":42}`, Changed: []string{}}
	single := newDelivery("acme", "sub_1", now)
	single.EventID = ev.ID
	retried := newDelivery("acme", "sub_1", now)
	dead := newDelivery("acme", "sub_1", now)
	dead.LastError = "HTTP 400"
	b1, b2 := newDelivery("acme", "sub_2", now), newDelivery("acme", "sub_2", now)
	array := []byte("[" + b1.Payload + "," + b2.Payload + "]")
	sum := sha256.Sum256(array)
	carrier := attemptOf(b1, 1, now.Add(time.Second), record.OutcomeDelivered, 200)
	carrier.RequestBody, carrier.RequestBodySHA256 = array, sum[:]
	named := attemptOf(b2, 1, now.Add(time.Second), record.OutcomeDelivered, 200)
	named.RequestBodySHA256 = sum[:]
	s.produce(
		s.event(ev),
		s.delivery(topics.Deliveries, single), s.delivery(topics.Deliveries, retried), s.delivery(topics.Deliveries, dead),
		s.delivery(topics.Deliveries, b1), s.delivery(topics.Deliveries, b2),
		s.attempt(attemptOf(single, 1, now.Add(time.Second), record.OutcomeDelivered, 204)),
		s.attempt(attemptOf(retried, 1, now.Add(time.Second), record.OutcomeRetrying, 503)),
		s.attempt(attemptOf(dead, 1, now.Add(time.Second), record.OutcomeDeadLettered, 400)),
		s.delivery(topics.DLQ, dead),
		s.attempt(named), s.attempt(carrier),
		// Poison: not a record, and an attempt the store refuses.
		&kgo.Record{Topic: topics.DeliveryLog, Key: []byte("x"), Value: []byte("not avro")},
		s.attempt(record.DeliveryAttempt{DeliveryID: "dlv_bad", Tenant: "acme", SubscriptionID: "sub_1", EventID: "evt_x",
			Attempt: 1, StartedAt: now, Outcome: "exploded"}),
		// The DLQ's copy of a delivery the sender could not read: not history.
		&kgo.Record{Topic: topics.DLQ, Key: []byte("x"), Value: []byte("not avro either")},
	)

	r := reader(t, dbURL)
	ctx := context.Background()
	waitFor(t, "every attempt stored", 60*time.Second, func() bool {
		for _, id := range []string{single.ID, retried.ID, dead.ID, b1.ID, b2.ID} {
			p, err := r.ListAttempts(ctx, "acme", logstore.AttemptQuery{DeliveryID: id})
			if err != nil || len(p.Items) != 1 {
				return false
			}
		}
		d, err := r.GetDelivery(ctx, "acme", dead.ID)
		return err == nil && d.State == logstore.StateFailed
	})
	if got, err := r.GetEvent(ctx, "acme", ev.ID); err != nil || string(got.Data) != ev.Data {
		t.Errorf("event read back as %+v, %v", got, err)
	}
	states := map[string]logstore.State{single.ID: logstore.StateDelivered, retried.ID: logstore.StateRetrying,
		dead.ID: logstore.StateFailed, b1.ID: logstore.StateDelivered}
	for id, want := range states {
		if d, err := r.GetDelivery(ctx, "acme", id); err != nil || d.State != want || d.Payload == nil {
			t.Errorf("delivery %s: state %q, payload %q, %v; want %q with its payload", id, d.State, d.Payload, err, want)
		}
	}
	bodies := map[string]string{single.ID: single.Payload, b1.ID: string(array), b2.ID: string(array)}
	for id, want := range bodies {
		p, err := r.ListAttempts(ctx, "acme", logstore.AttemptQuery{DeliveryID: id, WithBody: true})
		if err != nil || len(p.Items) != 1 || string(p.Items[0].RequestBody) != want {
			t.Errorf("attempt of %s: %+v, %v; want its body %s", id, p.Items, err, want)
		}
	}

	rejected := readAll(t, kcfg, topics.IngestRejected, 2)
	for _, rec := range rejected {
		h := header(rec, wire.HeaderError)
		if !strings.HasPrefix(h, "not stored in the delivery history") || !strings.HasPrefix(header(rec, wire.HeaderSource), topics.DeliveryLog+"/") {
			t.Errorf("rejected record with headers %v", rec.Headers)
		}
	}
	if !strings.Contains(header(rejected[0], wire.HeaderError)+header(rejected[1], wire.HeaderError), "outcome") {
		t.Errorf("the refused attempt's reason does not name its field: %v", rejected)
	}

	metrics := scrape(t, "http://"+s.cfg.OpsAddr+"/metrics")
	waitFor(t, "lag measured", 2*history.LagEvery+5*time.Second, func() bool {
		metrics = scrape(t, "http://"+s.cfg.OpsAddr+"/metrics")
		return strings.Contains(metrics, `hookline_logs_lag_records{topic="`+topics.DeliveryLog+`"} 0`)
	})
	for _, want := range []string{`hookline_logs_rows_total{table="attempts"} 5`, `hookline_logs_diverted_total{topic="` + topics.DeliveryLog + `"} 2`,
		`hookline_logs_skipped_total{topic="` + topics.DLQ + `"} 1`, `hookline_logs_store_up 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	s.stop()
	checkCommitted(t, kcfg, s.cfg.Group, history.Topics(topics))
}

// TestDatabaseRestartLosesNothing: PostgreSQL stopped mid-stream
// (deploy/scripts/postgres.sh down) and started again: the service pauses
// with its offsets held, then catches up, and the store holds exactly the
// attempts of the topic.
func TestDatabaseRestartLosesNothing(t *testing.T) {
	kcfg := testinfra.Kafka(t)
	pg := testinfra.StartPostgres(t)
	s := start(t, kcfg, pg.URL)
	const total, rate = 2000, 400 // attempts, per second
	produced := make(chan int, 1)
	go func() {
		n := 0
		tick := time.NewTicker(time.Second / 10)
		defer tick.Stop()
		for n < total {
			<-tick.C
			var recs []*kgo.Record
			for range rate / 10 {
				d := newDelivery("acme", fmt.Sprintf("sub_%d", n%10), time.Now().UTC())
				recs = append(recs, s.attempt(attemptOf(d, 1, time.Now().UTC(), record.OutcomeDelivered, 204)))
				n++
			}
			s.produce(recs...)
		}
		produced <- n
	}()
	time.Sleep(time.Second)
	pg.Stop(t)
	time.Sleep(2 * time.Second)
	pg.Start(t)
	n := <-produced

	conn, err := pgx.Connect(context.Background(), pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored int
	waitFor(t, fmt.Sprintf("%d attempts in the store", n), 90*time.Second, func() bool {
		return conn.QueryRow(context.Background(), "SELECT count(*) FROM attempts").Scan(&stored) == nil && stored >= n
	})
	if stored != n {
		t.Errorf("the store holds %d attempts, the topic %d", stored, n)
	}
	metrics := scrape(t, "http://"+s.cfg.OpsAddr+"/metrics")
	if strings.Contains(metrics, "hookline_logs_write_failures_total 0\n") {
		t.Error("no write failed: the database stop was not seen (the test proves nothing)")
	}
	s.stop()
	checkCommitted(t, kcfg, s.cfg.Group, []string{kcfg.Topics.DeliveryLog})
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// readAll reads n records of topic from its start.
func readAll(t *testing.T, kcfg kafka.Config, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kafka.NewClient(kcfg, testinfra.Logger(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d records of %s within 30s, want %d", len(out), topic, n)
		}
		out = append(out, fetches.Records()...)
	}
	return out
}

// checkCommitted: the group committed the end of every partition of topics.
func checkCommitted(t *testing.T, kcfg kafka.Config, group string, topics []string) {
	t.Helper()
	cl, err := kafka.NewClient(kcfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(end kadm.ListedOffset) {
		if c, ok := committed.Lookup(end.Topic, end.Partition); end.Offset > 0 && (!ok || c.At != end.Offset) {
			t.Errorf("%s/%d: committed %d, end %d", end.Topic, end.Partition, c.At, end.Offset)
		}
	})
}
