package match

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/crashguard"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/telemetry"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

// The benchmark workload: 10,000 subscriptions over 100 tenants, and
// events spread over the tenants and 20 event types. A tenant's 100
// subscriptions are mostly on one or two exact types, some on an entity
// wildcard (order.*) and a few on every type; nine in ten have a condition
// of two to five leaves. An event has about ten candidates and yields 2.1
// deliveries on average.
const (
	benchTenants       = 100
	benchSubsPerTenant = 100
)

var (
	benchEntities = []string{"order", "customer", "invoice", "shipment", "payment"}
	benchActions  = []string{"created", "updated", "deleted", "paid"}
	benchCountry  = []string{"DE", "FR", "US", "GB", "NL", "ES"}
	benchCurrency = []string{"EUR", "USD", "GBP", "CHF", "JPY"}
)

func benchSubscriptions() []*record.Subscription {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	eventType := func() string { return pick(benchEntities) + "." + pick(benchActions) }
	var subs []*record.Subscription
	for t := range benchTenants {
		for i := range benchSubsPerTenant {
			s := &record.Subscription{
				ID:      fmt.Sprintf("sub_%03d_%03d", t, i),
				Tenant:  fmt.Sprintf("tenant_%03d", t),
				URL:     fmt.Sprintf("https://hooks.example.com/%d/%d", t, i),
				Payload: "full",
				Enabled: true,
			}
			switch r := rng.IntN(100); {
			case r < 70:
				s.EventTypes = []string{eventType()}
			case r < 85:
				s.EventTypes = []string{eventType(), eventType()}
			case r < 97:
				s.EventTypes = []string{pick(benchEntities) + ".*"}
			default:
				s.EventTypes = []string{"*"}
			}
			if rng.IntN(10) > 0 {
				leaves := []string{
					fmt.Sprintf(`{"field":"data.total","op":"gte","value":%d}`, rng.IntN(900)),
					fmt.Sprintf(`{"field":"data.currency","op":"in","value":["%s","%s"]}`, pick(benchCurrency), pick(benchCurrency)),
					fmt.Sprintf(`{"any":[{"field":"data.customer.country","op":"eq","value":"%s"},{"field":"data.priority","op":"eq","value":"high"}]}`, pick(benchCountry)),
					`{"not":{"field":"data.test","op":"eq","value":true}}`,
				}
				s.Condition = ptr(`{"all":[` + strings.Join(leaves[:2+rng.IntN(3)], ",") + `]}`)
			}
			if rng.IntN(5) == 0 {
				s.Payload = "changed"
			}
			if rng.IntN(5) == 0 {
				s.Metadata = map[string]string{"team": pick(benchEntities), "tier": "gold"}
			}
			if rng.IntN(10) == 0 {
				s.Routes = []record.Route{{Condition: `{"field":"data.customer.country","op":"eq","value":"US"}`, URL: s.URL + "/us"}}
			}
			subs = append(subs, s)
		}
	}
	return subs
}

// benchEvents returns n encoded events of about 500 bytes.
func benchEvents(tb testing.TB, c *record.Codecs, n int) [][]byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	out := make([][]byte, n)
	for i := range out {
		action := pick(benchActions)
		ev := &record.Event{
			ID:         fmt.Sprintf("evt_%08d", i),
			Tenant:     fmt.Sprintf("tenant_%03d", rng.IntN(benchTenants)),
			Type:       pick(benchEntities) + "." + action,
			Subject:    fmt.Sprintf("rec_%d", rng.IntN(10000)),
			Source:     "shop",
			OccurredAt: time.Now(),
			ReceivedAt: time.Now(),
			Data: fmt.Sprintf(`{"id":"rec_%d","status":"%s","total":%d.%02d,"currency":"%s","priority":"%s","test":%t,`+
				`"customer":{"id":"cus_%d","email":"buyer%d@example.com","country":"%s"},`+
				`"items":[{"sku":"SKU-%04d","qty":%d,"price":19.99},{"sku":"SKU-%04d","qty":1,"price":5.50}],`+
				`"note":"%s"}`,
				i, action, rng.IntN(1000), rng.IntN(100), pick(benchCurrency), []string{"low", "normal", "high"}[rng.IntN(3)], rng.IntN(20) == 0,
				rng.IntN(1e6), i, pick(benchCountry), rng.IntN(1e4), 1+rng.IntN(5), rng.IntN(1e4), strings.Repeat("x", 120)),
		}
		if action == "updated" {
			ev.Changed = []string{"status", "total"}
		}
		out[i] = encodeEvent(tb, c, ev)
	}
	return out
}

// benchIndex indexes the benchmark's subscriptions.
func benchIndex(tb testing.TB) *index.Index {
	tb.Helper()
	ix := index.New(zerolog.Nop())
	subs := benchSubscriptions()
	for _, s := range subs {
		ix.Update(nil, s)
	}
	if ix.Len() != len(subs) {
		tb.Fatalf("indexed %d of %d subscriptions", ix.Len(), len(subs))
	}
	return ix
}

