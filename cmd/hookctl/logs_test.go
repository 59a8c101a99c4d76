package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLogsAndRedeliverCallTheHistoryAPI: logs pages through a
// subscription's attempts with the filters given, shows a delivery, and
// redeliver makes each kind of re-run.
func TestLogsAndRedeliverCallTheHistoryAPI(t *testing.T) {
	var seen []string
	var bodies []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.Path)
		bodies = append(bodies, string(b))
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		switch {
		case strings.HasSuffix(r.URL.Path, "/attempts") && q.Get("cursor") == "":
			if q.Get("status") != "failed" || q.Get("limit") != "250" || q.Get("since") == "" {
				t.Errorf("first page asked with %v", q)
			}
			_, _ = io.WriteString(w, `{"data":[{"delivery_id":"dlv_1","attempt":2,"started_at":"2026-01-02T03:04:05Z","duration_ms":31,"outcome":"failed","error":"HTTP 500","response":{"status":500}}],"next_cursor":"c2"}`)
		case strings.HasSuffix(r.URL.Path, "/attempts"):
			if q.Get("cursor") != "c2" || q.Get("limit") != "250" {
				t.Errorf("second page asked with %v", q)
			}
			_, _ = io.WriteString(w, `{"data":[{"delivery_id":"dlv_0","attempt":1,"started_at":"2026-01-02T03:00:00Z","outcome":"failed","error":"connection: refused","response":null}],"next_cursor":null}`)
		case r.URL.Path == "/v1/deliveries/dlv_1":
			_, _ = io.WriteString(w, `{"id":"dlv_1","status":"failed","attempts":[]}`)
		default:
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"delivery_id":"dlv_1"}`)
		}
	}))
	defer api.Close()
	t.Setenv("HOOKLINE_API_URL", api.URL)
	t.Setenv("HOOKLINE_API_KEY", "k1")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"logs", "sub_1", "-status", "failed", "-since", "2h", "-n", "299"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DELIVERY", "dlv_1", "dlv_0", "HTTP 500", "500", "connection: refused"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("logs output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"logs", "show", "dlv_1"}, &out); err != nil || !strings.Contains(out.String(), `"status": "failed"`) {
		t.Errorf("logs show: %v\n%s", err, out.String())
	}
	seen, bodies = nil, nil
	for _, args := range [][]string{
		{"redeliver", "dlv_1"},
		{"redeliver", "-event", "evt_1", "-sub", "sub_2", "-new"},
		{"redeliver", "-recover", "sub_1", "-since", "2026-01-02T00:00:00Z"},
	} {
		if err := run(context.Background(), args, io.Discard); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
	want := []string{"POST /v1/deliveries/dlv_1/redeliver", "POST /v1/events/evt_1/redeliver", "POST /v1/subscriptions/sub_1/recover"}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("calls %q, want %q", seen, want)
	}
	var event map[string]any
	if json.Unmarshal([]byte(bodies[1]), &event) != nil || event["subscription_id"] != "sub_2" || event["new_attempt"] != true {
		t.Errorf("event redeliver body %s", bodies[1])
	}
	if !strings.Contains(bodies[2], `"since":"2026-01-02T00:00:00Z"`) {
		t.Errorf("recover body %s", bodies[2])
	}
	for _, args := range [][]string{
		{"logs"}, {"logs", "-status", "failed"}, {"logs", "show"}, {"logs", "sub_1", "-since", "yesterday"},
		{"redeliver"}, {"redeliver", "-event", "evt_1"}, {"redeliver", "-recover", "sub_1"}, {"redeliver", "a", "b"},
	} {
		if err := run(context.Background(), args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestHistoryTime(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	got, err := historyTime("2h", now)
	if err != nil || got != "2026-01-02T10:00:00Z" {
		t.Errorf("2h: %q, %v", got, err)
	}
	if got, err := historyTime("2026-01-01T00:00:00+01:00", now); err != nil || got != "2026-01-01T00:00:00+01:00" {
		t.Errorf("RFC 3339: %q, %v", got, err)
	}
	if _, err := historyTime("-2h", now); !errors.Is(err, errUsage) {
		t.Errorf("negative duration: %v", err)
	}
}

// TestStatsCallsTheOverview: stats asks GET /v1/stats for the window and
// count given and prints the totals and each endpoint.
func TestStatsCallsTheOverview(t *testing.T) {
	var asked []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		if r.Header.Get("Authorization") != "Bearer k1" {
			t.Errorf("Authorization %q", r.Header.Get("Authorization"))
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"since":"2026-01-02T02:00:00Z","until":"2026-01-02T04:00:00Z","bucket_seconds":60,
			"attempts":12,"delivered":9,"retrying":2,"failed":1,"latency_ms":{"p50":40,"p95":210,"p99":950},"series":[],
			"subscriptions":[{"subscription_id":"sub_bad","name":"orders","url":"https://a.example/h","attempts":4,"delivered":1,"retrying":2,"failed":1,"latency_ms":{"p50":900,"p95":950,"p99":990}}],
			"subscriptions_total":3}`)
	}))
	defer api.Close()
	t.Setenv("HOOKLINE_API_URL", api.URL)
	t.Setenv("HOOKLINE_API_KEY", "k1")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"stats", "-since", "2h", "-n", "5"}, &out); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || !strings.HasPrefix(asked[0], "GET /v1/stats?") || !strings.Contains(asked[0], "limit=5") || !strings.Contains(asked[0], "since=") {
		t.Fatalf("asked %q", asked)
	}
	for _, want := range []string{"SUBSCRIPTION", "3 endpoints", "40/210/950ms", "sub_bad", "orders", "https://a.example/h", "900/950/990ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stats output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(context.Background(), []string{"stats", "-n", "0"}, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("stats -n 0: %v, want a usage error", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"-o", "json", "stats"}, &out); err != nil || !strings.Contains(out.String(), `"subscriptions_total": 3`) {
		t.Errorf("stats -o json: %v\n%s", err, out.String())
	}
}
