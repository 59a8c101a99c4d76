package match

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the matcher's own Prometheus metrics; its Kafka client's
// come from the telemetry hooks.
type Metrics struct {
	// DeriveFailures counts derived fields whose expression failed, by
	// what the delivery got instead: fallback="default" or "omitted".
	DeriveFailures *prometheus.CounterVec
	// DeadLetters counts deliveries the matcher dead-lettered itself: no
	// URL could be built, the body was over the record limit, or building
	// it panicked.
	DeadLetters prometheus.Counter
	// Recovered counts panics recovered, by stage: "event" (the event was
	// rejected) or "subscription" (that delivery was dead-lettered).
	Recovered *prometheus.CounterVec
	// Quarantined counts events set aside after crashing the matcher.
	Quarantined prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		DeriveFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_matcher_derive_failures_total",
			Help: "Derived payload fields that could not be computed, by fallback: default (the field's default was sent) or omitted (the field was left out).",
		}, []string{"fallback"}),
	}
	m.DeadLetters = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookline_matcher_dead_letters_total",
		Help: "Deliveries the matcher dead-lettered itself: no URL, a body over the record limit, or a panic while building it.",
	})
	m.Recovered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookline_matcher_panics_recovered_total",
		Help: "Panics recovered while matching, by stage: event (the event was rejected) or subscription (that delivery was dead-lettered).",
	}, []string{"stage"})
	m.Quarantined = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookline_matcher_quarantined_total",
		Help: "Events sent to the rejected topic after crashing the matcher HOOKLINE_CRASH_LIMIT times.",
	})
	reg.MustRegister(m.DeriveFailures, m.DeadLetters, m.Recovered, m.Quarantined)
	return m
}

func (m *Metrics) deadLettered() {
	if m != nil {
		m.DeadLetters.Inc()
	}
}

func (m *Metrics) recovered(stage string) {
	if m != nil {
		m.Recovered.WithLabelValues(stage).Inc()
	}
}

func (m *Metrics) quarantined() {
	if m != nil {
		m.Quarantined.Inc()
	}
}

// deriveFailed counts one failed derived field; a nil *Metrics counts
// nothing.
func (m *Metrics) deriveFailed(fallback string) {
	if m != nil {
		m.DeriveFailures.WithLabelValues(fallback).Inc()
	}
}

// deriveFailer is deriveFailed for match.NewShaper; nil counts nothing.
func (m *Metrics) deriveFailer() func(fallback string) {
	if m == nil {
		return nil
	}
	return m.deriveFailed
}
