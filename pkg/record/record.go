// Package record defines the records Hookline writes to Kafka, one Go type
// per Avro schema in schemas/, and their wire-format codecs. Which record
// lives on which topic is pkg/wire's.
package record

import (
	"fmt"
	"time"

	"github.com/hookline/hookline/pkg/avro"
)

// Full Avro names of the records, as in schemas/*.avsc.
const (
	EventName           = "dev.hookline.Event"
	SubscriptionName    = "dev.hookline.Subscription"
	EndpointStatusName  = "dev.hookline.EndpointStatus"
	DeliveryName        = "dev.hookline.Delivery"
	DeliveryAttemptName = "dev.hookline.DeliveryAttempt"
	EventTypeName       = "dev.hookline.EventType"
	NotificationName    = "dev.hookline.Notification"
)

// Event is something that happened in a producer's system (hookline.events).
type Event struct {
	ID         string    `avro:"id" json:"id"`
	Tenant     string    `avro:"tenant" json:"tenant"`
	Type       string    `avro:"type" json:"type"`
	Subject    string    `avro:"subject" json:"subject"`
	Source     string    `avro:"source" json:"source"`
	OccurredAt time.Time `avro:"occurred_at" json:"occurred_at"`
	ReceivedAt time.Time `avro:"received_at" json:"received_at"`
	Data       string    `avro:"data" json:"data"` // a JSON object
	Changed    []string  `avro:"changed" json:"changed"`
	Previous   *string   `avro:"previous" json:"previous"` // a JSON object, or nil
}

// Subscription is a tenant's endpoint and what it wants (hookline.subscriptions).
type Subscription struct {
	ID                 string            `avro:"id" json:"id"`
	Tenant             string            `avro:"tenant" json:"tenant"`
	Name               string            `avro:"name" json:"name"`
	Description        string            `avro:"description" json:"description"`
	URL                string            `avro:"url" json:"url"`
	EventTypes         []string          `avro:"event_types" json:"event_types"`
	Condition          *string           `avro:"condition" json:"condition"`
	Expression         *string           `avro:"expression" json:"expression"`
	Payload            string            `avro:"payload" json:"payload"`
	Headers            map[string]string `avro:"headers" json:"headers"`
	Auth               *Auth             `avro:"auth" json:"auth"`
	Secrets            []Secret          `avro:"secrets" json:"secrets"`
	RateLimitPerSecond int32             `avro:"rate_limit_per_second" json:"rate_limit_per_second"`
	TimeoutMS          int32             `avro:"timeout_ms" json:"timeout_ms"`
	MaxAttempts        int32             `avro:"max_attempts" json:"max_attempts"`
	Ordered            bool              `avro:"ordered" json:"ordered"`
	Enabled            bool              `avro:"enabled" json:"enabled"`
	DisabledReason     string            `avro:"disabled_reason" json:"disabled_reason"`
	Metadata           map[string]string `avro:"metadata" json:"metadata"`
	Routes             []Route           `avro:"routes" json:"routes"`
	AllowedHosts       []string          `avro:"allowed_hosts" json:"allowed_hosts"`
	Batch              *Batch            `avro:"batch" json:"batch"`
	Derive             []Derive          `avro:"derive" json:"derive"`
	Compression        string            `avro:"compression" json:"compression"` // "" or gzip
	ClientTLS          *ClientTLS        `avro:"client_tls" json:"client_tls"`
	MaxInFlight        int32             `avro:"max_in_flight" json:"max_in_flight"` // 0: the sender's adaptive default
	AlertEmails        []string          `avro:"alert_emails" json:"alert_emails"`
	CreatedAt          time.Time         `avro:"created_at" json:"created_at"`
	UpdatedAt          time.Time         `avro:"updated_at" json:"updated_at"`
}

// EndpointStatus is Hookline's own decision to disable a subscription
// (hookline.endpoint-status, compacted, keyed by subscription id): its
// endpoint answered 410 Gone or failed past the disable window. The
// sender writes it; it applies to the subscription record whose
// UpdatedAt is SubscriptionUpdatedAt, so an owner's later change wins
// (pkg/subscription merges the two).
type EndpointStatus struct {
	SubscriptionID        string    `avro:"subscription_id" json:"subscription_id"`
	Tenant                string    `avro:"tenant" json:"tenant"`
	DisabledReason        string    `avro:"disabled_reason" json:"disabled_reason"`
	DisabledAt            time.Time `avro:"disabled_at" json:"disabled_at"`
	SubscriptionUpdatedAt time.Time `avro:"subscription_updated_at" json:"subscription_updated_at"`
}

// Auth is the credential the sender presents to an endpoint.
type Auth struct {
	Type             string `avro:"type" json:"type"` // bearer or basic
	Username         string `avro:"username" json:"username"`
	SealedCredential []byte `avro:"sealed_credential" json:"sealed_credential"`
}

