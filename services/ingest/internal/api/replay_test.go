package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/hookline/hookline/pkg/dlq"
)

func TestReplayCallsTheDLQWithTheCallersTenant(t *testing.T) {
	s := offlineServer(t)
	var got []dlq.Filter
	s.Replay = func(_ context.Context, f dlq.Filter) ([]string, error) {
		got = append(got, f)
		return f.DeliveryIDs, nil
	}
	h := s.Handler()
	rec := do(t, h, http.MethodPost, "/v1/replay", "key-acme", `{"delivery_ids":["dlv_1","dlv_2"]}`)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var ans struct{ Replayed []string }
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || !slices.Equal(ans.Replayed, []string{"dlv_1", "dlv_2"}) {
		t.Fatalf("answer %s: %v", rec.Body, err)
	}
	if len(got) != 1 || got[0].Tenant != "acme" || !slices.Equal(got[0].DeliveryIDs, []string{"dlv_1", "dlv_2"}) {
		t.Fatalf("filter %+v", got)
	}
}

func TestReplayRefusesBadSelections(t *testing.T) {
	s := offlineServer(t)
	s.Replay = func(context.Context, dlq.Filter) ([]string, error) {
		t.Fatal("replay must not be called")
		return nil, nil
	}
	h := s.Handler()
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{"nothing named", `{}`, 400, "delivery_ids"},
		{"both", `{"delivery_ids":["d"],"subscription_id":"sub_1"}`, 400, "subscription_id"},
		{"unknown field", `{"ids":["d"]}`, 400, "ids"},
		{"bad time", `{"subscription_id":"sub_1","since":"yesterday"}`, 400, ""},
		{"unknown or other tenant's subscription", `{"subscription_id":"sub_nope"}`, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, h, http.MethodPost, "/v1/replay", "key-acme", tc.body)
			p := problemOf(t, rec.Code, rec.Header(), rec.Body.Bytes())
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.field != "" && !hasField(p.Errors, tc.field) {
				t.Fatalf("errors %+v, want field %s", p.Errors, tc.field)
			}
		})
	}
}
