package logstore

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Event is an event as ingest received it (hookline.events).
type Event struct {
	Tenant     string
	ID         string
	Type       string
	Subject    string
	Source     string
	OccurredAt time.Time
	// ReceivedAt orders the tenant's events and places the event in time
	// (its partition, its retention).
	ReceivedAt time.Time
	Data       json.RawMessage // a JSON object, byte for byte as received
	Changed    []string
	Previous   json.RawMessage // a JSON object, or nil
}

// State is where a delivery stands. An attempt's outcome is the state it
// left its delivery in: retrying, failed or delivered.
type State string

// The states, in the order in which they win over each other at an equal
// attempt count (see Fold).
const (
	// StatePending: not attempted yet, or queued again by the retry
	// scheduler before the attempt that follows is recorded.
	StatePending State = "pending"
	// StateRetrying: the last attempt failed and another is scheduled.
	StateRetrying State = "retrying"
	// StateFailed: given up and dead-lettered (a permanent failure, the
	// attempts exhausted, or the subscription gone or disabled).
	StateFailed State = "failed"
	// StateDelivered: an attempt succeeded.
	StateDelivered State = "delivered"
)

// States lists every state, in rank order.
var States = []State{StatePending, StateRetrying, StateFailed, StateDelivered}

// Rank is the state's place in States; -1 for an unknown state.
func (s State) Rank() int { return slices.Index(States, s) }

// Valid reports whether s is one of States.
func (s State) Valid() bool { return s.Rank() >= 0 }

// IsOutcome reports whether s can be an attempt's outcome.
func (s State) IsOutcome() bool { return s == StateRetrying || s == StateFailed || s == StateDelivered }

// Delivery is one event owed to one subscription (hookline.deliveries),
// with its current state.
type Delivery struct {
	Tenant         string
	ID             string // the webhook-id, the same on every attempt
	SubscriptionID string
	EventID        string
	EventType      string
	URL            string
	// Payload is the shaped body of this delivery (one element of the
	// array when its subscription batches); nil while only its attempts
	// have been stored.
	Payload []byte
	// CreatedAt places the delivery in time (its partition): attempts name
	// their delivery by ID and CreatedAt.
	CreatedAt time.Time
	EventTime time.Time // zero when not known yet
	// Route is the subscription's route the delivery was matched to; nil
	// for the subscription's own URL (or while only its attempts are
	// stored). It is kept so that a redelivery from the history goes
	// where the subscription says now, as a retry would.
	Route *Route

	// The state, and what the attempt or record that set it said.
	State State
	// UpdatedAt is when the state became true: the start of the attempt
	// that set it, or the time of the record that did (its Kafka
	// timestamp: when the DLQ or a replay wrote it). States are kept in
	// the order of this time (Ahead); a record with a zero UpdatedAt adds
	// its fields but sets the state only where none is stored yet, as a
	// re-queue by the retry scheduler should, since the attempt before it
	// already said "retrying" and when the next one is due.
	UpdatedAt     time.Time
	Attempts      int32     // the number of the last attempt; a replay counts from 1 again
	LastAttemptAt time.Time // zero: none yet
	LastStatus    int32     // HTTP status of the last attempt; 0: none
	LastError     string
	NextAttemptAt time.Time // zero: none scheduled
}

// Route names a route of a subscription by the id of its condition, with
// the event's values of its URL's placeholders (record.RouteRef).
type Route struct {
	Condition string            `json:"condition"`
	Values    map[string]string `json:"values,omitempty"`
}

