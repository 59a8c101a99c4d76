package dispatch

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the sender's Prometheus series.
type Metrics struct {
	Attempts    *prometheus.CounterVec
	Duration    *prometheus.HistogramVec
	InFlight    prometheus.Gauge
	RateLimited prometheus.Counter
	// EndpointAlerts counts the endpoint health events emitted
	// (hookline.endpoint.*, hookline.delivery.exhausted), by type.
	EndpointAlerts *prometheus.CounterVec
	// BatchSize observes the deliveries in each batch request.
	BatchSize   prometheus.Histogram
	Deferred    prometheus.Counter
	Suppressed  prometheus.Counter
	RedisErrors prometheus.Counter
	// Parked counts deliveries parked by their lane, by reason (backlog,
	// ordered, rate_limit); not attempts.
	Parked *prometheus.CounterVec
	// Claims counts the pipeline's copies of deliveries ingest claimed
	// in immediate mode (claims.go), by how the claim resolved:
	// delivered (dropped; also counted in Suppressed), failed (moved on
	// as attempt 1, not sent), expired (ingest died mid-attempt: sent).
	Claims *prometheus.CounterVec
	// ClaimWaiting is the deliveries held waiting for an immediate
	// attempt to end, or for their claims to be readable.
	ClaimWaiting prometheus.Gauge

	top   int
	lanes atomic.Pointer[Dispatcher] // set by the Dispatcher's first Run; its lanes feed the collector
}

// Descriptions of the lane series, gathered at scrape time.
var (
	lanesDesc   = prometheus.NewDesc("hookline_sender_lanes", "Endpoint lanes the instance holds (one per subscription and partition seen lately).", nil, nil)
	backlogDesc = prometheus.NewDesc("hookline_sender_backlog", "Deliveries waiting in memory in every lane, not in flight.", nil, nil)
	parkedDesc  = prometheus.NewDesc("hookline_sender_parked", "Deliveries lanes parked and have not seen back yet.", nil, nil)
	saturated   = prometheus.NewDesc("hookline_sender_lanes_saturated", "Lanes with a backlog: at their concurrency limit, their rate limit or the pool's.", nil, nil)

	epLabels     = []string{"subscription", "tenant"}
	epBacklog    = prometheus.NewDesc("hookline_sender_endpoint_backlog", "Deliveries waiting in memory for one endpoint; only the top endpoints by backlog (HOOKLINE_SENDER_METRICS_TOP_ENDPOINTS).", epLabels, nil)
	epInFlight   = prometheus.NewDesc("hookline_sender_endpoint_in_flight", "Requests in flight to one endpoint; top endpoints only.", epLabels, nil)
	epParked     = prometheus.NewDesc("hookline_sender_endpoint_parked", "Deliveries of one endpoint parked and not seen back yet; top endpoints only.", epLabels, nil)
	epLimit      = prometheus.NewDesc("hookline_sender_endpoint_limit", "The adaptive concurrency limit of one endpoint; top endpoints only.", epLabels, nil)
	laneDescribe = []*prometheus.Desc{lanesDesc, backlogDesc, parkedDesc, saturated, epBacklog, epInFlight, epParked, epLimit}
)

