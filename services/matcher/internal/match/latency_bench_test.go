package match

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookline/hookline/pkg/crashguard"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

// BenchmarkMatcherLatency is the matcher's hop at a steady rate against
// the real broker and Redis, as main runs it (crash guard, Fresh and
// Gather on): events are
// produced one at a time, each matching one subscription, and a
// read-committed reader times each from the start of its produce to its
// delivery becoming visible (the event's produce, the matcher's fetch,
// match, transaction and commit markers, the reader's fetch). It reports
// the percentiles, and the Kafka requests and Redis round trips the
// matcher's clients make per event (idle polls and heartbeats included):
// at a low rate each event is a transaction of its own, so they are what
// the broker and Redis work for. -benchtime=Nx sets the events (at least
// five seconds' worth). It also reports the syncs of the subscriptions
// view per transaction (Fresh's ListOffsets over its EndTxn).
func BenchmarkMatcherLatency(b *testing.B) {
	for _, rate := range []int{50, 1000} {
		b.Run(fmt.Sprintf("%d/s", rate), func(b *testing.B) { benchLatency(b, rate) })
	}
}

func benchLatency(b *testing.B, rate int) {
	cfg := testinfra.Kafka(b)
	c := codecs(b)
	produceSubscriptions(b, cfg, c, []*record.Subscription{testSub("acme", "all", "order.*")})
	syncs := &kafkaRequests{}
	ix, view := startView(b, cfg, c, kgo.WithHooks(syncs))
	rdb := testinfra.Redis(b)
	trips := &redisTrips{}
	rdb.AddHook(trips)
	var txn atomic.Pointer[kafka.Transactor]
	m := &Matcher{Index: ix, Codecs: c, Topics: cfg.Topics, Now: time.Now,
		Guard: crashguard.New(rdb, cfg.Topics.Keys().Crash(), cfg.Topics.Prefix+"matcher", 0),
		Fresh: Fresh(view.Syncs(), time.Second),
		Gather: func(ctx context.Context, b kafka.Batch) kafka.Batch {
			if t := txn.Load(); t != nil {
				return t.Gather(ctx, b)
			}
			return b
		}}
	reqs := &kafkaRequests{}
	txn.Store(startSession(b, cfg, m, cfg.Topics.Prefix+"matcher", cfg.Topics.Prefix+"matcher-1", kgo.WithHooks(reqs)).txn)

	var (
		mu      sync.Mutex
		sent    = map[string]time.Time{}
		took    []time.Duration
		arrived = make(chan struct{}, 1<<16)
	)
	reader := client(b, cfg, kgo.ConsumeTopics(cfg.Topics.Deliveries), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			fetches := reader.PollFetches(ctx)
			now := time.Now()
			fetches.EachRecord(func(r *kgo.Record) {
				var d record.Delivery
				if err := c.Delivery.Unmarshal(r.Value, &d); err != nil {
					return
				}
				mu.Lock()
				if at, ok := sent[d.EventID]; ok {
					took = append(took, now.Sub(at))
				}
				mu.Unlock()
				arrived <- struct{}{}
			})
		}
	}()
	producer := client(b, cfg)
	send := func(n int, prefix string) {
		interval := time.Second / time.Duration(rate)
		start := time.Now()
		for i := range n {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
			ev := &record.Event{ID: fmt.Sprintf("%s_%06d", prefix, i), Tenant: "acme", Type: "order.created", Subject: fmt.Sprintf("ord_%d", i),
				OccurredAt: time.Now(), Data: `{"n":1}`}
			rec := &kgo.Record{Topic: cfg.Topics.Events, Key: []byte(ev.Subject), Value: encodeEvent(b, c, ev)}
			mu.Lock()
			sent[ev.ID] = time.Now()
			mu.Unlock()
			producer.Produce(ctx, rec, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Errorf("produce: %v", err)
				}
			})
		}
		deadline := time.After(60 * time.Second)
		for range n {
			select {
			case <-arrived:
			case <-deadline:
				b.Fatalf("deliveries of %d events not visible within 60 s", n)
			}
		}
	}
	// Warm up: the group joined, the connections and the JIT of the
	// broker's paths in use.
	send(rate, "warm")
	mu.Lock()
	took = nil
	mu.Unlock()

	n := max(b.N, 5*rate)
	reqs.reset()
	syncs.reset()
	trips.n.Store(0)
	cpu := testinfra.CPUTime()
	b.ResetTimer()
	send(n, "evt")
	b.StopTimer()
	cpu = testinfra.CPUTime() - cpu

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(took)
	pct := func(p float64) float64 {
		return float64(took[min(len(took)-1, int(p*float64(len(took))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(reqs.total())/float64(n), "kafka-req/event")
	b.ReportMetric(float64(trips.n.Load())/float64(n), "redis-trips/event")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu-ms/event")
	txns := reqs.byKey()["EndTxn"]
	b.ReportMetric(float64(syncs.byKey()["ListOffsets"])/float64(max(txns, 1)), "syncs/txn")
	b.Logf("%d events at %d/s: Kafka requests by key: %v", n, rate, reqs.byKey())
}

// kafkaRequests counts the requests a client writes, by request key.
type kafkaRequests struct {
	mu sync.Mutex
	n  map[int16]int
}

func (k *kafkaRequests) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n == nil {
		k.n = map[int16]int{}
	}
	k.n[key]++
}

func (k *kafkaRequests) reset() { k.mu.Lock(); k.n = nil; k.mu.Unlock() }

func (k *kafkaRequests) total() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := 0
	for _, n := range k.n {
		t += n
	}
	return t
}

func (k *kafkaRequests) byKey() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]int{}
	for key, n := range k.n {
		out[kmsg.NameForKey(key)] = n
	}
	return out
}

// redisTrips counts the commands and pipelines a Redis client sends.
type redisTrips struct{ n atomic.Int64 }

func (r *redisTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *redisTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}

func (r *redisTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}
