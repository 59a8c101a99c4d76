package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/schemaregistry"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"-o", "yaml", "subs", "list"}, {"subs"}, {"subs", "get"}, {"events", "send", "a.b", "{not json"}} {
		if err := run(context.Background(), args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: err %v, want a usage error", args, err)
		}
	}
}

func TestSubscriptionCommandsCallTheAPI(t *testing.T) {
	var seen []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(body))
		if r.Header.Get("Authorization") != "Bearer k1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/subscriptions" && r.Method == http.MethodGet:
			_, _ = io.WriteString(w, `{"data":[{"id":"sub_1","name":"orders","url":"https://x.example/h","event_types":["order.*"],"enabled":true}]}`)
		case strings.HasSuffix(r.URL.Path, "/missing"):
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"title":"Not Found"}`)
		default:
			_, _ = io.WriteString(w, `{"id":"sub_1","enabled":false}`)
		}
	}))
	defer api.Close()
	t.Setenv("HOOKLINE_API_URL", api.URL)
	t.Setenv("HOOKLINE_API_KEY", "k1")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"subs", "list"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "sub_1") || !strings.Contains(out.String(), "order.*") || !strings.Contains(out.String(), "ID") {
		t.Errorf("table:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"-o", "json", "subs", "list"}, &out); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(out.Bytes(), &list); err != nil || len(list) != 1 || list[0]["id"] != "sub_1" {
		t.Errorf("json %s: %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"subs", "disable", "sub_1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if last := seen[len(seen)-1]; last != `PATCH /v1/subscriptions/sub_1 {"enabled":false}` {
		t.Errorf("disable sent %q", last)
	}
	err := run(context.Background(), []string{"subs", "get", "missing"}, io.Discard)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing subscription: %v", err)
	}
}

func TestTailDecodesTheDeliveryLog(t *testing.T) {
	cfg := testinfra.Kafka(t)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now()
	for i, outcome := range []string{record.OutcomeRetrying, record.OutcomeDelivered, record.OutcomeDelivered} {
		a := record.DeliveryAttempt{DeliveryID: "dlv_" + string(rune('a'+i)), Tenant: "acme", SubscriptionID: "sub_1",
			EventID: "evt_1", EventType: "order.created", URL: "https://x.example", Attempt: int32(i + 1),
			StartedAt: now, StatusCode: 200, Outcome: outcome}
		if i == 2 {
			a.SubscriptionID = "sub_2"
		}
		v, err := codecs.Attempt.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: cfg.Topics.DeliveryLog, Key: []byte(a.DeliveryID), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KAFKA_BROKERS", strings.Join(cfg.Brokers, ","))
	t.Setenv("HOOKLINE_TOPIC_PREFIX", cfg.Topics.Prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-o", "json", "tail", "-sub", "sub_1", "-outcome", "delivered"}, &out); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	var got []record.DeliveryAttempt
	for dec.More() {
		var a record.DeliveryAttempt
		if err := dec.Decode(&a); err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if len(got) != 1 || got[0].DeliveryID != "dlv_b" {
		t.Fatalf("tail -sub sub_1 -outcome delivered gave %+v, want only dlv_b", got)
	}
}

func TestNotificationsListsTheRecentOnes(t *testing.T) {
	cfg := testinfra.Kafka(t)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	notes := []record.Notification{
		{ID: "ntf_1", Tenant: "acme", SubscriptionID: "sub_1", Kind: "failing", EventIDs: []string{"evt_1"}, Subject: "[Hookline] failing",
			Recipients: []record.NotificationRecipient{{Address: "a@example.com", Outcome: "sent"}, {Address: "b@example.com", Outcome: "suppressed", Error: "over the hourly cap"}}},
		{ID: "ntf_2", Tenant: "acme", SubscriptionID: "sub_2", Kind: "critical", EventIDs: []string{"evt_2"}, Subject: "[Hookline] critical",
			Recipients: []record.NotificationRecipient{}},
		{ID: "ntf_3", Tenant: "globex", SubscriptionID: "sub_3", Kind: "recovered", EventIDs: []string{"evt_3"}, Subject: "[Hookline] recovered",
			Recipients: []record.NotificationRecipient{{Address: "c@example.com", Outcome: "failed", Error: "550 no such user"}}},
		{ID: "ntf_4", Tenant: "acme", SubscriptionID: "sub_1", Kind: "recovered", EventIDs: []string{"evt_4"}, Subject: "[Hookline] recovered",
			Recipients: []record.NotificationRecipient{{Address: "a@example.com", Outcome: "sent"}}},
	}
	for i := range notes {
		notes[i].QueuedAt = base.Add(time.Duration(i) * time.Minute)
		notes[i].FinishedAt = notes[i].QueuedAt.Add(time.Second)
		v, err := codecs.Notification.Marshal(&notes[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: cfg.Topics.Notifications, Key: []byte(notes[i].SubscriptionID), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KAFKA_BROKERS", strings.Join(cfg.Brokers, ","))
	t.Setenv("HOOKLINE_TOPIC_PREFIX", cfg.Topics.Prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := func(args ...string) []record.Notification {
		var out bytes.Buffer
		if err := run(ctx, append([]string{"-o", "json", "notifications"}, args...), &out); err != nil {
			t.Fatal(err)
		}
		var got []record.Notification
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v", out.String(), err)
		}
		return got
	}
	ids := func(ns []record.Notification) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "ntf_1,ntf_2,ntf_3,ntf_4"},
		{[]string{"-tenant", "acme"}, "ntf_1,ntf_2,ntf_4"},
		{[]string{"-sub", "sub_1", "-n", "1"}, "ntf_4"},
		{[]string{"-kind", "recovered"}, "ntf_3,ntf_4"},
		{[]string{"-n", "2"}, "ntf_3,ntf_4"},
	} {
		if got := ids(list(tc.args...)); got != tc.want {
			t.Errorf("notifications %v = %s, want %s", tc.args, got, tc.want)
		}
	}
	var table bytes.Buffer
	if err := run(ctx, []string{"notifications", "-tenant", "acme"}, &table); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"b@example.com", "suppressed", "over the hourly cap", "(nobody)", "[Hookline] critical"} {
		if !strings.Contains(table.String(), w) {
			t.Errorf("the table lacks %q:\n%s", w, table.String())
		}
	}
	if err := run(ctx, []string{"notifications", "-n", "-1"}, &table); !errors.Is(err, errUsage) {
		t.Errorf("-n -1: %v, want a usage error", err)
	}
}

func TestHealthShowsTheFailureStreak(t *testing.T) {
	rdb := testinfra.Redis(t)
	t.Setenv("REDIS_ADDR", rdb.Options().Addr)
	// The streak is read under the installation's key namespace, which
	// follows the topic prefix.
	prefix := testinfra.Prefix(t)
	t.Setenv("HOOKLINE_TOPIC_PREFIX", prefix)
	sub := "sub_hookctl_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	tr := health.New(rdb, wire.NewTopics(prefix).Keys().Health(), time.Hour)
	for range 6 {
		if _, err := tr.Failure(context.Background(), sub, health.Failed{At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-o", "json", "health", sub, "sub_never_failed"}, &out); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("%s: %v", out.String(), err)
	}
	if len(rows) != 2 || rows[0]["state"] != "failing" || rows[0]["consecutive_failures"] != "6" || rows[1]["state"] != "healthy" {
		t.Fatalf("rows %v", rows)
	}
}

// TestTailWithSchemaRegistry reads a delivery log whose records carry a
// real schema registry's ids, as the services write them when
// HOOKLINE_SCHEMA_REGISTRY_URL is set.
func TestTailWithSchemaRegistry(t *testing.T) {
	cfg := testinfra.Kafka(t)
	url := testinfra.SchemaRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := schemaregistry.Config{URLs: []string{url}, Register: true}
	codecs, err := schemaregistry.LoadCodecs(ctx, reg, cfg.Topics.Subjects(nil), testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	a := record.DeliveryAttempt{DeliveryID: "dlv_reg", Tenant: "acme", SubscriptionID: "sub_1", EventID: "evt_1",
		EventType: "order.created", URL: "https://x.example", Attempt: 1, StartedAt: time.Now(), StatusCode: 200,
		Outcome: record.OutcomeDelivered}
	v, err := codecs.Attempt.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("schema id on the wire: %d", binary.BigEndian.Uint32(v[1:5]))
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topics.DeliveryLog, Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KAFKA_BROKERS", strings.Join(cfg.Brokers, ","))
	t.Setenv("HOOKLINE_TOPIC_PREFIX", cfg.Topics.Prefix)
	t.Setenv("HOOKLINE_SCHEMA_REGISTRY_URL", url)
	var out bytes.Buffer
	if err := run(ctx, []string{"-o", "json", "tail"}, &out); err != nil {
		t.Fatal(err)
	}
	var got record.DeliveryAttempt
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.DeliveryID != "dlv_reg" {
		t.Fatalf("tail printed %q (%v), want the attempt dlv_reg", out.String(), err)
	}
}
