// Package alert turns Hookline's endpoint-health events into emails to the
// people who own the endpoints.
//
// The Kafka handler (Handler) reads hookline.events and queues a
// notification in Redis (Outbox) for each hookline.endpoint.* event and
// groups hookline.delivery.exhausted events into one digest per
// subscription and window; a queued notification is remembered under its
// triggering event's id, so an event read twice (a restart, a rebalance) is
// queued once. Its offsets are committed only once Redis has it. The
// Dispatcher takes due notifications from the outbox, settles their
// recipients once (the subscription's alert_emails and the tenant's
// defaults, within an hourly cap per recipient), sends one email to each,
// retries temporary SMTP failures with backoff without holding up the
// others, and writes what became of each recipient to
// hookline.notifications. SMTP being down only delays notifications.
package alert

import (
	"time"

	"github.com/hookline/hookline/pkg/health"
)

// Kinds of notification, one per event type notify acts on.
const (
	KindFailing   = "failing"
	KindCritical  = "critical"
	KindDisabled  = "disabled"
	KindRecovered = "recovered"
	KindExhausted = "exhausted" // a digest of given-up deliveries
)

// kindOf maps an event type to the notification it raises; false for the
// events notify ignores.
func kindOf(eventType string) (string, bool) {
	switch eventType {
	case health.Failing:
		return KindFailing, true
	case health.Critical:
		return KindCritical, true
	case health.Disabled:
		return KindDisabled, true
	case health.Recovered:
		return KindRecovered, true
	case health.Exhausted:
		return KindExhausted, true
	}
	return "", false
}

// Job is one queued notification: a streak-level alert (Alert) or a digest
// of given-up deliveries (Items), with what became of its recipients so
// far.
type Job struct {
	ID             string
	Kind           string
	Tenant         string
	SubscriptionID string
	QueuedAt       time.Time
	Attempts       int
	LastError      string

	Alert *Alert // failing, critical, disabled, recovered
	Items []Item // exhausted, oldest first

	// Admitted is set once the recipients were settled (and counted
	// against the hourly cap): Pending are those still to be sent to,
	// Results those done.
	Admitted bool
	Pending  []string
	Results  map[string]Result
}

// Alert is the triggering event of a streak-level notification.
type Alert struct {
	Trigger string    `json:"trigger"` // the hookline.endpoint.* event's id
	At      time.Time `json:"at"`      // when it occurred
	health.EndpointAlert
}

// Item is one given-up delivery in a digest.
type Item struct {
	Trigger string    `json:"trigger"` // the hookline.delivery.exhausted event's id
	At      time.Time `json:"at"`
	health.DeliveryExhausted
}

// Result is what became of one recipient.
type Result struct {
	Outcome string // record.Outcome*
	Error   string
}

// Triggers are the ids of the events the job reports.
func (j *Job) Triggers() []string {
	if j.Alert != nil {
		return []string{j.Alert.Trigger}
	}
	out := make([]string, len(j.Items))
	for i, it := range j.Items {
		out[i] = it.Trigger
	}
	return out
}
