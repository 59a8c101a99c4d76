package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/services/ingest/internal/api"
)

// TestRun starts ingest as main does, against the real broker and Redis,
// uses the API and the bridge once, and stops it.
func TestRun(t *testing.T) {
	kcfg := testinfra.Kafka(t)
	rdb := testinfra.Redis(t)
	testinfra.WaitTopic(t, kcfg, kcfg.Topics.Subscriptions)
	sch, err := backoff.Parse("1s,2s")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := api.ParseKeys([]string{"acme=key-acme"})
	if err != nil {
		t.Fatal(err)
	}
	secretKey := make([]byte, 32)
	_, _ = rand.Read(secretKey)
	cfg := settings{
		Base:     service.Base{Name: "ingest", LogLevel: "warn", OpsAddr: testinfra.FreeAddr(t), Kafka: kcfg, Schedule: sch},
		HTTPAddr: testinfra.FreeAddr(t), Group: kcfg.Topics.Prefix + "ingest", MaxBody: 1 << 20, Keys: keys,
		Box: mustBox(t, secretKey), Guard: mustGuard(t), DedupeTTL: time.Hour,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, rdb, testinfra.Logger()) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("ingest did not stop within 20s")
		}
	}()

	waitReady(t, "http://"+cfg.OpsAddr+"/readyz", done)
	base := "http://" + cfg.HTTPAddr
	var sub struct{ ID, Secret string }
	post(t, base+"/v1/subscriptions", `{"url":"https://hooks.example.com/in","event_types":["*"]}`, http.StatusCreated, &sub)
	if !strings.HasPrefix(sub.Secret, "whsec_") {
		t.Fatalf("subscription %+v", sub)
	}
	var ping struct {
		DeliveryID string `json:"delivery_id"`
	}
	post(t, base+"/v1/subscriptions/"+sub.ID+"/test", "", http.StatusAccepted, &ping)
	var ev struct{ ID string }
	post(t, base+"/v1/events", `{"type":"order.created","subject":"over-http","data":{}}`, http.StatusAccepted, &ev)

	cl, err := kafka.NewClient(kcfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: kcfg.Topics.IngestJSON, Value: []byte(`{"type":"order.created","subject":"over-kafka","tenant":"acme","data":{}}`)}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	subjects := map[string]bool{}
	for _, r := range testinfra.WaitRecords(t, kcfg, kcfg.Topics.Events, 2, 30*time.Second) {
		subjects[string(r.Key)] = true
	}
	if !subjects["over-http"] || !subjects["over-kafka"] {
		t.Errorf("events topic holds subjects %v, want over-http and over-kafka", subjects)
	}
	if recs := testinfra.Records(t, kcfg, kcfg.Topics.Deliveries); len(recs) != 1 || string(recs[0].Key) != sub.ID {
		t.Errorf("deliveries topic holds %d records, want the test ping", len(recs))
	}
}

func waitReady(t *testing.T, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("ingest stopped while starting: %v", err)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("ingest not ready within 60s")
}

func post(t *testing.T, url, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer key-acme")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d, want %d: %s", url, resp.StatusCode, want, b.String())
	}
	if err := json.Unmarshal(b.Bytes(), out); err != nil {
		t.Fatalf("POST %s answer %s: %v", url, b.String(), err)
	}
}

func mustBox(t *testing.T, key []byte) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustGuard(t *testing.T) *ssrf.Guard {
	t.Helper()
	g, err := ssrf.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
