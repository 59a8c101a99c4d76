package api

import (
	"net/http"
	"testing"

	"github.com/hookline/hookline/services/ingest/internal/immediate"
)

// TestImmediateModeParameters: a bad mode or wait_ms is a 400 naming the
// parameter, before anything is written.
func TestImmediateModeParameters(t *testing.T) {
	event := `{"type":"order.created","data":{"id":"o1"}}`
	enabled := offlineServer(t)
	enabled.Immediate = &immediate.Deliverer{}
	tests := []struct {
		name  string
		srv   *Server
		query string
		body  string
		field string
	}{
		{"unknown mode", enabled, "?mode=fast", event, "mode"},
		{"immediate takes one event", enabled, "?mode=immediate", "[" + event + "]", "mode"},
		{"immediate not enabled", offlineServer(t), "?mode=immediate", event, "mode"},
		{"wait_ms not a number", enabled, "?mode=immediate&wait_ms=soon", event, "wait_ms"},
		{"wait_ms zero", enabled, "?mode=immediate&wait_ms=0", event, "wait_ms"},
		{"wait_ms over the cap", enabled, "?mode=immediate&wait_ms=30001", event, "wait_ms"},
		{"wait_ms without immediate", enabled, "?wait_ms=100", event, "wait_ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, tc.srv.Handler(), http.MethodPost, "/v1/events"+tc.query, "key-acme", tc.body)
			p := problemOf(t, http.StatusBadRequest, rec.Header(), rec.Body.Bytes())
			if !hasField(p.Errors, tc.field) {
				t.Errorf("errors name %q, want %q", fieldsOf(p.Errors), tc.field)
			}
		})
	}
}
