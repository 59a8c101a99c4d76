package dispatch

import (
	"slices"
	"testing"

	"github.com/hookline/hookline/pkg/record"
)

func items(urlsAndIDs ...string) []*item {
	var out []*item
	for i := 0; i < len(urlsAndIDs); i += 2 {
		out = append(out, &item{d: record.Delivery{URL: urlsAndIDs[i], ID: urlsAndIDs[i+1], Payload: `{"id":"` + urlsAndIDs[i+1] + `"}`}})
	}
	return out
}

func ids(reqs [][]*item) [][]string {
	var out [][]string
	for _, req := range reqs {
		var r []string
		for _, it := range req {
			r = append(r, it.d.ID)
		}
		out = append(out, r)
	}
	return out
}

func TestPlan(t *testing.T) {
	batchOf := func(n int32) *record.Subscription { return &record.Subscription{Batch: &record.Batch{MaxEvents: n}} }
	in := items("a", "1", "b", "2", "a", "3", "a", "4", "b", "5", "a", "6")
	tests := []struct {
		name string
		sub  *record.Subscription
		want [][]string
	}{
		{"no batch: one request each", &record.Subscription{}, [][]string{{"1"}, {"2"}, {"3"}, {"4"}, {"5"}, {"6"}}},
		{"batches per URL, in order, up to max_events", batchOf(2), [][]string{{"1", "3"}, {"2", "5"}, {"4", "6"}}},
		{"a batch large enough for all", batchOf(500), [][]string{{"1", "3", "4", "6"}, {"2", "5"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(plan(in, tc.sub)); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("plan = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBatchIDAndBody(t *testing.T) {
	ab, ba, ac := items("u", "a", "u", "b"), items("u", "b", "u", "a"), items("u", "a", "u", "c")
	if batchID(ab) != batchID(ba) {
		t.Error("the same deliveries in another order got another id")
	}
	if batchID(ab) == batchID(ac) || batchID(ab) == batchID(ab[:1]) {
		t.Error("different sets of deliveries got the same id")
	}
	if got := string(batchBody(ab)); got != `[{"id":"a"},{"id":"b"}]` {
		t.Errorf("batchBody = %s", got)
	}
}
