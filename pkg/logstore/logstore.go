// Package logstore is Hookline's delivery history: every event as received,
// every delivery with its current state and every HTTP attempt with what
// was sent and what came back, kept for a retention period and queried
// per tenant with cursor pages.
//
// The history is a materialized view of Kafka (hookline.events,
// hookline.deliveries, hookline.dlq and hookline.delivery-log): the logs
// service writes it in batches, at least once, so every write is
// idempotent, and the order in which records of different topics arrive
// does not matter (see Fold). The query API reads it.
//
// Store is the contract; pglogstore is the PostgreSQL driver and
// storetest the conformance suite every driver passes.
package logstore

import (
	"context"
	"errors"
	"time"
)

// Store is a delivery-history store: what the logs service writes and
// what the query API reads.
type Store interface {
	Writer
	Reader
	// Close releases the store's connections.
	Close()
}

// Writer is the logs service's side of a store.
type Writer interface {
	// Write stores a batch atomically: all of it or, on error, none.
	// Writing the same records again stores nothing new, and a delivery's
	// state only moves forward (Fold), whatever the order of the batches.
	// Rows older than the retention period are not stored (they would be
	// dropped at once) and are counted in WriteResult.Expired.
	Write(ctx context.Context, b Batch) (WriteResult, error)
	// Maintain prepares the time partitions of the coming days and drops
	// those older than the retention period. The logs service calls it at
	// start and then periodically; it is safe to call from several
	// instances at once.
	Maintain(ctx context.Context) error
}

// Reader is the query API's side of a store. Every call is scoped to one
// tenant: another tenant's ids are not found, and never cost more to look
// up than one's own.
type Reader interface {
	// ListEvents pages through the tenant's events, newest first.
	ListEvents(ctx context.Context, tenant string, q EventQuery) (Page[Event], error)
	// GetEvent is the event with that id (the latest received, should a
	// producer have sent one id twice more than a day apart).
	GetEvent(ctx context.Context, tenant, id string) (Event, error)
	// ListDeliveries pages through deliveries, newest first.
	ListDeliveries(ctx context.Context, tenant string, q DeliveryQuery) (Page[Delivery], error)
	// GetDelivery is one delivery with its current state; its attempts
	// come from ListAttempts with DeliveryID.
	GetDelivery(ctx context.Context, tenant, id string) (Delivery, error)
	// ListAttempts pages through attempts, newest first.
	ListAttempts(ctx context.Context, tenant string, q AttemptQuery) (Page[Attempt], error)
	// Stats counts a subscription's attempts by outcome in a window, with
	// latency percentiles.
	Stats(ctx context.Context, tenant string, q StatsQuery) (Stats, error)
	// Overview sums up the tenant's attempts in a window: counts and
	// latency in all, per bucket of time and per subscription, for the
	// console's overview. It reads every attempt of the window once.
	Overview(ctx context.Context, tenant string, q OverviewQuery) (Overview, error)
}

// Errors a caller decides on. Drivers wrap them, so test with errors.Is.
var (
	// ErrNotFound: no such id for this tenant (or expired).
	ErrNotFound = errors.New("logstore: not found")
	// ErrInvalid: a query or a record is malformed; the error is a
	// *QueryError or *RecordError naming what is wrong.
	ErrInvalid = errors.New("logstore: invalid")
	// ErrUnavailable: the database cannot be reached or is shutting down;
	// the caller retries later (the API answers 503 with Retry-After,
	// never an empty list).
	ErrUnavailable = errors.New("logstore: unavailable")
)

// Defaults of the store's configuration.
const (
	// DefaultRetention is how long history is kept: 30 days, the
	// delivery-log topic's own retention and what webhook products offer.
	DefaultRetention = 720 * time.Hour
	// MaxResponseBody bounds the response body kept per attempt: enough
	// for any error message an endpoint sends, small enough that a
	// receiver answering megabytes cannot fill the store.
	MaxResponseBody = 4096
)
