package logstore

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Page sizes.
const (
	DefaultLimit = 50
	// MaxLimit bounds a page, as for the subscriptions list.
	MaxLimit = 250
)

// Page is one page of a list, newest first. Next is the cursor of the
// page after it; empty on the last page.
type Page[T any] struct {
	Items []T
	Next  string
}

// The time window of a query: Since inclusive, Until exclusive; a zero
// bound is open.

// EventQuery filters ListEvents (by received_at).
type EventQuery struct {
	Type    string // exact event type
	Subject string
	Since   time.Time
	Until   time.Time
	Limit   int    // 0: DefaultLimit
	Cursor  string // Next of the previous page
}

// DeliveryQuery filters ListDeliveries (by created_at).
type DeliveryQuery struct {
	SubscriptionID string
	EventID        string
	Status         State // the current state; "" for any
	Since          time.Time
	Until          time.Time
	Limit          int
	Cursor         string
	// WithPayload fills Payload, which a list view leaves out; a caller
	// sending the deliveries again (recover) asks for it.
	WithPayload bool
}

// AttemptQuery filters ListAttempts (by started_at). SubscriptionID or
// DeliveryID is required: attempts are listed per webhook or per delivery.
type AttemptQuery struct {
	SubscriptionID string
	DeliveryID     string
	Status         State // the attempt's outcome; "" for any
	Since          time.Time
	Until          time.Time
	Limit          int
	Cursor         string
	// WithBody fills RequestBody, which may be large; a list view leaves
	// it out and fetches it for the attempt a user opens.
	WithBody bool
}

// StatsQuery selects the attempts Stats counts; all fields are required.
type StatsQuery struct {
	SubscriptionID string
	Since          time.Time
	Until          time.Time
}

// OverviewQuery selects the attempts Overview sums up: a tenant's, in a
// window (both bounds required), in buckets of Bucket (a whole number of
// seconds, at least one; the first bucket starts at Since).
type OverviewQuery struct {
	// SubscriptionIDs, when not nil, restricts the overview to those
	// subscriptions (a portal session limited to some).
	SubscriptionIDs []string
	Since           time.Time
	Until           time.Time
	Bucket          time.Duration
}

// MaxOverviewBuckets bounds the series of an overview, so that a wide
// window with a narrow bucket cannot make an answer of millions of rows.
const MaxOverviewBuckets = 1440

// Check validates q.
func (q OverviewQuery) Check() error {
	switch {
	case q.Since.IsZero():
		return &QueryError{"since", "is required"}
	case q.Until.IsZero():
		return &QueryError{"until", "is required"}
	case q.Bucket < time.Second || q.Bucket%time.Second != 0:
		return &QueryError{"bucket", "must be a whole number of seconds"}
	}
	if err := checkWindow(q.Since, q.Until); err != nil {
		return err
	}
	if q.Until.Sub(q.Since)/q.Bucket > MaxOverviewBuckets {
		return &QueryError{"bucket", fmt.Sprintf("makes more than %d buckets of the window", MaxOverviewBuckets)}
	}
	return nil
}

// QueryError is a query a store refuses; Field is the query parameter's
// API name (limit, cursor, status, since, until, subscription_id). It
// wraps ErrInvalid.
type QueryError struct {
	Field  string
	Reason string
}

func (e *QueryError) Error() string { return fmt.Sprintf("logstore: %s %s", e.Field, e.Reason) }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *QueryError) Unwrap() error { return ErrInvalid }

// Check validates q and returns its limit and cursor position.
func (q EventQuery) Check() (int, *Cursor, error) {
	if err := checkWindow(q.Since, q.Until); err != nil {
		return 0, nil, err
	}
	return checkPage(q.Limit, q.Cursor, cursorEvents)
}

// Check validates q and returns its limit and cursor position.
func (q DeliveryQuery) Check() (int, *Cursor, error) {
	if q.Status != "" && !q.Status.Valid() {
		return 0, nil, &QueryError{"status", "must be one of pending, retrying, failed, delivered"}
	}
	if err := checkWindow(q.Since, q.Until); err != nil {
		return 0, nil, err
	}
	return checkPage(q.Limit, q.Cursor, cursorDeliveries)
}