// Attempt is one HTTP attempt of one delivery (hookline.delivery-log). An
// attempt is identified by DeliveryID, Number and StartedAt: a replay of
// the same delivery record twice makes two attempts of one number.
type Attempt struct {
	Tenant            string
	DeliveryID        string
	DeliveryCreatedAt time.Time // the delivery's CreatedAt
	SubscriptionID    string
	EventID           string
	EventType         string
	Number            int32 // 1 for the first attempt
	StartedAt         time.Time
	DurationMS        int64
	URL               string
	// RequestHeaders are the headers as sent, credentials redacted
	// (RedactHeaders).
	RequestHeaders http.Header
	// RequestBody is the exact body sent: the delivery's payload, or the
	// whole JSON array when the request carried a batch. Stores keep each
	// distinct body once per day, however many attempts sent it. Nil when
	// the body is the delivery's payload, which the store has from the
	// delivery (readers get it filled in), or is named by RequestBodyHash.
	RequestBody []byte
	// RequestBodyHash names a body written with another attempt, by
	// BodyHash: the attempts of one batch request share one array, which
	// only one of them carries. Ignored when RequestBody is set.
	RequestBodyHash []byte
	// ResponseStatus is the HTTP status; 0 when none came (Error says why).
	ResponseStatus  int32
	ResponseHeaders http.Header
	// ResponseBody is the first MaxResponseBody bytes of the answer;
	// ResponseTruncated says whether there was more.
	ResponseBody      []byte
	ResponseTruncated bool
	Error             string // transport failure, timeout, refused address...
	Outcome           State  // retrying, failed or delivered
	NextAttemptAt     time.Time
	Replay            bool // a redelivery asked for through the API
	TraceID           string
}

// Batch is what one Write stores. Its parts may refer to each other or
// not: an attempt may come before or after its delivery.
type Batch struct {
	Events     []Event
	Deliveries []Delivery
	Attempts   []Attempt
}

// Len is the number of records in the batch.
func (b Batch) Len() int { return len(b.Events) + len(b.Deliveries) + len(b.Attempts) }

// WriteResult counts what a Write changed.
type WriteResult struct {
	Events     int // events stored (already stored ones not counted)
	Deliveries int // delivery rows created or moved forward
	Attempts   int // attempts stored
	Expired    int // records older than the retention period, not stored
}

// Stats are a subscription's attempts in a window.
type Stats struct {
	Attempts  int64
	Delivered int64
	Retrying  int64
	Failed    int64
	// Latency percentiles of every attempt's duration; zero when none.
	P50, P95, P99 time.Duration
}

// Overview sums up a tenant's attempts in a window: in all, per bucket of
// time and per subscription.
type Overview struct {
	Stats
	// Series has one entry per bucket holding attempts, oldest first;
	// buckets without any are left out.
	Series []Bucket
	// Subscriptions has one entry per subscription with attempts in the
	// window, in no particular order.
	Subscriptions []SubscriptionStats
}

// Bucket is the Stats of the attempts started in [Start, Start+bucket).
type Bucket struct {
	Start time.Time
	Stats
}

// SubscriptionStats is the Stats of one subscription's attempts.
type SubscriptionStats struct {
	SubscriptionID string
	Stats
}