// NewMetrics registers the sender's series on reg. The per-endpoint series
// show only the top endpoints, those with the largest backlog, then the
// most in flight, then the most parked, so their cardinality is bounded
// whatever the number of endpoints; the aggregates cover every lane.
func NewMetrics(reg prometheus.Registerer, topEndpoints int) *Metrics {
	m := &Metrics{
		top: cmp.Or(topEndpoints, DefaultTopEndpoints),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_sender_attempts_total", Help: "Delivery attempts by outcome (delivered, retrying, dead_lettered, not_sent).",
		}, []string{"outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookline_sender_attempt_duration_seconds", Help: "Time from request to classified response.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}, []string{"class"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookline_sender_in_flight", Help: "Requests in flight."}),
		EndpointAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_sender_endpoint_alerts_total", Help: "Endpoint health events emitted (hookline.endpoint.failing, .critical, .disabled, .recovered, hookline.delivery.exhausted).",
		}, []string{"type"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookline_sender_batch_deliveries", Help: "Deliveries per batch request, for subscriptions that batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_sender_rate_limited_total", Help: "Requests that had to wait for their endpoint's rate limit."}),
		Deferred:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_sender_rate_limit_deferred_total", Help: "Deliveries handed to the retry scheduler because their endpoint was backed up past its rate limit; not attempts."}),
		Suppressed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_sender_duplicates_suppressed_total", Help: "Deliveries skipped because they were already delivered."}),
		RedisErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_sender_redis_errors_total", Help: "Redis calls that failed."}),
		Parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_sender_parked_total", Help: "Deliveries parked in a retry tier by their lane, not attempts: backlog (the endpoint is saturated), ordered (behind its parked ones), rate_limit (past the rate-limit wait).",
		}, []string{"reason"}),
	}
	m.Claims = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookline_sender_claims_resolved_total", Help: "Deliveries ingest claimed in immediate mode, by how the claim resolved: delivered (dropped, not sent), failed (moved on as attempt 1, not sent), expired (ingest died mid-attempt: sent).",
	}, []string{"resolution"})
	m.ClaimWaiting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hookline_sender_claim_waiting", Help: "Deliveries held waiting for ingest's immediate-mode attempt to end, or for their claims to be readable.",
	})
	for _, r := range []string{parkBacklog, parkOrdered, parkRateLimit} {
		m.Parked.WithLabelValues(r) // present at zero, so rate() works from the start
	}
	for _, r := range []string{claimDelivered, claimFailed, claimExpired} {
		m.Claims.WithLabelValues(r)
	}
	reg.MustRegister(m.Attempts, m.Duration, m.InFlight, m.RateLimited, m.Deferred, m.Suppressed, m.RedisErrors, m.EndpointAlerts, m.BatchSize, m.Parked, m.Claims, m.ClaimWaiting, m)
	return m
}

// Describe implements prometheus.Collector for the lane series.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range laneDescribe {
		ch <- d
	}
}

// laneFigures is one lane's figures at scrape time.
type laneFigures struct {
	subscription, tenant             string
	backlog, inFlight, parked, limit int64
}

// Collect implements prometheus.Collector: the aggregates over every lane
// and the figures of the top endpoints.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	var all []laneFigures
	if d := m.lanes.Load(); d != nil {
		d.eachLane(func(s *laneStats) {
			all = append(all, laneFigures{s.subscription, s.tenant, s.backlog.Load(), s.inFlight.Load(), s.parked.Load(), s.limit.Load()})
		})
	}
	var backlog, parked, busy int64
	for _, f := range all {
		backlog += f.backlog
		parked += f.parked
		if f.backlog > 0 {
			busy++
		}
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(lanesDesc, int64(len(all)))
	gauge(backlogDesc, backlog)
	gauge(parkedDesc, parked)
	gauge(saturated, busy)
	for _, f := range topLanes(all, m.top) {
		gauge(epBacklog, f.backlog, f.subscription, f.tenant)
		gauge(epInFlight, f.inFlight, f.subscription, f.tenant)
		gauge(epParked, f.parked, f.subscription, f.tenant)
		gauge(epLimit, f.limit, f.subscription, f.tenant)
	}
}

// topLanes returns the n busiest lanes: by backlog, then in flight, then
// parked; lanes with none of these are left out. One subscription's lanes
// on several partitions (its deliveries spread by hand) add up.
func topLanes(all []laneFigures, n int) []laneFigures {
	bySub := map[string]*laneFigures{}
	var merged []*laneFigures
	for _, f := range all {
		if f.backlog+f.inFlight+f.parked == 0 {
			continue
		}
		if g := bySub[f.subscription]; g != nil {
			g.backlog, g.inFlight, g.parked, g.limit = g.backlog+f.backlog, g.inFlight+f.inFlight, g.parked+f.parked, g.limit+f.limit
			continue
		}
		g := f
		bySub[f.subscription] = &g
		merged = append(merged, &g)
	}
	slices.SortFunc(merged, func(a, b *laneFigures) int {
		return cmp.Or(cmp.Compare(b.backlog, a.backlog), cmp.Compare(b.inFlight, a.inFlight),
			cmp.Compare(b.parked, a.parked), cmp.Compare(a.subscription, b.subscription))
	})
	out := make([]laneFigures, 0, min(n, len(merged)))
	for _, g := range merged[:min(n, len(merged))] {
		out = append(out, *g)
	}
	return out
}
