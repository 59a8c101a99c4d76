package immediate

import "github.com/prometheus/client_golang/prometheus"

// Why a delivery was queued rather than attempted, the label of
// hookline_ingest_immediate_queued_total.
const (
	queuedBatch         = "batch"         // a batch subscription's
	queuedOrdered       = "ordered"       // an ordered subscription's
	queuedUndeliverable = "undeliverable" // no request can be built: the pipeline dead-letters it
	queuedInFlight      = "in_flight"     // over the instance's or the tenant's attempts in flight
	queuedRateLimited   = "rate_limited"  // its endpoint's next rate-limit slot is not free now
	queuedRedis         = "redis"         // the claims cannot be taken
	queuedClaimed       = "claimed"       // another request claimed it first
)

// Metrics are immediate mode's Prometheus series. A nil *Metrics counts
// nothing.
type Metrics struct {
	// Deliveries counts the deliveries immediate requests matched, each
	// once, by how it went: delivered or failed when its attempt ends
	// (after the answer when that said pending), queued when it was not
	// attempted.
	Deliveries *prometheus.CounterVec
	// Queued counts the deliveries queued for the pipeline, by reason.
	Queued *prometheus.CounterVec
	// Pending counts the deliveries still under way when their request's
	// wait ended (answered pending); Deliveries counts them when they end.
	Pending prometheus.Counter
	// Wait observes how long each immediate request waited for its
	// attempts before answering.
	Wait prometheus.Histogram
}

// NewMetrics registers immediate mode's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_ingest_immediate_deliveries_total",
			Help: "Deliveries of immediate-mode requests by outcome: delivered, failed (the pipeline retries or dead-letters it), queued (not attempted: the pipeline delivers it).",
		}, []string{"outcome"}),
		Queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_ingest_immediate_queued_total",
			Help: "Immediate-mode deliveries queued for the pipeline rather than attempted, by reason: batch, ordered, undeliverable, in_flight, rate_limited, redis, claimed.",
		}, []string{"reason"}),
		Pending: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_ingest_immediate_pending_total",
			Help: "Immediate-mode deliveries still under way when their request's wait ended (answered pending); they end all the same.",
		}),
		Wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookline_ingest_immediate_wait_seconds",
			Help:    "How long an immediate-mode request waited for its attempts before answering.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}),
	}
	for _, o := range []string{Delivered, Failed, Queued} {
		m.Deliveries.WithLabelValues(o) // present at zero, so rate() works from the start
	}
	for _, r := range []string{queuedBatch, queuedOrdered, queuedUndeliverable, queuedInFlight, queuedRateLimited, queuedRedis, queuedClaimed} {
		m.Queued.WithLabelValues(r)
	}
	reg.MustRegister(m.Deliveries, m.Queued, m.Pending, m.Wait)
	return m
}

// queued counts a delivery queued for reason.
func (m *Metrics) queued(reason string) {
	if m != nil {
		m.Deliveries.WithLabelValues(Queued).Inc()
		m.Queued.WithLabelValues(reason).Inc()
	}
}

// ended counts an attempt that ended with outcome, Delivered or Failed.
func (m *Metrics) ended(outcome string) {
	if m != nil {
		m.Deliveries.WithLabelValues(outcome).Inc()
	}
}

// answered counts a request's answer: pending deliveries, and its wait
// in seconds.
func (m *Metrics) answered(pending int, waited float64) {
	if m != nil {
		m.Pending.Add(float64(pending))
		m.Wait.Observe(waited)
	}
}