// Check validates q and returns its limit and cursor position.
func (q AttemptQuery) Check() (int, *Cursor, error) {
	if q.SubscriptionID == "" && q.DeliveryID == "" {
		return 0, nil, &QueryError{"subscription_id", "or delivery_id is required"}
	}
	if q.Status != "" && !q.Status.IsOutcome() {
		return 0, nil, &QueryError{"status", "must be one of retrying, failed, delivered"}
	}
	if err := checkWindow(q.Since, q.Until); err != nil {
		return 0, nil, err
	}
	return checkPage(q.Limit, q.Cursor, cursorAttempts)
}

// Check validates q.
func (q StatsQuery) Check() error {
	switch {
	case q.SubscriptionID == "":
		return &QueryError{"subscription_id", "is required"}
	case q.Since.IsZero():
		return &QueryError{"since", "is required"}
	case q.Until.IsZero():
		return &QueryError{"until", "is required"}
	}
	return checkWindow(q.Since, q.Until)
}

func checkWindow(since, until time.Time) error {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return &QueryError{"until", "must be after since"}
	}
	return nil
}

func checkPage(limit int, cursor string, kind byte) (int, *Cursor, error) {
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 1 || limit > MaxLimit:
		return 0, nil, &QueryError{"limit", fmt.Sprintf("must be from 1 to %d", MaxLimit)}
	}
	if cursor == "" {
		return limit, nil, nil
	}
	c, err := decodeCursor(kind, cursor)
	if err != nil {
		return 0, nil, &QueryError{"cursor", "is not a cursor from a previous page's next_cursor"}
	}
	return limit, &c, nil
}

// Cursor is a position in a list, newest first: the sort key of the last
// item of the previous page. A page holds what sorts strictly after it, so
// rows written meanwhile never shift a page, and a query costs the same on
// page 1000 as on page 1 (a keyset, not an offset).
type Cursor struct {
	At time.Time // the list's time: received_at, created_at or started_at
	ID string    // event, delivery id
	N  int32     // attempt number (attempts only)
}

// The kinds of list a cursor belongs to, so that one list's cursor is
// refused by another.
const (
	cursorEvents     = 'e'
	cursorDeliveries = 'd'
	cursorAttempts   = 'a'
)

// EventCursor is the cursor after e.
func EventCursor(e Event) string {
	return encodeCursor(cursorEvents, Cursor{At: e.ReceivedAt, ID: e.ID})
}

// DeliveryCursor is the cursor after d.
func DeliveryCursor(d Delivery) string {
	return encodeCursor(cursorDeliveries, Cursor{At: d.CreatedAt, ID: d.ID})
}

// AttemptCursor is the cursor after a.
func AttemptCursor(a Attempt) string {
	return encodeCursor(cursorAttempts, Cursor{At: a.StartedAt, ID: a.DeliveryID, N: a.Number})
}

// encodeCursor: opaque to clients (base64url), versioned by its first
// byte, microseconds since the epoch as PostgreSQL keeps them.
func encodeCursor(kind byte, c Cursor) string {
	raw := string(kind) + "1." + strconv.FormatInt(c.At.UnixMicro(), 10) + "." + strconv.FormatInt(int64(c.N), 10) + "." + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(kind byte, s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, err
	}
	parts := strings.SplitN(string(raw), ".", 4)
	if len(parts) != 4 || parts[0] != string(kind)+"1" || parts[3] == "" {
		return Cursor{}, fmt.Errorf("malformed cursor")
	}
	us, err1 := strconv.ParseInt(parts[1], 10, 64)
	n, err2 := strconv.ParseInt(parts[2], 10, 32)
	if err1 != nil || err2 != nil {
		return Cursor{}, fmt.Errorf("malformed cursor")
	}
	return Cursor{At: time.UnixMicro(us).UTC(), ID: parts[3], N: int32(n)}, nil
}
