package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/services/logs/internal/history"
)

// benchPayload is a delivery's body of about 400 bytes.
var benchPayload = `{"id":"evt_2bT9xk3LQm7vR1pZ","type":"order.created","timestamp":"2025-01-01T12:00:00Z",` +
	`"subject":"order_81723","data":{"order_id":"order_81723","customer":{"id":"cus_9921","email":"ada@example.com",` +
	`"country":"GB"},"total":{"amount":12999,"currency":"EUR"},"items":[{"sku":"SKU-1","qty":2,"price":4999}],` +
	`"status":"paid","notes":"leave at the door"},"metadata":{"source":"shop","region":"eu-west-1"}}`

// BenchmarkWriter measures the logs service end to end: b.N attempts
// already in Kafka (with their deliveries, and an event per two
// deliveries, as the pipeline writes them: one delivery in five retried
// once) read by the service as main runs it and written into a real
// PostgreSQL, timed from the first attempt stored to the last. It reports
// attempts/s, and the CPU per attempt of the service (this process) and of
// the database server, which other load on the machine does not inflate
// the way it does wall time. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench BenchmarkWriter -benchtime 200000x .
func BenchmarkWriter(b *testing.B) {
	kcfg := testinfra.Kafka(b)
	dbURL := testinfra.Postgres(b)
	cfg := testSettings(b, kcfg, dbURL)
	// The service's defaults, not the tests' small batches.
	cfg.MaxBatch, cfg.Linger, cfg.MaxConns = history.DefaultMaxBatch, history.DefaultLinger, 8
	codecs, err := record.LoadCodecs()
	if err != nil {
		b.Fatal(err)
	}
	prod, err := kafka.NewClient(kcfg, testinfra.Logger())
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	topics := kcfg.Topics

	// The records, produced before the service starts.
	now := time.Now().UTC().Truncate(time.Millisecond)
	var recs []*kgo.Record
	flush := func() {
		if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		recs = recs[:0]
	}
	attempts, deliveries, events := 0, 0, 0
	for i := 0; attempts < b.N; i++ {
		ev := record.Event{ID: fmt.Sprintf("evt_%010d", i/2), Tenant: fmt.Sprintf("tenant_%02d", i%100), Type: "order.created",
			Subject: "ord", OccurredAt: now, ReceivedAt: now, Data: `{"total":42}`, Changed: []string{}}
		if i%2 == 0 {
			recs = append(recs, encode(b, topics.Events, ev.Subject, codecs.Event.Marshal, &ev))
			events++
		}
		d := record.Delivery{ID: fmt.Sprintf("dlv_%012d", i), Tenant: ev.Tenant, SubscriptionID: fmt.Sprintf("sub_%04d", i%10_000),
			EventID: ev.ID, EventType: ev.Type, URL: "https://example.com/hooks", Payload: benchPayload,
			CreatedAt: now, EventTime: now, ResolveURL: true}
		recs = append(recs, encode(b, topics.Deliveries, d.SubscriptionID, codecs.Delivery.Marshal, &d))
		deliveries++
		n := 1
		if i%5 == 0 {
			n = 2
		}
		for a := 1; a <= n && attempts < b.N; a++ {
			at := attemptOf(d, int32(a), now.Add(time.Duration(a)*time.Second), record.OutcomeDelivered, 204)
			at.RequestHeaders = map[string][]string{
				"Content-Type": {"application/json"}, "User-Agent": {"Hookline-Webhooks/1.0"}, "Webhook-Id": {d.ID},
				"Webhook-Timestamp": {"1767268800"}, "Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
				"X-Hub-Signature-256": {"sha256=7d38cdd689735b008b3c702edd92eea23791c5f6"}, "Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			}
			if a < n {
				next := at.StartedAt.Add(time.Second)
				at.Outcome, at.StatusCode, at.NextAttemptAt, at.ResponseBody = record.OutcomeRetrying, 503, &next, []byte("busy")
			}
			recs = append(recs, encode(b, topics.DeliveryLog, d.ID, codecs.Attempt.Marshal, &at))
			attempts++
		}
		if len(recs) >= 5000 {
			flush()
		}
	}
	flush()

	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, testinfra.Logger()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("run: %v", err)
		}
	}()
	stored := func() int {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM attempts").Scan(&n); err != nil {
			return 0
		}
		return n
	}
	b.ResetTimer()
	deadline := time.Now().Add(30 * time.Minute)
	var t0 time.Time
	var n0 int
	var go0, pg0 time.Duration
	for {
		n := stored()
		if n > 0 && t0.IsZero() {
			t0, n0, go0, pg0 = time.Now(), n, testinfra.CPUTime(), testinfra.PostgresCPU(context.Background(), conn)
		}
		if n >= b.N {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d attempts stored within 30 minutes", n, b.N)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(t0)
	goCPU, pgCPU := testinfra.CPUTime()-go0, testinfra.PostgresCPU(context.Background(), conn)-pg0
	b.StopTimer()
	written := float64(b.N - n0)
	b.ReportMetric(written/took.Seconds(), "attempts/s")
	b.ReportMetric(float64(goCPU.Microseconds())/written, "service-cpu-µs/attempt")
	b.ReportMetric(float64(pgCPU.Microseconds())/written, "server-cpu-µs/attempt")
	if pgCPU > 0 {
		// What two idle cores would sustain at these costs: the machine is
		// shared, so wall time understates it.
		b.ReportMetric(2e6/(float64(goCPU.Microseconds()+pgCPU.Microseconds())/written), "attempts/s-at-2-cores")
	}
	b.ReportMetric(float64(deliveries+events)/float64(b.N), "other-records/attempt")
}

func encode[T any](b *testing.B, topic, key string, marshal func(*T) ([]byte, error), v *T) *kgo.Record {
	value, err := marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
}