// Secret is one signing secret, sealed with the operator key.
type Secret struct {
	Sealed    []byte     `avro:"sealed" json:"sealed"`
	CreatedAt time.Time  `avro:"created_at" json:"created_at"`
	ExpiresAt *time.Time `avro:"expires_at" json:"expires_at"`
}

// ClientTLS is the client certificate the sender presents to an endpoint
// that requires mutual TLS; the key is sealed with the operator key.
type ClientTLS struct {
	Certificate string `avro:"certificate" json:"certificate"` // PEM chain
	SealedKey   []byte `avro:"sealed_key" json:"sealed_key"`
}

// Route sends matching events to another URL.
type Route struct {
	Condition string `avro:"condition" json:"condition"`
	URL       string `avro:"url" json:"url"`
}

// Batch groups deliveries to one endpoint into one request.
type Batch struct {
	MaxEvents int32 `avro:"max_events" json:"max_events"`
	MaxWaitMS int32 `avro:"max_wait_ms" json:"max_wait_ms"`
}

// Derive is a field of the delivered body's data computed from the event
// by a CEL expression, with an optional fallback value.
type Derive struct {
	Field      string `avro:"field" json:"field"`           // data.total_eur
	Expression string `avro:"expression" json:"expression"` // CEL over the variable event
	// DefaultJSON is the JSON value written when the expression fails at
	// run time; nil leaves the field out.
	DefaultJSON *string `avro:"default_json" json:"default_json"`
}

// Delivery is one event owed to one endpoint (hookline.deliveries, the
// retry tiers and hookline.dlq).
type Delivery struct {
	ID             string     `avro:"id" json:"id"`
	Tenant         string     `avro:"tenant" json:"tenant"`
	SubscriptionID string     `avro:"subscription_id" json:"subscription_id"`
	EventID        string     `avro:"event_id" json:"event_id"`
	EventType      string     `avro:"event_type" json:"event_type"`
	URL            string     `avro:"url" json:"url"`
	Payload        string     `avro:"payload" json:"payload"`
	CreatedAt      time.Time  `avro:"created_at" json:"created_at"`
	EventTime      time.Time  `avro:"event_time" json:"event_time"`
	Attempt        int32      `avro:"attempt" json:"attempt"`
	DueAt          *time.Time `avro:"due_at" json:"due_at"`
	Replay         bool       `avro:"replay" json:"replay"`
	LastStatus     int32      `avro:"last_status" json:"last_status"`
	LastError      string     `avro:"last_error" json:"last_error"`
	// ResolveURL says the sender resolves the target from the subscription
	// as it is at each attempt: its url when Route is nil, else that route.
	// Records written before Delivery v2 have it false.
	ResolveURL bool      `avro:"resolve_url" json:"resolve_url"`
	Route      *RouteRef `avro:"route" json:"route"`
	// Redelivery, when set, names a re-run asked for from the delivery
	// history: the sender attempts it once, now, even when the delivery
	// was delivered before (its delivered mark does not hold it back), and
	// dead-letters it if that attempt fails. Empty in every other record.
	Redelivery string `avro:"redelivery" json:"redelivery"`
}

// RouteRef names the route of a subscription a delivery was matched to,
// and the event's values of its URL's placeholders.
type RouteRef struct {
	Condition string            `avro:"condition" json:"condition"` // routeurl.ConditionID of its condition
	Values    map[string]string `avro:"values" json:"values"`       // by placeholder path, unescaped
}

// Outcomes of a delivery attempt, as written to DeliveryAttempt.Outcome.
const (
	OutcomeDelivered    = "delivered"
	OutcomeRetrying     = "retrying"
	OutcomeDeadLettered = "dead_lettered"
)

// DeliveryAttempt is one HTTP attempt of one delivery (hookline.delivery-log).
type DeliveryAttempt struct {
	DeliveryID      string     `avro:"delivery_id" json:"delivery_id"`
	Tenant          string     `avro:"tenant" json:"tenant"`
	SubscriptionID  string     `avro:"subscription_id" json:"subscription_id"`
	EventID         string     `avro:"event_id" json:"event_id"`
	EventType       string     `avro:"event_type" json:"event_type"`
	URL             string     `avro:"url" json:"url"`
	Attempt         int32      `avro:"attempt" json:"attempt"`
	Replay          bool       `avro:"replay" json:"replay"`
	StartedAt       time.Time  `avro:"started_at" json:"started_at"`
	DurationMS      int64      `avro:"duration_ms" json:"duration_ms"`
	StatusCode      int32      `avro:"status_code" json:"status_code"`
	Outcome         string     `avro:"outcome" json:"outcome"`
	Error           string     `avro:"error" json:"error"`
	ResponseSnippet string     `avro:"response_snippet" json:"response_snippet"`
	RequestBytes    int64      `avro:"request_bytes" json:"request_bytes"`
	ResponseBytes   int64      `avro:"response_bytes" json:"response_bytes"`
	NextAttemptAt   *time.Time `avro:"next_attempt_at" json:"next_attempt_at"`
	TraceID         string     `avro:"trace_id" json:"trace_id"`
	// DeliveryCreatedAt is the delivery's CreatedAt; nil in records
	// written before DeliveryAttempt v2.
	DeliveryCreatedAt *time.Time `avro:"delivery_created_at" json:"delivery_created_at"`
	// RequestHeaders are the headers as sent, credentials redacted.
	RequestHeaders map[string][]string `avro:"request_headers" json:"request_headers"`
	// RequestBody is the body sent when it is not the delivery's payload
	// (a batch's array, on one attempt of the batch); nil otherwise.
	RequestBody []byte `avro:"request_body" json:"request_body"`
	// RequestBodySHA256 names a body that is not the delivery's payload
	// (every attempt of a batch); nil otherwise.
	RequestBodySHA256 []byte              `avro:"request_body_sha256" json:"request_body_sha256"`
	ResponseHeaders   map[string][]string `avro:"response_headers" json:"response_headers"`
	// ResponseBody is the first MaxResponseBody bytes of the answer.
	ResponseBody      []byte `avro:"response_body" json:"response_body"`
	ResponseTruncated bool   `avro:"response_truncated" json:"response_truncated"`
}

