package match

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the matcher's own Prometheus metrics; its Kafka client's
// come from the telemetry hooks.
type Metrics struct {
	// DeriveFailures counts derived fields whose expression failed, by
	// what the delivery got instead: fallback="default" or "omitted".
	DeriveFailures *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		DeriveFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_matcher_derive_failures_total",
			Help: "Derived payload fields that could not be computed, by fallback: default (the field's default was sent) or omitted (the field was left out).",
		}, []string{"fallback"}),
	}
	reg.MustRegister(m.DeriveFailures)
	return m
}

// deriveFailed counts one failed derived field; a nil *Metrics counts
// nothing.
func (m *Metrics) deriveFailed(fallback string) {
	if m != nil {
		m.DeriveFailures.WithLabelValues(fallback).Inc()
	}
}
