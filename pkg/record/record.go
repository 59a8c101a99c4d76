// Package record defines the records Hookline writes to Kafka, one Go type
// per Avro schema in schemas/, and their wire-format codecs.
package record

import (
	"fmt"
	"time"

	"github.com/hookline/hookline/pkg/avro"
)

// Event is something that happened in a producer's system (hookline.events).
type Event struct {
	ID         string    `avro:"id"`
	Tenant     string    `avro:"tenant"`
	Type       string    `avro:"type"`
	Subject    string    `avro:"subject"`
	Source     string    `avro:"source"`
	OccurredAt time.Time `avro:"occurred_at"`
	ReceivedAt time.Time `avro:"received_at"`
	Data       string    `avro:"data"` // a JSON object
	Changed    []string  `avro:"changed"`
	Previous   *string   `avro:"previous"` // a JSON object, or nil
}

// Subscription is a tenant's endpoint and what it wants (hookline.subscriptions).
type Subscription struct {
	ID                 string            `avro:"id"`
	Tenant             string            `avro:"tenant"`
	Name               string            `avro:"name"`
	Description        string            `avro:"description"`
	URL                string            `avro:"url"`
	EventTypes         []string          `avro:"event_types"`
	Condition          *string           `avro:"condition"`
	Expression         *string           `avro:"expression"`
	Payload            string            `avro:"payload"`
	Headers            map[string]string `avro:"headers"`
	Auth               *Auth             `avro:"auth"`
	Secrets            []Secret          `avro:"secrets"`
	RateLimitPerSecond int32             `avro:"rate_limit_per_second"`
	TimeoutMS          int32             `avro:"timeout_ms"`
	MaxAttempts        int32             `avro:"max_attempts"`
	Ordered            bool              `avro:"ordered"`
	Enabled            bool              `avro:"enabled"`
	DisabledReason     string            `avro:"disabled_reason"`
	Metadata           map[string]string `avro:"metadata"`
	Routes             []Route           `avro:"routes"`
	AllowedHosts       []string          `avro:"allowed_hosts"`
	Batch              *Batch            `avro:"batch"`
	CreatedAt          time.Time         `avro:"created_at"`
	UpdatedAt          time.Time         `avro:"updated_at"`
}

// Auth is the credential the sender presents to an endpoint.
type Auth struct {
	Type             string `avro:"type"` // bearer or basic
	Username         string `avro:"username"`
	SealedCredential []byte `avro:"sealed_credential"`
}

// Secret is one signing secret, sealed with the operator key.
type Secret struct {
	Sealed    []byte     `avro:"sealed"`
	CreatedAt time.Time  `avro:"created_at"`
	ExpiresAt *time.Time `avro:"expires_at"`
}

// Route sends matching events to another URL.
type Route struct {
	Condition string `avro:"condition"`
	URL       string `avro:"url"`
}

// Batch groups deliveries to one endpoint into one request.
type Batch struct {
	MaxEvents int32 `avro:"max_events"`
	MaxWaitMS int32 `avro:"max_wait_ms"`
}

// Delivery is one event owed to one endpoint (hookline.deliveries, the
// retry tiers and hookline.dlq).
type Delivery struct {
	ID             string     `avro:"id"`
	Tenant         string     `avro:"tenant"`
	SubscriptionID string     `avro:"subscription_id"`
	EventID        string     `avro:"event_id"`
	EventType      string     `avro:"event_type"`
	URL            string     `avro:"url"`
	Payload        string     `avro:"payload"`
	CreatedAt      time.Time  `avro:"created_at"`
	EventTime      time.Time  `avro:"event_time"`
	Attempt        int32      `avro:"attempt"`
	DueAt          *time.Time `avro:"due_at"`
	Replay         bool       `avro:"replay"`
	LastStatus     int32      `avro:"last_status"`
	LastError      string     `avro:"last_error"`
}

// Outcomes of a delivery attempt, as written to DeliveryAttempt.Outcome.
const (
	OutcomeDelivered    = "delivered"
	OutcomeRetrying     = "retrying"
	OutcomeDeadLettered = "dead_lettered"
)

// DeliveryAttempt is one HTTP attempt of one delivery (hookline.delivery-log).
type DeliveryAttempt struct {
	DeliveryID      string     `avro:"delivery_id"`
	Tenant          string     `avro:"tenant"`
	SubscriptionID  string     `avro:"subscription_id"`
	EventID         string     `avro:"event_id"`
	EventType       string     `avro:"event_type"`
	URL             string     `avro:"url"`
	Attempt         int32      `avro:"attempt"`
	Replay          bool       `avro:"replay"`
	StartedAt       time.Time  `avro:"started_at"`
	DurationMS      int64      `avro:"duration_ms"`
	StatusCode      int32      `avro:"status_code"`
	Outcome         string     `avro:"outcome"`
	Error           string     `avro:"error"`
	ResponseSnippet string     `avro:"response_snippet"`
	RequestBytes    int64      `avro:"request_bytes"`
	ResponseBytes   int64      `avro:"response_bytes"`
	NextAttemptAt   *time.Time `avro:"next_attempt_at"`
	TraceID         string     `avro:"trace_id"`
}

// Codecs holds one wire-format codec per record type.
type Codecs struct {
	Registry     *avro.Registry
	Event        *avro.Codec[Event]
	Subscription *avro.Codec[Subscription]
	Delivery     *avro.Codec[Delivery]
	Attempt      *avro.Codec[DeliveryAttempt]
}

// NewCodecs builds the codecs from the registry's schemas.
func NewCodecs(reg *avro.Registry) (*Codecs, error) {
	c := &Codecs{Registry: reg}
	var err error
	if c.Event, err = avro.NewCodec[Event](reg, "dev.hookline.Event"); err != nil {
		return nil, err
	}
	if c.Subscription, err = avro.NewCodec[Subscription](reg, "dev.hookline.Subscription"); err != nil {
		return nil, err
	}
	if c.Delivery, err = avro.NewCodec[Delivery](reg, "dev.hookline.Delivery"); err != nil {
		return nil, err
	}
	if c.Attempt, err = avro.NewCodec[DeliveryAttempt](reg, "dev.hookline.DeliveryAttempt"); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadCodecs builds the codecs from the embedded schemas and fixed ids.
func LoadCodecs() (*Codecs, error) {
	reg, err := avro.Load()
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	return NewCodecs(reg)
}