// RecordError is a record a store refuses, naming the record and the
// field. It wraps ErrInvalid.
type RecordError struct {
	Kind   string // event, delivery or attempt
	ID     string
	Field  string
	Reason string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("logstore: %s %q: %s %s", e.Kind, e.ID, e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *RecordError) Unwrap() error { return ErrInvalid }

// Prepare checks a batch and returns the copy a driver stores: times in
// UTC truncated to microseconds (what PostgreSQL keeps, so that cursors
// compare exactly), request and response headers redacted, the response
// body bounded. Every driver calls it first, so that all store the same.
func (b Batch) Prepare() (Batch, error) {
	out := Batch{
		Events:     make([]Event, len(b.Events)),
		Deliveries: make([]Delivery, len(b.Deliveries)),
		Attempts:   make([]Attempt, len(b.Attempts)),
	}
	for i, e := range b.Events {
		if err := e.check(); err != nil {
			return Batch{}, err
		}
		e.OccurredAt, e.ReceivedAt = micros(e.OccurredAt), micros(e.ReceivedAt)
		out.Events[i] = e
	}
	for i, d := range b.Deliveries {
		if d.State == "" {
			d.State = StatePending
		}
		if err := d.check(); err != nil {
			return Batch{}, err
		}
		d.CreatedAt, d.EventTime = micros(d.CreatedAt), micros(d.EventTime)
		d.UpdatedAt, d.LastAttemptAt, d.NextAttemptAt = micros(d.UpdatedAt), micros(d.LastAttemptAt), micros(d.NextAttemptAt)
		out.Deliveries[i] = d
	}
	for i, a := range b.Attempts {
		if err := a.check(); err != nil {
			return Batch{}, err
		}
		a.DeliveryCreatedAt, a.StartedAt, a.NextAttemptAt = micros(a.DeliveryCreatedAt), micros(a.StartedAt), micros(a.NextAttemptAt)
		a.RequestHeaders = RedactHeaders(a.RequestHeaders)
		a.ResponseHeaders = RedactHeaders(a.ResponseHeaders)
		if a.RequestBody != nil {
			a.RequestBodyHash = nil
		}
		if len(a.ResponseBody) > MaxResponseBody {
			a.ResponseBody, a.ResponseTruncated = a.ResponseBody[:MaxResponseBody:MaxResponseBody], true
		}
		out.Attempts[i] = a
	}
	return out, nil
}

func micros(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

func (e Event) check() error {
	bad := func(field, reason string) error {
		return &RecordError{Kind: "event", ID: e.ID, Field: field, Reason: reason}
	}
	switch {
	case e.Tenant == "":
		return bad("tenant", "is empty")
	case e.ID == "":
		return bad("id", "is empty")
	case e.Type == "":
		return bad("type", "is empty")
	case e.ReceivedAt.IsZero():
		return bad("received_at", "is not set")
	case !json.Valid(e.Data):
		return bad("data", "is not JSON")
	case e.Previous != nil && !json.Valid(e.Previous):
		return bad("previous", "is not JSON")
	}
	return nil
}

func (d Delivery) check() error {
	bad := func(field, reason string) error {
		return &RecordError{Kind: "delivery", ID: d.ID, Field: field, Reason: reason}
	}
	switch {
	case d.Tenant == "":
		return bad("tenant", "is empty")
	case d.ID == "":
		return bad("id", "is empty")
	case d.SubscriptionID == "":
		return bad("subscription_id", "is empty")
	case d.EventID == "":
		return bad("event_id", "is empty")
	case d.CreatedAt.IsZero():
		return bad("created_at", "is not set")
	case !d.State.Valid():
		return bad("state", fmt.Sprintf("is %q, not one of pending, retrying, failed, delivered", d.State))
	case d.Attempts < 0:
		return bad("attempts", "is negative")
	}
	return nil
}

func (a Attempt) check() error {
	bad := func(field, reason string) error {
		return &RecordError{Kind: "attempt", ID: fmt.Sprintf("%s#%d", a.DeliveryID, a.Number), Field: field, Reason: reason}
	}
	switch {
	case a.Tenant == "":
		return bad("tenant", "is empty")
	case a.DeliveryID == "":
		return bad("delivery_id", "is empty")
	case a.DeliveryCreatedAt.IsZero():
		return bad("delivery_created_at", "is not set")
	case a.SubscriptionID == "":
		return bad("subscription_id", "is empty")
	case a.EventID == "":
		return bad("event_id", "is empty")
	case a.Number < 1:
		return bad("number", "is below 1")
	case a.StartedAt.IsZero():
		return bad("started_at", "is not set")
	case a.DurationMS < 0:
		return bad("duration_ms", "is negative")
	case !a.Outcome.IsOutcome():
		return bad("outcome", fmt.Sprintf("is %q, not one of retrying, failed, delivered", a.Outcome))
	case a.RequestBody == nil && a.RequestBodyHash != nil && len(a.RequestBodyHash) != BodyHashSize:
		return bad("request_body_hash", fmt.Sprintf("is %d bytes, not %d", len(a.RequestBodyHash), BodyHashSize))
	}
	return nil
}

// Ahead reports whether state version a wins over b: set later
// (UpdatedAt), or at the same time and of a higher rank (a DLQ record
// written as its attempt ended says "failed" over the attempt's
// "retrying"), or else by attempt number. Time comes first, not the
// attempt number, because a replay starts counting from 1 again. It is a
// total order on those fields, so the state a store keeps — the greatest
// version it has seen — does not depend on the order in which versions
// arrive, nor on duplicates.
func Ahead(a, b Delivery) bool {
	if !a.UpdatedAt.Equal(b.UpdatedAt) {
		return a.UpdatedAt.After(b.UpdatedAt)
	}
	if a.State != b.State {
		return a.State.Rank() > b.State.Rank()
	}
	return a.Attempts > b.Attempts
}

// Fold turns a prepared batch into one delivery row per delivery (by ID
// and CreatedAt), each at the greatest state version the batch holds: a
// delivery record contributes its own, each attempt the state it left its
// delivery in. A delivery the batch has only attempts of gets a row
// without payload, completed when its record comes. A driver upserts the
// rows, keeping for each the fields already known and the greater state
// (Ahead) and the latest attempt time, so that one delivery costs one row
// write per batch.
func Fold(b Batch) []Delivery {
	type key struct {
		id string
		at time.Time
	}
	rows := make(map[key]*Delivery, len(b.Deliveries)+len(b.Attempts))
	order := make([]key, 0, len(rows))
	merge := func(k key, d Delivery) {
		cur, ok := rows[k]
		if !ok {
			rows[k] = &d
			order = append(order, k)
			return
		}
		if cur.Payload == nil && d.Payload != nil {
			cur.Payload, cur.EventTime, cur.Route = d.Payload, d.EventTime, d.Route
		}
		if Ahead(d, *cur) {
			cur.State, cur.UpdatedAt, cur.Attempts = d.State, d.UpdatedAt, d.Attempts
			cur.LastStatus, cur.LastError, cur.NextAttemptAt = d.LastStatus, d.LastError, d.NextAttemptAt
		}
		// The last attempt's time is the latest seen, whichever version
		// set the state (a DLQ record has none of its own).
		if d.LastAttemptAt.After(cur.LastAttemptAt) {
			cur.LastAttemptAt = d.LastAttemptAt
		}
	}
	for _, d := range b.Deliveries {
		merge(key{d.ID, d.CreatedAt}, d)
	}
	for _, a := range b.Attempts {
		merge(key{a.DeliveryID, a.DeliveryCreatedAt}, a.deliveryState())
	}
	out := make([]Delivery, len(order))
	for i, k := range order {
		out[i] = *rows[k]
	}
	// One order for every writer, so that concurrent upserts of the same
	// rows lock them in the same order and cannot deadlock.
	slices.SortFunc(out, func(x, y Delivery) int {
		return cmp.Or(cmp.Compare(x.ID, y.ID), x.CreatedAt.Compare(y.CreatedAt))
	})
	return out
}

// deliveryState is the delivery as this attempt left it.
func (a Attempt) deliveryState() Delivery {
	return Delivery{
		Tenant: a.Tenant, ID: a.DeliveryID, SubscriptionID: a.SubscriptionID, EventID: a.EventID,
		EventType: a.EventType, URL: a.URL, CreatedAt: a.DeliveryCreatedAt,
		State: a.Outcome, UpdatedAt: a.StartedAt, Attempts: a.Number, LastAttemptAt: a.StartedAt,
		LastStatus: a.ResponseStatus, LastError: a.Error, NextAttemptAt: a.NextAttemptAt,
	}
}

// BodyHashSize is the size of a body's name (BodyHash).
const BodyHashSize = 16

// BodyHash names a body: the first 16 bytes of its SHA-256, as delivery
// ids are made, far from any chance collision at any volume a store holds.
func BodyHash(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:BodyHashSize]
}
