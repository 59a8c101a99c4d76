package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// API is a client of ingest's HTTP API.
type API struct {
	Base   string            // http://host:port
	Keys   map[string]string // tenant -> API key
	Client *http.Client
	// Patience is how long Post retries a request; 5 s when zero.
	Patience time.Duration
}

// Post sends body as JSON for tenant and decodes a 2xx answer into out
// (when not nil). A 503 (Kafka or Redis busy) and a failed connection
// (ingest restarting) are retried a second later, for as long as the API's
// Patience: callers that retry writes name their events, so that ingest
// drops the copies.
func (a *API) Post(ctx context.Context, tenant, path string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	patience := a.Patience
	if patience == 0 {
		patience = 5 * time.Second
	}
	giveUp := time.Now().Add(patience)
	for {
		again := time.Now().Before(giveUp)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.Base+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+a.Keys[tenant])
		req.Header.Set("Content-Type", "application/json")
		resp, err := a.Client.Do(req)
		if err != nil {
			if again && ctx.Err() == nil {
				time.Sleep(time.Second)
				continue
			}
			return err
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			if out == nil {
				return nil
			}
			return json.Unmarshal(answer, out)
		case resp.StatusCode == http.StatusServiceUnavailable && again:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		default:
			return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(answer))
		}
	}
}
