package workload

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPostRetriesWithinItsPatience(t *testing.T) {
	tests := []struct {
		name     string
		failures int32 // 503s before a 202
		patience time.Duration
		wantErr  bool
	}{
		{"answered on the third attempt", 2, 5 * time.Second, false},
		{"gives up once its patience is spent", 100, 1500 * time.Millisecond, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer key-a" {
					t.Errorf("Authorization %q", r.Header.Get("Authorization"))
				}
				if calls.Add(1) <= tc.failures {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusAccepted)
				_, _ = w.Write([]byte(`{"id":"evt_1"}`))
			}))
			defer srv.Close()
			api := &API{Base: srv.URL, Keys: map[string]string{"a": "key-a"}, Client: srv.Client(), Patience: tc.patience}
			var out struct{ ID string }
			err := api.Post(context.Background(), "a", "/v1/events", map[string]string{"type": "t"}, &out)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Post succeeded after %d calls, want it to give up", calls.Load())
				}
				if calls.Load() < 2 {
					t.Errorf("gave up after %d call(s), want a retry first", calls.Load())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.ID != "evt_1" || calls.Load() != tc.failures+1 {
				t.Errorf("got id %q after %d calls, want evt_1 after %d", out.ID, calls.Load(), tc.failures+1)
			}
		})
	}
}