// BenchmarkProcess is the matcher's CPU cost per event, without Kafka:
// decode, candidates, conditions, shaping and encoding the deliveries.
// "serial" takes one event at a time, in the random order of the topic;
// "batch" takes about one partition's fetch at a time, as the Handler
// does, so ProcessBatch groups the events by tenant. "parallel" runs one
// worker per core, as the consumer does per partition. An op is one event in
// all three.
func BenchmarkProcess(b *testing.B) {
	c := codecs(b)
	m := &Matcher{Index: benchIndex(b), Codecs: c, Topics: wire.NewTopics("bench."), Now: time.Now}
	values := benchEvents(b, c, 10_000)
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Value: v}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		deliveries, i := 0, 0
		cpu := testinfra.CPUTime()
		for b.Loop() {
			deliveries += len(m.Process(recs[i%len(recs)]))
			i++
		}
		b.ReportMetric(float64((testinfra.CPUTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/event")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(deliveries)/float64(b.N), "deliveries/event")
	})
	b.Run("batch", func(b *testing.B) {
		// As the Handler does: a partition's fetch at a time, which
		// holds up to 2 MiB (kafka.Config.Options), up to two thousand
		// events of the benchmark's size.
		const batch = 1_000
		b.ReportAllocs()
		deliveries := 0
		b.ResetTimer()
		cpu := testinfra.CPUTime()
		for done := 0; done < b.N; {
			n := min(batch, b.N-done)
			start := done % (len(recs) - batch)
			for _, out := range m.ProcessBatch(recs[start : start+n]) {
				deliveries += len(out)
			}
			done += n
		}
		b.ReportMetric(float64((testinfra.CPUTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/event")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(deliveries)/float64(b.N), "deliveries/event")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Process(recs[int(next.Add(1))%len(recs)])
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// minThroughputEvents is the fewest events BenchmarkMatcherThroughput
// times: fewer would measure the group join rather than the matcher.
const minThroughputEvents = 100_000

// BenchmarkMatcherThroughput is one matcher instance against the real
// broker, end to end: the subscriptions are loaded from their topic, b.N
// events (at least minThroughputEvents) are produced first, and then the
// clock runs from the matcher's first fetch until its group has committed
// the last event, all deliveries written in transactions. ns/op is the
// time per event. Run it with -benchtime=Nx to choose the event count; with
// the default -benchtime it runs once. "traced" adds the tracing and
// metrics hooks main gives its clients; "crash guard" adds the Redis
// bookkeeping main does by default (round trips to begin and end each
// partition's batch).
func BenchmarkMatcherThroughput(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchThroughput(b, false) })
	b.Run("traced", func(b *testing.B) {
		tel, err := telemetry.New(context.Background(), "matcher")
		if err != nil {
			b.Fatal(err)
		}
		benchThroughput(b, false, tel.KafkaHooks())
	})
	b.Run("crash guard", func(b *testing.B) { benchThroughput(b, true) })
}

func benchThroughput(b *testing.B, guarded bool, hooks ...kgo.Opt) {
	cfg := testinfra.Kafka(b)
	c := codecs(b)
	subs := benchSubscriptions()
	produceSubscriptions(b, cfg, c, subs)
	ix := startIndex(b, cfg, c)
	if ix.Len() != len(subs) {
		b.Fatalf("index holds %d of %d subscriptions", ix.Len(), len(subs))
	}

	n := max(b.N, minThroughputEvents)
	values := benchEvents(b, c, 10_000)
	m := &Matcher{Index: ix, Codecs: c, Topics: cfg.Topics, Now: time.Now}
	if guarded {
		m.Guard = crashguard.New(testinfra.Redis(b), cfg.Topics.Keys().Crash(), "matcher", 0)
	}
	// The events cycle through values, so each value's delivery count,
	// found once, gives the total.
	perValue := make([]int, len(values))
	for i, v := range values {
		perValue[i] = len(m.Process(&kgo.Record{Value: v}))
	}
	var deliveries int
	for i := range n {
		deliveries += perValue[i%len(values)]
	}
	producer := client(b, cfg, kgo.ProducerLinger(20*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: cfg.Topics.Events, Key: fmt.Appendf(nil, "rec_%d", i%10_000), Value: values[i%len(values)]}
	}
	produce(b, producer, recs)

	var first atomic.Int64 // unix nanos of the first fetched batch
	opts := append([]kgo.Opt{kgo.WithHooks(fetchStart{&first})}, hooks...)
	group := cfg.Topics.Prefix + "matcher"
	b.ResetTimer()
	cpu := testinfra.CPUTime()
	s := startSession(b, cfg, m, group, cfg.Topics.Prefix+"matcher-1", opts...)
	waitCommitted(b, cfg, group, 5*time.Minute)
	end := time.Now()
	cpu = testinfra.CPUTime() - cpu
	b.StopTimer()
	s.stop(b)

	took := end.Sub(time.Unix(0, first.Load()))
	b.ReportMetric(float64(took.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/event")
	b.ReportMetric(float64(n)/took.Seconds(), "events/s")
	b.ReportMetric(float64(deliveries)/took.Seconds(), "deliveries/s")
	b.ReportMetric(float64(deliveries)/float64(n), "deliveries/event")
}

// fetchStart records when the first batch of events is fetched.
type fetchStart struct{ at *atomic.Int64 }

func (f fetchStart) OnFetchBatchRead(kgo.BrokerMetadata, string, int32, kgo.FetchBatchMetrics) {
	f.at.CompareAndSwap(0, time.Now().UnixNano())
}