// MaxResponseBody is how much of an answer's body a DeliveryAttempt
// keeps: enough for any error message an endpoint sends, small enough
// that an endpoint answering megabytes cannot bloat the delivery log.
const MaxResponseBody = 4096

// EventType is one event type of a tenant's catalog
// (hookline.event-types), with an optional JSON Schema of its data.
type EventType struct {
	Tenant      string    `avro:"tenant" json:"tenant"`
	Name        string    `avro:"name" json:"name"`
	Description string    `avro:"description" json:"description"`
	Schema      *string   `avro:"schema" json:"schema"` // JSON Schema as JSON, or nil
	Validate    bool      `avro:"validate" json:"validate"`
	CreatedAt   time.Time `avro:"created_at" json:"created_at"`
	UpdatedAt   time.Time `avro:"updated_at" json:"updated_at"`
}

// Key is the Kafka key of an event type: tenant/name. Names have no
// slash, so the last one separates them.
func (e *EventType) Key() string { return e.Tenant + "/" + e.Name }

// Notification is one alert email about a subscription's endpoint, written
// to hookline.notifications once every recipient was handled.
type Notification struct {
	ID             string                  `avro:"id" json:"id"`
	Tenant         string                  `avro:"tenant" json:"tenant"`
	SubscriptionID string                  `avro:"subscription_id" json:"subscription_id"`
	Kind           string                  `avro:"kind" json:"kind"`
	EventIDs       []string                `avro:"event_ids" json:"event_ids"`
	Subject        string                  `avro:"subject" json:"subject"`
	Recipients     []NotificationRecipient `avro:"recipients" json:"recipients"`
	Attempts       int32                   `avro:"attempts" json:"attempts"`
	QueuedAt       time.Time               `avro:"queued_at" json:"queued_at"`
	FinishedAt     time.Time               `avro:"finished_at" json:"finished_at"`
}

// NotificationRecipient is what became of one recipient of a Notification.
type NotificationRecipient struct {
	Address string `avro:"address" json:"address"`
	Outcome string `avro:"outcome" json:"outcome"` // one of the Outcome* below
	Error   string `avro:"error" json:"error"`
}

// Outcomes of a notification for one recipient.
const (
	OutcomeSent       = "sent"
	OutcomeLogged     = "logged" // no SMTP server configured: written to the log
	OutcomeFailed     = "failed"
	OutcomeSuppressed = "suppressed"
)

// Codecs holds one wire-format codec per record type.
type Codecs struct {
	Registry     *avro.Registry
	Event        *avro.Codec[Event]
	Subscription *avro.Codec[Subscription]
	Status       *avro.Codec[EndpointStatus]
	Delivery     *avro.Codec[Delivery]
	Attempt      *avro.Codec[DeliveryAttempt]
	EventType    *avro.Codec[EventType]
	Notification *avro.Codec[Notification]
}

// NewCodecs builds the codecs from the registry's schemas.
func NewCodecs(reg *avro.Registry) (*Codecs, error) {
	c := &Codecs{Registry: reg}
	var err error
	if c.Event, err = avro.NewCodec[Event](reg, EventName); err != nil {
		return nil, err
	}
	if c.Subscription, err = avro.NewCodec[Subscription](reg, SubscriptionName); err != nil {
		return nil, err
	}
	if c.Status, err = avro.NewCodec[EndpointStatus](reg, EndpointStatusName); err != nil {
		return nil, err
	}
	if c.Delivery, err = avro.NewCodec[Delivery](reg, DeliveryName); err != nil {
		return nil, err
	}
	if c.Attempt, err = avro.NewCodec[DeliveryAttempt](reg, DeliveryAttemptName); err != nil {
		return nil, err
	}
	if c.EventType, err = avro.NewCodec[EventType](reg, EventTypeName); err != nil {
		return nil, err
	}
	if c.Notification, err = avro.NewCodec[Notification](reg, NotificationName); err != nil {
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
