package pglogstore

// Benchmarks of the PostgreSQL store (make bench-logstore; not part of
// make test). They need HOOKLINE_POSTGRES_URL. The query benchmarks load
// a dataset of HOOKLINE_BENCH_ATTEMPTS attempts (200,000 unless set; the
// make target asks for 10 million) into a database of its own, kept for
// the next run, and report latency percentiles; the figures and plans
// are in docs/delivery-history.md.

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/testinfra"
)

// Dataset shape: 100 tenants of 100 subscriptions each; every event goes
// to two subscriptions of its tenant; one delivery in five needs a second
// attempt, 6% fail for good (2% at once, 4% after their retry); spread
// evenly over benchDays days ending at benchNow.
const (
	benchTenants = 100
	benchSubs    = 10_000
	benchDays    = 10
)

// benchNow is the dataset's and the store's fixed clock, so that a kept
// dataset never ages out of retention.
var benchNow = time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC)

func benchAttempts() int {
	if n, err := strconv.Atoi(os.Getenv("HOOKLINE_BENCH_ATTEMPTS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// payload is a typical shaped webhook body (~400 bytes).
func payload(eventID string, n int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"order.created","timestamp":"2026-01-05T10:00:00Z","subject":"ord_%d",`+
		`"data":{"id":"ord_%d","customer":"cus_%d","total":%d,"currency":"EUR","items":[{"sku":"sku_%d","qty":2,"price":1999},`+
		`{"sku":"sku_%d","qty":1,"price":4999}],"shipping":{"country":"DE","method":"express"}},"metadata":{"source":"shop"}}`,
		eventID, n, n, n%9973, 1000+n%50000, n%997, n%991)
}

// BenchmarkWrite measures the logs writer's path: each op is one Write
// of 1,000 new deliveries (with payloads), their 500 events and the
// first attempts of the previous op's deliveries (one in five failing and
// retrying), so that most attempts move a stored delivery forward, as
// when delivery records and attempts arrive in different batches. Two
// writers run at once, as two instances of the logs service would.
func BenchmarkWrite(b *testing.B) {
	s, err := Open(context.Background(), Config{URL: testinfra.Postgres(b), Now: func() time.Time { return benchNow }}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const perOp = 1000
	writers := 2
	var mu sync.Mutex
	next := 0
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		next++
		return next - 1
	}
	b.ResetTimer()
	start, pg0, go0 := time.Now(), testinfra.PostgresCPU(context.Background(), s.pool), testinfra.CPUTime()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	ops := b.N
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev []logstore.Delivery
			for i := w; i < ops; i += writers {
				batch := writeBatch(take(), perOp, prev)
				if _, err := s.Write(context.Background(), batch); err != nil {
					errs <- err
					return
				}
				prev = batch.Deliveries
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	pgCPU, goCPU := testinfra.PostgresCPU(context.Background(), s.pool)-pg0, testinfra.CPUTime()-go0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	attempts := float64(max(0, ops-writers)) * perOp // each writer's first op carries no attempts
	b.ReportMetric(attempts/elapsed.Seconds(), "attempts/s")
	if attempts > 0 {
		// What one attempt costs the server and the writer in CPU, and the
		// rate two otherwise idle cores would sustain at that cost.
		perAttempt := float64((pgCPU + goCPU).Microseconds()) / attempts
		b.ReportMetric(float64(pgCPU.Microseconds())/attempts, "pg-cpu-us/attempt")
		b.ReportMetric(float64(goCPU.Microseconds())/attempts, "go-cpu-us/attempt")
		b.ReportMetric(2e6/perAttempt, "attempts/s-at-2-cores")
	}
	// The share of state updates that wrote no index entry (HOT), from
	// the server's statistics, which backends report at most once a second.
	time.Sleep(1500 * time.Millisecond)
	var upd, hot int64
	if err := s.pool.QueryRow(context.Background(), `SELECT coalesce(sum(n_tup_upd), 0), coalesce(sum(n_tup_hot_upd), 0)
		FROM pg_stat_user_tables WHERE relname LIKE 'deliveries_p%'`).Scan(&upd, &hot); err == nil && upd > 0 {
		b.Logf("%d attempts: %d delivery state updates, %.1f%% of them HOT", int(attempts), upd, 100*float64(hot)/float64(upd))
	}
}

func writeBatch(op, n int, prev []logstore.Delivery) logstore.Batch {
	var batch logstore.Batch
	at := benchNow.Add(-time.Hour).Add(time.Duration(op) * time.Second)
	for i := range n {
		k := op*n + i
		sub := k % benchSubs
		tenant := "tenant_" + strconv.Itoa(sub/100)
		eventID := fmt.Sprintf("evt_w%025d", k/2)
		if k%2 == 0 {
			batch.Events = append(batch.Events, logstore.Event{Tenant: tenant, ID: eventID, Type: "order.created", Subject: "ord_" + eventID,
				Source: "shop", ReceivedAt: at, OccurredAt: at, Data: payload(eventID, k)})
		}
		batch.Deliveries = append(batch.Deliveries, logstore.Delivery{
			Tenant: tenant, ID: fmt.Sprintf("dlv_w%025d", k), SubscriptionID: fmt.Sprintf("sub_%05d", sub), EventID: eventID,
			EventType: "order.created", URL: "https://hooks.example.com/" + tenant, Payload: payload(eventID, k),
			CreatedAt: at.Add(time.Duration(i) * time.Microsecond), EventTime: at,
		})
	}
	for i, d := range prev {
		outcome, status := logstore.StateDelivered, int32(200)
		if i%5 == 0 {
			outcome, status = logstore.StateRetrying, 503
		}
		batch.Attempts = append(batch.Attempts, logstore.Attempt{
			Tenant: d.Tenant, DeliveryID: d.ID, DeliveryCreatedAt: d.CreatedAt, SubscriptionID: d.SubscriptionID, EventID: d.EventID,
			EventType: d.EventType, Number: 1, StartedAt: d.CreatedAt.Add(80 * time.Millisecond), DurationMS: 40 + int64(i%200), URL: d.URL,
			RequestHeaders: http.Header{"Content-Type": {"application/json"}, "Webhook-Id": {d.ID}, "Webhook-Timestamp": {"1767225600"},
				"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}, "User-Agent": {"Hookline/1"}},
			RequestBody: d.Payload, ResponseStatus: status, ResponseHeaders: http.Header{"Content-Type": {"application/json"}},
			ResponseBody: []byte(`{"ok":true}`), Outcome: outcome, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		})
	}
	return batch
}

// benchStore opens the kept dataset of n attempts, loading it first when
// missing.
func benchStore(b *testing.B, n int) (*Store, string) {
	b.Helper()
	base := os.Getenv("HOOKLINE_POSTGRES_URL")
	if base == "" {
		b.Skip("HOOKLINE_POSTGRES_URL is not set: make bench-logstore starts PostgreSQL")
	}
	name := "bench_logstore_" + strconv.Itoa(n)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		b.Fatal(err)
	}
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			b.Fatal(err)
		}
	}
	admin.Close(ctx)
	u, _ := url.Parse(base)
	u.Path = "/" + name
	s, err := Open(ctx, Config{URL: u.String(), Now: func() time.Time { return benchNow }, QueryTimeout: time.Minute}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	var loaded int
	_ = s.pool.QueryRow(ctx, "SELECT attempts FROM bench_dataset").Scan(&loaded)
	if loaded != n {
		start := time.Now()
		if err := loadDataset(ctx, s, n); err != nil {
			s.Close()
			b.Fatal(err)
		}
		b.Logf("loaded %d attempts in %s", n, time.Since(start).Round(time.Second))
	}
	return s, u.String()
}

// loadDataset fills the tables with generate_series, one day per
// statement, two days at a time (the machine's two cores), then vacuums
// and analyzes, as autovacuum would have by then.
func loadDataset(ctx context.Context, s *Store, n int) error {
	for _, t := range []string{"attempts", "deliveries", "events", "bodies"} {
		if _, err := s.pool.Exec(ctx, "TRUNCATE "+t); err != nil {
			return err
		}
	}
	if _, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS bench_dataset"); err != nil {
		return err
	}
	needs := map[string][]time.Time{}
	for d := range benchDays + 1 { // events and event times start a second before their first delivery
		for _, t := range tables {
			needs[t.name] = append(needs[t.name], benchNow.Add(-time.Duration(d+1)*day))
		}
	}
	if err := s.ensure(ctx, needs); err != nil {
		return err
	}
	deliveries := n * 5 / 6 // 1.2 attempts per delivery
	span := time.Duration(benchDays) * day
	days := make(chan int, benchDays)
	for d := range benchDays {
		days <- d
	}
	close(days)
	var wg sync.WaitGroup
	errs := make(chan error, benchDays)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range days {
				lo, hi := d*deliveries/benchDays, (d+1)*deliveries/benchDays-1
				if err := loadDay(ctx, s, lo, hi, deliveries, span); err != nil {
					errs <- fmt.Errorf("day %d: %w", d, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	for _, t := range []string{"events", "deliveries", "attempts", "bodies"} {
		if _, err := s.pool.Exec(ctx, "VACUUM (ANALYZE) "+t); err != nil {
			return err
		}
	}
	_, err := s.pool.Exec(ctx, "CREATE TABLE bench_dataset AS SELECT $1::int AS attempts", n)
	return err
}

// loadDay writes deliveries lo..hi, their events (one per two deliveries)
// and attempts, and the deliveries' payloads. Delivery i belongs to event
// e = i/2, of tenant e%100, and to that tenant's subscription
// (e/100*7 + i%2*17) % 100: the two deliveries of an event go to two
// subscriptions, and every subscription gets 1/10,000 of the deliveries,
// spread evenly over time.
func loadDay(ctx context.Context, s *Store, lo, hi, total int, span time.Duration) error {
	params := []any{lo, hi, total, benchNow.Add(-span), span.Seconds()}
	stmts := []string{
		// d(i, e, sub, tenant, created, payload)
		`CREATE TEMP VIEW d AS
		 SELECT i, i / 2 AS e,
		        ((i / 2) % 100) * 100 + ((i / 200) * 7 + (i % 2) * 17) % 100 AS sub,
		        (i / 2) % 100 AS tenant,
		        -- r: 0..99 spread evenly over every tenant and subscription
		        -- (Knuth's multiplicative hash), drawing each delivery's fate.
		        (i::bigint * 2654435761 % 4294967296) % 100 AS r,
		        $4::timestamptz + make_interval(secs => $5::float8 * i / $3) AS created,
		        convert_to(format('{"id":"evt_%s","type":"order.created","timestamp":"2026-01-05T10:00:00Z","subject":"ord_%s","data":{"id":"ord_%s","customer":"cus_%s","total":%s,"currency":"EUR","items":[{"sku":"sku_%s","qty":2,"price":1999},{"sku":"sku_%s","qty":1,"price":4999}],"shipping":{"country":"DE","method":"express"}},"metadata":{"source":"shop"}}',
		               substr(md5((i / 2)::text), 1, 26), i / 2, i / 2, (i / 2) % 9973, 1000 + i % 50000, i % 997, i % 991), 'UTF8') AS payload
		 FROM generate_series($1::int, $2::int) i`,
		`INSERT INTO bodies (hash, day, body)
		 SELECT substr(sha256(payload), 1, 16), (created AT TIME ZONE 'UTC')::date, payload FROM d
		 ON CONFLICT DO NOTHING`,
		`INSERT INTO events (tenant, id, received_at, type, subject, source, occurred_at, data)
		 SELECT 'tenant_' || tenant, 'evt_' || substr(md5(e::text), 1, 26), created - interval '20 ms', 'order.created',
		        'ord_' || e, 'shop', created - interval '1 s', convert_from(payload, 'UTF8')
		 FROM d WHERE i % 2 = 0`,
		`INSERT INTO deliveries (tenant, id, created_at, subscription_id, event_id, event_type, url, payload_hash, event_time,
		                         state, attempts, last_attempt_at, updated_at, last_status, last_error, next_attempt_at)
		 SELECT 'tenant_' || tenant, 'dlv_' || substr(md5('d' || i), 1, 26), created, 'sub_' || lpad(sub::text, 5, '0'),
		        'evt_' || substr(md5(e::text), 1, 26), 'order.created', 'https://hooks.example.com/' || tenant,
		        substr(sha256(payload), 1, 16), created - interval '1 s',
		        CASE WHEN r < 4 OR r >= 98 THEN 2 ELSE 3 END,
		        CASE WHEN r < 20 THEN 2 ELSE 1 END,
		        created + CASE WHEN r < 20 THEN interval '30 s' ELSE interval '50 ms' END,
		        created + CASE WHEN r < 20 THEN interval '30 s' ELSE interval '50 ms' END,
		        CASE WHEN r < 4 OR r >= 98 THEN 400 ELSE 200 END, '', NULL
		 FROM d`,
		// Attempt 1 of every delivery, attempt 2 of one in five.
		`INSERT INTO attempts (tenant, delivery_id, attempt, started_at, delivery_created_at, subscription_id, event_id,
		                       event_type, url, outcome, duration_ms, request_headers, body_hash, response_status,
		                       response_headers, response_body, response_truncated, error, next_attempt_at, replay, trace_id)
		 SELECT 'tenant_' || tenant, 'dlv_' || substr(md5('d' || i), 1, 26), n,
		        created + CASE n WHEN 1 THEN interval '50 ms' ELSE interval '30 s' END, created,
		        'sub_' || lpad(sub::text, 5, '0'), 'evt_' || substr(md5(e::text), 1, 26), 'order.created',
		        'https://hooks.example.com/' || tenant,
		        CASE WHEN n = 1 AND r < 20 THEN 1 WHEN r < 4 OR r >= 98 THEN 2 ELSE 3 END,
		        20 + (i::bigint * 7919 + n) % 480,
		        jsonb_build_object('Content-Type', jsonb_build_array('application/json'),
		                           'Webhook-Id', jsonb_build_array('dlv_' || substr(md5('d' || i), 1, 26)),
		                           'Webhook-Timestamp', jsonb_build_array(extract(epoch FROM created)::bigint::text),
		                           'Webhook-Signature', jsonb_build_array('v1,' || encode(sha256(payload), 'base64')),
		                           'User-Agent', jsonb_build_array('Hookline/1')),
		        substr(sha256(payload), 1, 16),
		        CASE WHEN n = 1 AND r < 20 THEN 503 WHEN r < 4 OR r >= 98 THEN 400 ELSE 200 END,
		        '{"Content-Type":["application/json"]}'::jsonb,
		        CASE WHEN n = 1 AND r < 20 THEN '{"error":"busy"}'::bytea WHEN r < 4 OR r >= 98 THEN '{"error":"unknown order"}'::bytea ELSE '{"ok":true}'::bytea END,
		        false, '', CASE WHEN n = 1 AND r < 20 THEN created + interval '30 s' END, false,
		        md5(i::text)
		 FROM d, generate_series(1, CASE WHEN r < 20 THEN 2 ELSE 1 END) n`,
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	defer func() { _, _ = conn.Exec(context.Background(), "DROP VIEW IF EXISTS d") }()
	// The view holds the day's parameters as constants: a view cannot take
	// parameters, so they are inlined once here.
	view := stmts[0]
	for i := len(params); i >= 1; i-- {
		view = strings.ReplaceAll(view, "$"+strconv.Itoa(i), literal(params[i-1]))
	}
	if _, err := conn.Exec(ctx, view); err != nil {
		return fmt.Errorf("view: %w", err)
	}
	for _, sql := range stmts[1:] {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%.60s: %w", strings.TrimSpace(sql), err)
		}
	}
	return nil
}

func literal(v any) string {
	switch v := v.(type) {
	case time.Time:
		return "'" + v.Format(time.RFC3339Nano) + "'"
	default:
		return fmt.Sprint(v)
	}
}

// latencies runs q b.N times and reports its percentiles in ms.
func latencies(b *testing.B, q func(r *rand.Rand) error) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := q(r); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p float64) float64 {
		return float64(took[min(len(took)-1, int(p*float64(len(took))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func randomSub(r *rand.Rand) (tenant, sub string) {
	n := r.IntN(benchSubs)
	return "tenant_" + strconv.Itoa(n/100), fmt.Sprintf("sub_%05d", n)
}

// BenchmarkQuery measures the API's reads on the kept dataset, through
// the Store (pgx included), and logs each query's plan and the storage
// each attempt takes.
func BenchmarkQuery(b *testing.B) {
	n := benchAttempts()
	s, _ := benchStore(b, n)
	defer s.Close()
	ctx := context.Background()
	deliveries := n * 5 / 6
	randomEvent := func(r *rand.Rand) (tenant, id string) {
		e := r.IntN(deliveries / 2)
		return "tenant_" + strconv.Itoa(e%100), fmt.Sprintf("evt_%.26s", md5hex(strconv.Itoa(e)))
	}
	randomDelivery := func(r *rand.Rand) (tenant, id string) {
		i := r.IntN(deliveries)
		return "tenant_" + strconv.Itoa((i/2)%100), fmt.Sprintf("dlv_%.26s", md5hex("d"+strconv.Itoa(i)))
	}
	day := benchNow.Add(-24 * time.Hour)

	b.Run("attempts-page-status", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, sub := randomSub(r)
			_, err := s.ListAttempts(ctx, tenant, logstore.AttemptQuery{SubscriptionID: sub, Status: logstore.StateFailed, Limit: 50})
			return err
		})
	})
	b.Run("attempts-page", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, sub := randomSub(r)
			_, err := s.ListAttempts(ctx, tenant, logstore.AttemptQuery{SubscriptionID: sub, Limit: 50})
			return err
		})
	})
	b.Run("attempts-page-3", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, sub := randomSub(r)
			q := logstore.AttemptQuery{SubscriptionID: sub, Limit: 50}
			for range 3 {
				p, err := s.ListAttempts(ctx, tenant, q)
				if err != nil || p.Next == "" {
					return err
				}
				q.Cursor = p.Next
			}
			return nil
		})
	})
	b.Run("event-by-id", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, id := randomEvent(r)
			_, err := s.GetEvent(ctx, tenant, id)
			return err
		})
	})
	b.Run("event-with-deliveries", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, id := randomEvent(r)
			if _, err := s.GetEvent(ctx, tenant, id); err != nil {
				return err
			}
			p, err := s.ListDeliveries(ctx, tenant, logstore.DeliveryQuery{EventID: id})
			if err == nil && len(p.Items) != 2 {
				err = fmt.Errorf("event %s has %d deliveries, want 2", id, len(p.Items))
			}
			return err
		})
	})
	b.Run("delivery-by-id", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, id := randomDelivery(r)
			d, err := s.GetDelivery(ctx, tenant, id)
			if err == nil && d.Payload == nil {
				err = fmt.Errorf("delivery %s without payload", id)
			}
			return err
		})
	})
	b.Run("delivery-attempts-with-body", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, id := randomDelivery(r)
			_, err := s.ListAttempts(ctx, tenant, logstore.AttemptQuery{DeliveryID: id, WithBody: true})
			return err
		})
	})
	b.Run("deliveries-page-failed", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, sub := randomSub(r)
			_, err := s.ListDeliveries(ctx, tenant, logstore.DeliveryQuery{SubscriptionID: sub, Status: logstore.StateFailed, Limit: 50})
			return err
		})
	})
	b.Run("events-page-type", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			_, err := s.ListEvents(ctx, "tenant_"+strconv.Itoa(r.IntN(benchTenants)), logstore.EventQuery{Type: "order.created", Limit: 50})
			return err
		})
	})
	b.Run("stats-day", func(b *testing.B) {
		latencies(b, func(r *rand.Rand) error {
			tenant, sub := randomSub(r)
			_, err := s.Stats(ctx, tenant, logstore.StatsQuery{SubscriptionID: sub, Since: day, Until: benchNow})
			return err
		})
	})

	// Storage per attempt, everything included (heap, TOAST, indexes) and
	// what 30 days at 1,000 attempts/s would take at that rate.
	var total int64
	sizes := map[string]int64{}
	for _, t := range tables {
		var size int64
		err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)
			FROM pg_inherits i WHERE i.inhparent = $1::regclass`, t.name).Scan(&size)
		if err != nil {
			b.Fatal(err)
		}
		sizes[t.name], total = size, total+size
	}
	perAttempt := float64(total) / float64(n)
	b.Logf("storage: %d attempts take %.2f GiB: %.0f bytes per attempt (events %.0f, deliveries %.0f, attempts %.0f, bodies %.0f); 30 days at 1,000 attempts/s: %.0f GiB",
		n, float64(total)/(1<<30), perAttempt, float64(sizes["events"])/float64(n), float64(sizes["deliveries"])/float64(n),
		float64(sizes["attempts"])/float64(n), float64(sizes["bodies"])/float64(n), perAttempt*1000*86400*30/(1<<30))

	explain(b, s, randomSub, randomEvent, day)
}

// explain logs the plans of the main queries, with the parameters of one
// random subscription and event, exactly as the store builds them.
func explain(b *testing.B, s *Store, randomSub func(*rand.Rand) (string, string), randomEvent func(*rand.Rand) (string, string), day time.Time) {
	r := rand.New(rand.NewPCG(3, 4))
	tenant, sub := randomSub(r)
	etenant, event := randomEvent(r)
	type plan struct {
		name string
		sql  string
		args []any
	}
	var plans []plan
	add := func(name, sql string, args []any, err error) {
		if err != nil {
			b.Fatal(err)
		}
		plans = append(plans, plan{name, sql, args})
	}
	sql, args, _, err := attemptsQuery(tenant, logstore.AttemptQuery{SubscriptionID: sub, Status: logstore.StateFailed, Limit: 50})
	add("attempts of a subscription, status=failed, first page", sql, args, err)
	sql, args, _, err = attemptsQuery(tenant, logstore.AttemptQuery{SubscriptionID: sub, Limit: 50,
		Cursor: logstore.AttemptCursor(logstore.Attempt{StartedAt: benchNow.Add(-5 * 24 * time.Hour), DeliveryID: "dlv_z", Number: 1})})
	add("attempts of a subscription, a page from a cursor 5 days back", sql, args, err)
	add("event by id", getEventSQL, []any{etenant, event}, nil)
	sql, args, _, err = deliveriesQuery(etenant, logstore.DeliveryQuery{EventID: event})
	add("deliveries of an event", sql, args, err)
	add("stats of a subscription over a day", statsSQL, []any{tenant, sub, day, benchNow}, nil)
	for _, p := range plans {
		rows, err := s.pool.Query(context.Background(), "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+p.sql, p.args...)
		if err != nil {
			b.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("plan: %s\n%s\n%s", p.name, p.sql, strings.Join(lines, "\n"))
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
