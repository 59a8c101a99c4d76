package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
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
		{"bad since", `{"subscription_id":"sub_1","since":"yesterday"}`, 400, "since"},
		{"bad until", `{"subscription_id":"sub_1","until":"2026-13-01T00:00:00Z"}`, 400, "until"},
		{"since not a string", `{"subscription_id":"sub_1","since":5}`, 400, "since"},
		{"until before since", `{"subscription_id":"sub_1","since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z"}`, 400, "until"},
		{"nested too deep", `{"delivery_ids":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, 400, "delivery_ids[0][0]"},
		{"unknown or other tenant's subscription", `{"subscription_id":"sub_nope"}`, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(t, h, http.MethodPost, "/v1/replay", "key-acme", tc.body)
			p := problemOf(t, rec.Code, rec.Header(), rec.Body.Bytes())
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if rec.Code == http.StatusBadRequest && tc.field == "" {
				t.Fatal("a 400 must name its field")
			}
			if tc.field != "" && !hasField(p.Errors, tc.field) {
				t.Fatalf("errors %+v, want field %s", p.Errors, tc.field)
			}
		})
	}
}
