package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hookline/hookline/pkg/logstore"
)

// GET /v1/stats: the console's overview of a tenant's deliveries, from the
// delivery history. The per-subscription stats call answers one endpoint
// at a time; an overview of a tenant with 10,000 endpoints needs them all
// in one query, with a series per minute for its charts.

const (
	// defaultOverviewWindow is the window when none is given: the last
	// hour, what the console's overview shows.
	defaultOverviewWindow = time.Hour
	// maxOverviewWindow bounds the window: the call reads every attempt
	// of the tenant in it, so its cost follows the tenant's traffic; a
	// day at a time keeps it to seconds even for a busy tenant.
	maxOverviewWindow = 24 * time.Hour
	// defaultOverviewSubscriptions is how many endpoints the answer lists,
	// failing first.
	defaultOverviewSubscriptions = 20
)

// overviewAnswer is GET /v1/stats.
type overviewAnswer struct {
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	BucketSeconds int64     `json:"bucket_seconds"`
	outcomeCounts
	// Series has one entry per bucket holding attempts, oldest first.
	Series []overviewBucket `json:"series"`
	// Subscriptions are the endpoints with attempts in the window, those
	// failing the most first, at most limit of them.
	Subscriptions []overviewSubscription `json:"subscriptions"`
	// SubscriptionsTotal is how many endpoints had attempts in the window.
	SubscriptionsTotal int `json:"subscriptions_total"`
}

// outcomeCounts are attempts counted by outcome, with latency percentiles.
type outcomeCounts struct {
	Attempts  int64     `json:"attempts"`
	Delivered int64     `json:"delivered"`
	Retrying  int64     `json:"retrying"`
	Failed    int64     `json:"failed"`
	LatencyMS latencies `json:"latency_ms"`
}

func countsOf(st logstore.Stats) outcomeCounts {
	return outcomeCounts{Attempts: st.Attempts, Delivered: st.Delivered, Retrying: st.Retrying, Failed: st.Failed,
		LatencyMS: latencies{P50: st.P50.Milliseconds(), P95: st.P95.Milliseconds(), P99: st.P99.Milliseconds()}}
}

type overviewBucket struct {
	Start time.Time `json:"start"`
	outcomeCounts
}

type overviewSubscription struct {
	SubscriptionID string `json:"subscription_id"`
	// Name and URL are the subscription's now; empty once it is deleted.
	Name string `json:"name"`
	URL  string `json:"url"`
	outcomeCounts
}

// failureShare is the share of an endpoint's attempts that did not
// deliver: what "failing first" sorts by.
func failureShare(c outcomeCounts) float64 {
	if c.Attempts == 0 {
		return 0
	}
	return float64(c.Failed+c.Retrying) / float64(c.Attempts)
}

// overview is GET /v1/stats: the tenant's attempts in a window (the last
// hour by default) counted by outcome with latency percentiles, in all,
// per bucket (a minute by default) and per endpoint, failing first. A
// restricted portal session sees its subscriptions only.
func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	q := &query{v: r.URL.Query()}
	q.known("since", "until", "bucket", "limit")
	since, until := q.window()
	if until.IsZero() {
		until = s.Now().UTC()
	}
	if since.IsZero() {
		since = until.Add(-defaultOverviewWindow)
	}
	// The store keeps microseconds: buckets start at since as it reads it.
	since, until = since.Truncate(time.Microsecond), until.Truncate(time.Microsecond)
	switch {
	case len(q.errs) > 0:
	case !since.Before(until):
		q.bad("since", "must be before until (now when not given)")
	case until.Sub(since) > maxOverviewWindow:
		q.bad("since", fmt.Sprintf("the window is at most %v", maxOverviewWindow))
	}
	bucket := q.positive("bucket", 60, 86400)
	limit := q.positive("limit", defaultOverviewSubscriptions, logstore.MaxLimit)
	if len(q.errs) == 0 && until.Sub(since) > time.Duration(bucket)*time.Second*logstore.MaxOverviewBuckets {
		q.bad("bucket", fmt.Sprintf("makes more than %d buckets of the window", logstore.MaxOverviewBuckets))
	}
	if q.failed(w, r) || !s.historyOn(w, r) {
		return
	}
	ov, err := s.History.Overview(r.Context(), tenantOf(r), logstore.OverviewQuery{
		SubscriptionIDs: principalOf(r).subs, Since: since, Until: until, Bucket: time.Duration(bucket) * time.Second})
	if err != nil {
		s.historyFailed(w, r, "stats", err)
		return
	}
	out := overviewAnswer{Since: since, Until: until, BucketSeconds: int64(bucket), outcomeCounts: countsOf(ov.Stats),
		Series: make([]overviewBucket, 0, len(ov.Series)), Subscriptions: []overviewSubscription{}, SubscriptionsTotal: len(ov.Subscriptions)}
	for _, b := range ov.Series {
		out.Series = append(out.Series, overviewBucket{Start: b.Start, outcomeCounts: countsOf(b.Stats)})
	}
	subs := make([]overviewSubscription, 0, len(ov.Subscriptions))
	for _, ss := range ov.Subscriptions {
		subs = append(subs, overviewSubscription{SubscriptionID: ss.SubscriptionID, outcomeCounts: countsOf(ss.Stats)})
	}
	slices.SortFunc(subs, func(a, b overviewSubscription) int {
		return cmp.Or(cmp.Compare(failureShare(b.outcomeCounts), failureShare(a.outcomeCounts)),
			cmp.Compare(b.Failed, a.Failed), cmp.Compare(b.Attempts, a.Attempts), cmp.Compare(a.SubscriptionID, b.SubscriptionID))
	})
	for _, sub := range subs[:min(limit, len(subs))] {
		if rec, ok := s.View.Get(sub.SubscriptionID); ok && rec.Tenant == tenantOf(r) {
			sub.Name, sub.URL = rec.Name, rec.URL
		}
		out.Subscriptions = append(out.Subscriptions, sub)
	}
	writeJSON(w, http.StatusOK, out)
}

// positive reads a whole number from 1 to most, def when not given.
func (q *query) positive(name string, def, most int) int {
	v := q.v.Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		q.bad(name, fmt.Sprintf("must be a whole number from 1 to %d", most))
		return def
	}
	return n
}
