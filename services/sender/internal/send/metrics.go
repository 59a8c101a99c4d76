package send

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the sender's Prometheus series.
type Metrics struct {
	Attempts    *prometheus.CounterVec
	Duration    *prometheus.HistogramVec
	InFlight    prometheus.Gauge
	RateLimited prometheus.Counter
	// EndpointAlerts counts endpoint health events emitted, by type.
	EndpointAlerts *prometheus.CounterVec
	// BatchSize observes the deliveries in each batch request.
	BatchSize   prometheus.Histogram
	Deferred    prometheus.Counter
	Suppressed  prometheus.Counter
	RedisErrors prometheus.Counter
}

// NewMetrics registers the sender's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_sender_attempts_total", Help: "Delivery attempts by outcome (delivered, retrying, dead_lettered, not_sent).",
		}, []string{"outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hookline_sender_attempt_duration_seconds", Help: "Time from request to classified response.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}, []string{"class"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookline_sender_in_flight", Help: "Requests in flight."}),
		EndpointAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_sender_endpoint_alerts_total", Help: "Endpoint health events emitted (hookline.endpoint.failing, .critical, .disabled).",
		}, []string{"type"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookline_sender_batch_deliveries", Help: "Deliveries per batch request, for subscriptions that batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_sender_rate_limited_total", Help: "Requests that had to wait for their endpoint's rate limit."}),
		Deferred:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_sender_rate_limit_deferred_total", Help: "Deliveries handed to the retry scheduler because their endpoint was backed up past its rate limit; not attempts."}),
		Suppressed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_sender_duplicates_suppressed_total", Help: "Deliveries skipped because they were already delivered."}),
		RedisErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_sender_redis_errors_total", Help: "Redis calls that failed."}),
	}
	reg.MustRegister(m.Attempts, m.Duration, m.InFlight, m.RateLimited, m.Deferred, m.Suppressed, m.RedisErrors, m.EndpointAlerts, m.BatchSize)
	return m
}
