package api

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/services/ingest/internal/catalog"
	"github.com/hookline/hookline/services/ingest/internal/console"
	"github.com/hookline/hookline/services/ingest/internal/deadletters"
)

// consoleBenchSize is the size the console's pages are measured at: a
// tenant with 10,000 subscriptions and 10,000 dead letters.
const consoleBenchSize = 10000

// BenchmarkConsolePages measures the server time of every API call a
// console page makes (and the console's own files), with one tenant
// holding consoleBenchSize subscriptions (some failing, in real Redis)
// and as many dead letters, read from real Kafka. Each page is one
// sub-benchmark; ns/op is the server time of that page's calls.
func BenchmarkConsolePages(b *testing.B) {
	h, subID, letterID := consoleBenchServer(b)
	pages := []struct {
		name  string
		paths []string
	}{
		{"session", []string{"/v1/session"}},
		{"console files", []string{"/console/", "/console/js/main.js", "/console/js/form.js", "/console/console.css"}},
		{"endpoints first page", []string{"/v1/subscriptions?limit=50"}},
		{"endpoints last page", []string{"/v1/subscriptions?limit=50&cursor=" + lastCursor(b)}},
		{"endpoint", []string{"/v1/subscriptions/" + subID}},
		{"endpoint form", []string{"/v1/subscriptions/" + subID, "/v1/event-types?limit=250"}},
		{"event types", []string{"/v1/event-types?limit=100"}},
		{"dead letters", []string{"/v1/dead-letters?limit=50", "/v1/subscriptions?limit=250"}},
		{"dead letters of one endpoint", []string{"/v1/dead-letters?limit=50&subscription_id=" + subID}},
		{"dead letter", []string{"/v1/dead-letters/" + letterID}},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				for _, path := range p.paths {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodGet, path, nil)
					req.Header.Set("Authorization", "Bearer key-acme")
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.Bytes())
					}
				}
			}
		})
	}
}

// lastCursor is the cursor of the list's last page.
func lastCursor(b *testing.B) string {
	b.Helper()
	// The cursor names the subscription before the page by position.
	return cursor{created: time.UnixMilli(1_700_000_000_000 + consoleBenchSize - 51), id: fmt.Sprintf("sub_bench_%05d", consoleBenchSize-51)}.String()
}

func consoleBenchServer(b *testing.B) (http.Handler, string, string) {
	b.Helper()
	cfg := testinfra.Kafka(b)
	rdb := testinfra.Redis(b)
	log := testinfra.Logger()
	codecs, err := record.LoadCodecs()
	if err != nil {
		b.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, _ := secretbox.New(key)
	guard, _ := ssrf.New(nil)
	keys, _ := ParseKeys([]string{"acme=key-acme"})
	prod, err := kafka.NewClient(cfg, log, kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(prod.Close)
	testinfra.WaitTopic(b, cfg, cfg.Topics.Subscriptions)
	testinfra.WaitTopic(b, cfg, cfg.Topics.DLQ)
	testinfra.WaitTopic(b, cfg, cfg.Topics.EventTypes)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var recs []*kgo.Record
	tr := health.New(rdb, cfg.Topics.Keys().Health(), time.Hour)
	for i := range consoleBenchSize {
		id := fmt.Sprintf("sub_bench_%05d", i)
		at := time.UnixMilli(1_700_000_000_000 + int64(i)).UTC()
		sub := newSubscription(id, "acme", at)
		sub.URL, sub.EventTypes, sub.Name = "https://example.com/hooks/"+id, []string{"order.*", "invoice.paid"}, "endpoint "+id
		v, err := codecs.Subscription.Marshal(sub)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: cfg.Topics.Subscriptions, Key: []byte(id), Value: v})
		d := record.Delivery{ID: fmt.Sprintf("dlv_bench_%05d", i), Tenant: "acme", SubscriptionID: id, EventID: "evt", EventType: "order.created",
			URL: sub.URL, Payload: `{"id":"evt","data":{"total":42}}`, Attempt: 8, LastStatus: 500, LastError: "HTTP 500", CreatedAt: at}
		if v, err = codecs.Delivery.Marshal(&d); err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: cfg.Topics.DLQ, Key: []byte(id), Value: v, Timestamp: at})
		if i%10 == 0 { // a tenth of them failing
			for range health.FailingAfter {
				if _, err := tr.Failure(ctx, id, health.Failed{At: at}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}

	view := subscription.NewView(cfg.Topics, codecs, log)
	types := catalog.New(cfg.Topics, codecs, log)
	letters := deadletters.New(cfg, codecs, log, 0)
	run, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	go func() { _ = view.Run(run, cfg); done <- struct{}{} }()
	go func() { _ = types.Run(run, cfg); done <- struct{}{} }()
	go func() { _ = letters.Run(run); done <- struct{}{} }()
	b.Cleanup(func() { stop(); <-done; <-done; <-done })
	if err := view.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	if err := types.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	for letters.Ready() != nil {
		if ctx.Err() != nil {
			b.Fatal("dead letters not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ui, err := console.Handler(console.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv := &Server{
		Producer: prod, View: view, Codecs: codecs, Topics: cfg.Topics, Keys: keys, Box: box, Guard: guard,
		MaxBody: 1 << 20, Log: log, Now: time.Now, Catalog: types, Health: health.New(rdb, cfg.Topics.Keys().Health(), 0), DeadLetters: letters,
		Portal: NewPortal(box.Derive(PortalKeyPurpose), ""), Console: ui,
	}
	if n := len(view.List("acme")); n != consoleBenchSize {
		b.Fatalf("%d subscriptions in the view, want %d", n, consoleBenchSize)
	}
	return srv.Handler(), "sub_bench_05000", "dlv_bench_05000"
}
