package ceiling

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/loadtest/internal/report"
)

// API measures the ceiling of an HTTP API on this machine: a bare Go HTTP
// server on 127.0.0.1 that reads each JSON body, decodes it and answers
// 202 with an id, as ingest does minus everything ingest does, posted n
// bodies (cycling through bodies), concurrency requests at a time, with a
// client like the benchmark's, for at most maxDuration.
func API(ctx context.Context, bodies [][]byte, n, concurrency int, maxDuration time.Duration) (report.Ceiling, error) {
	if len(bodies) == 0 || n == 0 {
		return report.Ceiling{}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return report.Ceiling{}, err
	}
	var ids atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var ev map[string]any
		if err == nil {
			err = json.Unmarshal(body, &ev)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":"evt_%d"}`, ids.Add(1))
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	concurrency = max(1, concurrency)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, maxDuration)
	defer cancel()
	url := "http://" + ln.Addr().String() + "/v1/events"
	return drive(ctx, n, concurrency, "API ceiling", func(i int) error {
		return postJSON(ctx, client, url, bodies[i%len(bodies)])
	})
}

func postJSON(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer ceiling")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %d", url, resp.StatusCode)
	}
	return nil
}

// Bodies are n JSON events of about size bytes each, as the API ceiling
// posts them.
func Bodies(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		ev := map[string]any{
			"id": "evt_ceiling_" + strconv.Itoa(i), "type": "bench.t0", "subject": "s-" + strconv.Itoa(i),
			"source": "hookload", "occurred_at": time.Now(),
			"data": map[string]any{"pad": string(bytes.Repeat([]byte("x"), max(0, size-120)))},
		}
		out[i], _ = json.Marshal(ev)
	}
	return out
}
