package dispatch_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// The benchmark's shape: endpoints and the sender's concurrency settings
// (main's defaults).
const (
	benchEndpoints   = 10
	benchPerEndpoint = 16
	benchInFlight    = 512
)

// benchPayload is a typical event of about 500 bytes.
var benchPayload = `{"id":"evt_2bT9xk3LQm7vR1pZ","type":"order.created","timestamp":"2025-01-01T12:00:00Z",` +
	`"subject":"order_81723","data":{"order_id":"order_81723","customer":{"id":"cus_9921","email":"ada@example.com",` +
	`"country":"GB"},"total":{"amount":12999,"currency":"EUR"},"items":[{"sku":"SKU-1","qty":2,"price":4999},` +
	`{"sku":"SKU-7","qty":1,"price":3001}],"status":"paid","notes":"leave at the door"},"metadata":{"source":"shop",` +
	`"region":"eu-west-1"}}`

// BenchmarkSender measures deliveries per second of the sender consuming
// b.N pre-produced deliveries for 10 endpoints on a local HTTPS/HTTP2 sink
// that answers 204 (idempotency, signing and the delivery log on), and in
// the same run the sink's bare ceiling: a plain http.Client posting the
// same bodies with the same concurrency (the sender's bound, 10 endpoints
// x 16, or x max_in_flight), measured before and after the sender. Run it
// with a fixed count, e.g.
//
//	go test -run '^$' -bench BenchmarkSender -benchtime 20000x ./internal/dispatch
//
// max_in_flight=1 is ten endpoints that take one request at a time: their
// rate is one over the time each request holds its place.
func BenchmarkSender(b *testing.B) {
	for _, bc := range []struct {
		name        string
		rate        int32 // per endpoint; high enough never to hold anything back
		maxInFlight int32 // per endpoint; 0 for the sender's adaptive limit
	}{
		{"ratelimit=off", 0, 0},
		{"ratelimit=on", 1_000_000, 0},
		{"max_in_flight=1", 0, 1},
	} {
		b.Run(bc.name, func(b *testing.B) { benchmarkSender(b, bc.rate, bc.maxInFlight) })
	}
}

func benchmarkSender(b *testing.B, rate, maxInFlight int32) {
	b.StopTimer()
	e := newEnv(b)
	sink := testreceiver.NewSink(b)
	subs := make([]*record.Subscription, benchEndpoints)
	for i := range subs {
		subs[i], _ = e.subscribe(sink.URL+"/hooks/"+strconv.Itoa(i), []time.Duration{0}, func(s *record.Subscription) {
			s.RateLimitPerSecond, s.MaxInFlight = rate, maxInFlight
		})
	}
	ds := make([]record.Delivery, b.N)
	for i := range ds {
		ds[i] = e.delivery(subs[i%len(subs)], benchPayload)
	}
	for chunk := range slices.Chunk(ds, 10_000) {
		e.publish(chunk...)
	}

	// The machine is shared: take the ceiling on both sides of the sender
	// and compare with their mean.
	concurrency := min(benchInFlight, benchEndpoints*cmp.Or(int(maxInFlight), benchPerEndpoint))
	body := []byte(benchPayload)
	ceilingTook, ceilingCPU := postBare(b, sink, body, b.N, concurrency)

	// Redis as main connects to it (REDIS_POOL_SIZE defaults to 64).
	rdb := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr, PoolSize: 64})
	defer rdb.Close()
	var trips roundTrips
	rdb.AddHook(&trips)
	s := e.senderWith(sink, rdb)
	s.PerEndpoint, s.MaxInFlight = benchPerEndpoint, benchInFlight
	before := sink.Count()
	run := e.run(s, "bench")
	select {
	case <-run.started:
	case <-time.After(30 * time.Second):
		b.Fatal("the sender got no batch within 30 s")
	}
	start, cpu := time.Now(), testinfra.CPUTime()
	b.StartTimer()
	run.waitHandled(b, b.N, 5*time.Minute)
	b.StopTimer()
	senderTook, senderCPU := time.Since(start), testinfra.CPUTime()-cpu
	if got := testutil.ToFloat64(s.Metrics.Attempts.WithLabelValues(record.OutcomeDelivered)); got != float64(b.N) || sink.Count()-before != int64(b.N) {
		b.Fatalf("%v delivered, sink got %d; want %d", got, sink.Count()-before, b.N)
	}

	againTook, againCPU := postBare(b, sink, body, b.N, concurrency)
	ceilingTook, ceilingCPU = (ceilingTook+againTook)/2, (ceilingCPU+againCPU)/2
	senderRate := float64(b.N) / senderTook.Seconds()
	ceilingRate := float64(b.N) / ceilingTook.Seconds()
	b.ReportMetric(senderRate, "deliveries/s")
	b.ReportMetric(ceilingRate, "ceiling/s")
	b.ReportMetric(senderRate/ceilingRate, "ratio")
	// CPU time of this process (sender or bare client, and the sink) per
	// delivery: the ratio of the two is what the wall-clock ratio would be
	// if this process had the CPU to itself. Kafka's and Redis's work is
	// in their own processes and not counted.
	b.ReportMetric(float64(senderCPU.Microseconds())/float64(b.N), "cpu-µs/delivery")
	b.ReportMetric(float64(ceilingCPU.Microseconds())/float64(b.N), "ceiling-cpu-µs/post")
	b.ReportMetric(float64(ceilingCPU)/float64(senderCPU), "cpu-ratio")
	b.ReportMetric(float64(trips.n.Load())/float64(b.N), "redis-trips/delivery")
}

// roundTrips counts the Redis round trips of a client: one per command or
// pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// postBare posts body n times to the sink with a plain client and
// concurrency workers, and returns how long that took and the CPU time it
// used.
func postBare(b *testing.B, sink *testreceiver.Receiver, body []byte, n, concurrency int) (time.Duration, time.Duration) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: sink.Cert.Pool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: concurrency,
	}}
	defer client.CloseIdleConnections()
	before := sink.Count()
	var next atomic.Int64
	var wg sync.WaitGroup
	start, cpu := time.Now(), testinfra.CPUTime()
	for range concurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(sink.URL+"/hooks", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	took, used := time.Since(start), testinfra.CPUTime()-cpu
	if got := sink.Count() - before; got != int64(n) {
		b.Fatalf("bare client: sink got %d, want %d", got, n)
	}
	return took, used
}
