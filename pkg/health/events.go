package health

import "time"

// More event types Hookline publishes through itself, to hookline.events
// for the subscription's tenant with subject = the subscription id. The
// sender emits them; services/notify emails them (docs/alerts.md).
const (
	// Recovered follows the first delivered attempt after a streak that
	// reached Failing (or Critical): one per streak.
	Recovered = "hookline.endpoint.recovered"
	// Exhausted is a delivery given up: dead-lettered after its last
	// attempt, or at once for a permanent failure. One per dead-lettering.
	Exhausted = "hookline.delivery.exhausted"
)

// EndpointPrefix starts the type of every event about an endpoint's health.
const EndpointPrefix = "hookline.endpoint."

// EndpointAlert is the data of the hookline.endpoint.* events (failing,
// critical, disabled, recovered). Readers ignore fields they do not know,
// so fields may be added.
type EndpointAlert struct {
	SubscriptionID string `json:"subscription_id"`
	URL            string `json:"url"`
	// ConsecutiveFailures is the streak's length: at this event for
	// failing, critical and disabled; the whole streak just ended for
	// recovered.
	ConsecutiveFailures int64     `json:"consecutive_failures"`
	FailingSince        time.Time `json:"failing_since"`
	// LastStatus is the HTTP status of the last failed attempt, 0 when no
	// response arrived (timeouts, refused connections); LastError says why.
	LastStatus int    `json:"last_status"`
	LastError  string `json:"last_error"`
	// RecoveredAt is when the delivered attempt that ended the streak
	// started; recovered only.
	RecoveredAt *time.Time `json:"recovered_at,omitempty"`
}

// DeliveryExhausted is the data of hookline.delivery.exhausted.
type DeliveryExhausted struct {
	DeliveryID     string    `json:"delivery_id"`
	EventID        string    `json:"event_id"`
	EventType      string    `json:"event_type"`
	SubscriptionID string    `json:"subscription_id"`
	URL            string    `json:"url"`
	Attempts       int       `json:"attempts"`
	LastStatus     int       `json:"last_status"`
	LastError      string    `json:"last_error"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
}
