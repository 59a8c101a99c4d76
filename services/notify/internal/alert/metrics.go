package alert

import "github.com/prometheus/client_golang/prometheus"

// Reasons a notification or one of its recipients was suppressed.
const (
	ReasonDuplicate    = "duplicate"     // its event was queued before
	ReasonStale        = "stale"         // its event is older than the max age
	ReasonNoRecipients = "no_recipients" // no alert_emails and no default
	ReasonCap          = "cap"           // the recipient's hourly cap was reached
	ReasonInvalidAddr  = "invalid_address"
	ReasonInvalidEvent = "invalid_event" // an event notify cannot read
)

// Reasons an email failed.
const (
	FailTemporary = "temporary" // will be retried
	FailPermanent = "permanent" // refused by the server for good
	FailGaveUp    = "gave_up"   // temporary failures for longer than the give-up age
)

// Metrics are notify's counters. Labels are bounded sets (kinds, reasons),
// never tenants or addresses.
type Metrics struct {
	Queued     *prometheus.CounterVec // notifications queued (digest items count once each), by kind
	Sent       *prometheus.CounterVec // emails accepted by the SMTP server (or logged), by kind
	Failed     *prometheus.CounterVec // emails that failed, by kind and reason
	Suppressed *prometheus.CounterVec // by reason
	Recorded   prometheus.Counter     // notifications written to hookline.notifications
	Pending    prometheus.Gauge       // notifications in the outbox
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_notify_queued_total",
			Help: "Endpoint events queued for email (each given-up delivery of a digest counts once), by kind.",
		}, []string{"kind"}),
		Sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_notify_sent_total",
			Help: "Alert emails accepted by the SMTP server (or logged when none is configured), one per recipient, by kind.",
		}, []string{"kind"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_notify_failed_total",
			Help: "Alert emails that failed, one per recipient and attempt: temporary (retried), permanent (refused) or gave_up.",
		}, []string{"kind", "reason"}),
		Suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_notify_suppressed_total",
			Help: "Notifications or recipients not emailed, by reason: duplicate, stale, no_recipients, cap, invalid_address, invalid_event.",
		}, []string{"reason"}),
		Recorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_notify_recorded_total",
			Help: "Notifications written to hookline.notifications once every recipient was handled.",
		}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookline_notify_pending",
			Help: "Notifications in the outbox: waiting for a digest window, for a retry, or being sent.",
		}),
	}
	reg.MustRegister(m.Queued, m.Sent, m.Failed, m.Suppressed, m.Recorded, m.Pending)
	// Every series from the start, at 0: a rate over a counter that
	// appears only at its first increment misses that increment, and
	// dashboards and alerts can tell "none" from "not scraped".
	for _, kind := range []string{KindFailing, KindCritical, KindDisabled, KindRecovered, KindExhausted} {
		m.Queued.WithLabelValues(kind)
		m.Sent.WithLabelValues(kind)
		for _, reason := range []string{FailTemporary, FailPermanent, FailGaveUp} {
			m.Failed.WithLabelValues(kind, reason)
		}
	}
	for _, reason := range []string{ReasonDuplicate, ReasonStale, ReasonNoRecipients, ReasonCap, ReasonInvalidAddr, ReasonInvalidEvent} {
		m.Suppressed.WithLabelValues(reason)
	}
	return m
}
