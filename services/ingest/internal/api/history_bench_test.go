package api

import (
	"context"
	"crypto/md5"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/logstore/pglogstore"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
)

// The dataset `make bench-logstore` keeps (pkg/logstore/pglogstore's
// bench_test.go): 100 tenants of 100 subscriptions (tenant_<t>,
// sub_<5 digits>), events to two subscriptions each, 1.2 attempts per
// delivery, over the 10 days before 2026-01-11.
const (
	historyBenchSubs = 10_000
	historyBenchDays = 10
)

var historyBenchEnd = time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC)

// BenchmarkHistoryAPI measures the server time of the history API's calls
// (handler, store, JSON; not the network) over the dataset that `make
// bench-logstore` generates and keeps: 10 million attempts in the
// database bench_logstore_10000000 of HOOKLINE_POSTGRES_URL's server (or
// HOOKLINE_BENCH_HISTORY_URL), with its 10,000 subscriptions in real
// Kafka for the API's lookups. Each call, and each console page over the
// history (all the calls it makes when it opens: the Logs tab, an
// attempt, events, the overview), is a sub-benchmark reporting
// p50/p95/p99 of its server time over random subscriptions, events and
// deliveries:
//
//	make bench-logstore   # once: generates the dataset
//	go test -run '^$' -bench BenchmarkHistoryAPI -benchtime 2000x ./internal/api/
func BenchmarkHistoryAPI(b *testing.B) {
	dbURL := os.Getenv("HOOKLINE_BENCH_HISTORY_URL")
	if dbURL == "" {
		base := os.Getenv("HOOKLINE_POSTGRES_URL")
		if base == "" {
			b.Skip("HOOKLINE_POSTGRES_URL is not set: the dataset is on the server make bench-logstore uses")
		}
		u, err := url.Parse(base)
		if err != nil {
			b.Fatal(err)
		}
		u.Path = "/bench_logstore_10000000"
		dbURL = u.String()
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Skipf("no dataset at %s (%v): run make bench-logstore first", dbURL, err)
	}
	var attempts int
	err = conn.QueryRow(ctx, "SELECT attempts FROM bench_dataset").Scan(&attempts)
	conn.Close(ctx)
	if err != nil {
		b.Skipf("no dataset at %s (%v): run make bench-logstore first", dbURL, err)
	}
	store, err := pglogstore.Open(ctx, pglogstore.Config{URL: dbURL, ReadOnly: true}, testinfra.Logger())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h := historyBenchServer(b, store)
	deliveries := attempts * 5 / 6
	sub := func(r *rand.Rand) (string, string) {
		n := r.IntN(historyBenchSubs)
		return "key_" + strconv.Itoa(n/100), fmt.Sprintf("sub_%05d", n)
	}
	event := func(r *rand.Rand) (string, string) {
		e := r.IntN(deliveries / 2)
		return "key_" + strconv.Itoa(e%100), "evt_" + md5hex(strconv.Itoa(e))[:26]
	}
	delivery := func(r *rand.Rand) (string, string) {
		i := r.IntN(deliveries)
		return "key_" + strconv.Itoa((i/2)%100), "dlv_" + md5hex("d" + strconv.Itoa(i))[:26]
	}
	day := historyBenchEnd.Add(-24 * time.Hour).Format(time.RFC3339)
	end := historyBenchEnd.Format(time.RFC3339)
	calls := []struct {
		name string
		path func(r *rand.Rand) (key, path string)
	}{
		{"attempts of a subscription, status=failed", func(r *rand.Rand) (string, string) {
			k, s := sub(r)
			return k, "/v1/subscriptions/" + s + "/attempts?status=failed&limit=50"
		}},
		{"attempts of a subscription", func(r *rand.Rand) (string, string) {
			k, s := sub(r)
			return k, "/v1/subscriptions/" + s + "/attempts?limit=50"
		}},
		{"event with its deliveries", func(r *rand.Rand) (string, string) {
			k, e := event(r)
			return k, "/v1/events/" + e
		}},
		{"delivery with every attempt and body", func(r *rand.Rand) (string, string) {
			k, d := delivery(r)
			return k, "/v1/deliveries/" + d
		}},
		{"deliveries of a subscription, status=failed", func(r *rand.Rand) (string, string) {
			k, s := sub(r)
			return k, "/v1/deliveries?subscription_id=" + s + "&status=failed&limit=50"
		}},
		{"events of a tenant by type", func(r *rand.Rand) (string, string) {
			k, _ := sub(r)
			return k, "/v1/events?type=order.created&limit=50"
		}},
		{"stats of a subscription over a day", func(r *rand.Rand) (string, string) {
			k, s := sub(r)
			return k, "/v1/subscriptions/" + s + "/stats?since=" + day + "&until=" + end
		}},
	}
	hour := historyBenchEnd.Add(-time.Hour).Format(time.RFC3339)
	minute := historyBenchEnd.Add(-time.Minute).Format(time.RFC3339)
	// The console's pages over the history: each is every call the page
	// makes when it opens (or, for the Logs tab's live poll, each poll).
	one := func(key string, paths ...string) (string, []string) { return key, paths }
	pages := []struct {
		name  string
		paths func(r *rand.Rand) (key string, paths []string)
	}{
		{"console: Logs tab", func(r *rand.Rand) (string, []string) {
			k, s := sub(r)
			return one(k, "/v1/subscriptions/"+s, "/v1/subscriptions/"+s+"/attempts?limit=50")
		}},
		{"console: Logs tab, failed in the last day", func(r *rand.Rand) (string, []string) {
			k, s := sub(r)
			return one(k, "/v1/subscriptions/"+s, "/v1/subscriptions/"+s+"/attempts?status=failed&since="+day+"&limit=50")
		}},
		{"console: Logs tab, an older page", func(r *rand.Rand) (string, []string) {
			k, s := sub(r)
			return one(k, "/v1/subscriptions/"+s, "/v1/subscriptions/"+s+"/attempts?until="+day+"&limit=50")
		}},
		{"console: Logs tab, live poll", func(r *rand.Rand) (string, []string) {
			k, s := sub(r)
			return one(k, "/v1/subscriptions/"+s+"/attempts?since="+minute+"&limit=250")
		}},
		{"console: attempt page", func(r *rand.Rand) (string, []string) {
			k, d := delivery(r)
			return one(k, "/v1/deliveries/"+d)
		}},
		{"console: events page", func(r *rand.Rand) (string, []string) {
			k, _ := sub(r)
			return one(k, "/v1/events?limit=50")
		}},
		{"console: events by subject", func(r *rand.Rand) (string, []string) {
			e := r.IntN(deliveries / 2) // the dataset's event e is tenant e%100's, subject ord_<e>
			return one("key_"+strconv.Itoa(e%100), "/v1/events?subject=ord_"+strconv.Itoa(e)+"&limit=50")
		}},
		{"console: event page", func(r *rand.Rand) (string, []string) {
			k, e := event(r)
			return one(k, "/v1/events/"+e, "/v1/subscriptions?limit=250")
		}},
		{"console: overview (the last hour)", func(r *rand.Rand) (string, []string) {
			k, _ := sub(r)
			return one(k, "/v1/stats?since="+hour+"&until="+end)
		}},
		{"console: overview of a whole day", func(r *rand.Rand) (string, []string) {
			k, _ := sub(r)
			return one(k, "/v1/stats?since="+day+"&until="+end)
		}},
	}
	for _, c := range calls {
		pages = append(pages, struct {
			name  string
			paths func(r *rand.Rand) (key string, paths []string)
		}{c.name, func(r *rand.Rand) (string, []string) {
			k, p := c.path(r)
			return one(k, p)
		}})
	}
	for _, c := range pages {
		b.Run(c.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			took := make([]time.Duration, 0, b.N)
			for b.Loop() {
				key, paths := c.paths(r)
				var page time.Duration
				for _, path := range paths {
					req := httptest.NewRequest(http.MethodGet, path, nil)
					req.Header.Set("Authorization", "Bearer "+key)
					rec := httptest.NewRecorder()
					start := time.Now()
					h.ServeHTTP(rec, req)
					page += time.Since(start)
					if rec.Code != http.StatusOK {
						b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.Bytes())
					}
				}
				took = append(took, page)
			}
			slices.Sort(took)
			pct := func(p float64) float64 {
				return float64(took[min(len(took)-1, int(p*float64(len(took))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.95), "p95-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// historyBenchServer is the API over store, with the dataset's
// subscriptions in a view read from real Kafka and one API key per tenant
// (key_<t> for tenant_<t>).
func historyBenchServer(b *testing.B, store *pglogstore.Store) http.Handler {
	b.Helper()
	cfg := testinfra.Kafka(b)
	log := testinfra.Logger()
	codecs, err := record.LoadCodecs()
	if err != nil {
		b.Fatal(err)
	}
	prod, err := kafka.NewClient(cfg, log, kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(prod.Close)
	testinfra.WaitTopic(b, cfg, cfg.Topics.Subscriptions)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var recs []*kgo.Record
	var keys []string
	for t := range historyBenchSubs / 100 {
		keys = append(keys, fmt.Sprintf("tenant_%d=key_%d", t, t))
	}
	for n := range historyBenchSubs {
		id := fmt.Sprintf("sub_%05d", n)
		sub := newSubscription(id, "tenant_"+strconv.Itoa(n/100), historyBenchEnd.Add(-historyBenchDays*24*time.Hour))
		sub.URL, sub.EventTypes = "https://hooks.example.com/"+strconv.Itoa(n/100), []string{"order.*"}
		v, err := codecs.Subscription.Marshal(sub)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: cfg.Topics.Subscriptions, Key: []byte(id), Value: v})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	view := subscription.NewView(cfg.Topics, codecs, log)
	run, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = view.Run(run, cfg); close(done) }()
	b.Cleanup(func() { stop(); <-done })
	if err := view.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = crand.Read(key)
	box, _ := secretbox.New(key)
	guard, _ := ssrf.New(nil)
	parsed, err := ParseKeys(keys)
	if err != nil {
		b.Fatal(err)
	}
	srv := &Server{Producer: prod, View: view, Codecs: codecs, Topics: cfg.Topics, Keys: parsed, Box: box, Guard: guard,
		MaxBody: 1 << 20, Log: log, Now: time.Now, History: store}
	return srv.Handler()
}
