package pglogstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookline/hookline/pkg/logstore"
)

// writeTries bounds the retries of a batch that lost a deadlock or found
// a partition missing; each retry starts a new transaction.
const writeTries = 4

// Write stores a batch in one transaction. Every statement is one
// INSERT ... SELECT FROM unnest(arrays): one round trip and one plan per
// table, whatever the batch size.
func (s *Store) Write(ctx context.Context, b logstore.Batch) (logstore.WriteResult, error) {
	if s.readOnly {
		return logstore.WriteResult{}, errReadOnly
	}
	b, err := b.Prepare()
	if err != nil {
		return logstore.WriteResult{}, err
	}
	w := s.plan(b)
	for try := 1; ; try++ {
		if err := s.ensure(ctx, w.days); err != nil {
			return logstore.WriteResult{}, err
		}
		res, err := w.exec(ctx, s)
		if err == nil {
			return res, nil
		}
		code, _ := sqlState(err)
		switch {
		case try >= writeTries:
		case code == "40P01", code == "40001": // deadlock, serialization failure
			continue
		case code == "23514" && strings.Contains(err.Error(), "no partition"):
			// Another instance dropped or never made a partition this one
			// thought was there: look again.
			s.forget()
			continue
		}
		return logstore.WriteResult{}, classify(fmt.Errorf("write batch: %w", err))
	}
}

// write is a prepared batch cut into the rows of each table.
type write struct {
	events     []logstore.Event
	deliveries []logstore.Delivery // folded: one row per delivery
	attempts   []logstore.Attempt
	bodies     []body
	days       map[string][]time.Time // partitions needed, per table
	expired    int
}

type body struct {
	hash []byte
	day  time.Time
	data []byte
}

// hashOf names a body (logstore.BodyHash).
func hashOf(b []byte) []byte { return logstore.BodyHash(b) }

func (s *Store) plan(b logstore.Batch) *write {
	// A row whose day is gone or about to go by retention is not stored:
	// it would be dropped with its day, and that day's partition may
	// already be gone.
	horizon := dayOf(s.now().Add(-s.retention))
	w := &write{days: map[string][]time.Time{}}
	fresh := func(t time.Time) bool {
		if t.Before(horizon) {
			w.expired++
			return false
		}
		return true
	}
	for _, e := range b.Events {
		if fresh(e.ReceivedAt) {
			w.events = append(w.events, e)
		}
	}
	var deliveries []logstore.Delivery
	for _, d := range b.Deliveries {
		if fresh(d.CreatedAt) {
			deliveries = append(deliveries, d)
		}
	}
	for _, a := range b.Attempts {
		if fresh(a.StartedAt) {
			w.attempts = append(w.attempts, a)
		}
	}
	// An attempt outliving its delivery's day at the retention edge is
	// stored; the state of a delivery already gone is not.
	for _, d := range logstore.Fold(logstore.Batch{Deliveries: deliveries, Attempts: w.attempts}) {
		if !d.CreatedAt.Before(horizon) {
			w.deliveries = append(w.deliveries, d)
		}
	}
	seen := map[string]bool{}
	addBody := func(data []byte, at time.Time) {
		if data == nil {
			return
		}
		b := body{hash: hashOf(data), day: dayOf(at), data: data}
		if k := string(b.hash) + b.day.String(); !seen[k] {
			seen[k] = true
			w.bodies = append(w.bodies, b)
		}
	}
	need := func(table string, t time.Time) {
		d := dayOf(t)
		if !slices.ContainsFunc(w.days[table], d.Equal) {
			w.days[table] = append(w.days[table], d)
		}
	}
	for _, e := range w.events {
		need("events", e.ReceivedAt)
	}
	for _, d := range w.deliveries {
		need("deliveries", d.CreatedAt)
		addBody(d.Payload, d.CreatedAt)
	}
	for _, a := range w.attempts {
		need("attempts", a.StartedAt)
		addBody(a.RequestBody, a.StartedAt)
	}
	for _, b := range w.bodies {
		need("bodies", b.day)
	}
	// One order for every writer, so that two batches holding the same
	// rows take their locks in the same order and cannot deadlock.
	slices.SortFunc(w.bodies, func(x, y body) int { return cmp.Or(bytes.Compare(x.hash, y.hash), x.day.Compare(y.day)) })
	slices.SortFunc(w.events, func(x, y logstore.Event) int {
		return cmp.Or(cmp.Compare(x.Tenant, y.Tenant), cmp.Compare(x.ID, y.ID), x.ReceivedAt.Compare(y.ReceivedAt))
	})
	slices.SortFunc(w.attempts, func(x, y logstore.Attempt) int {
		return cmp.Or(cmp.Compare(x.DeliveryID, y.DeliveryID), cmp.Compare(x.Number, y.Number), x.StartedAt.Compare(y.StartedAt))
	})
	return w
}

func (w *write) exec(ctx context.Context, s *Store) (logstore.WriteResult, error) {
	res := logstore.WriteResult{Expired: w.expired}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(w.bodies) > 0 {
			if _, err := tx.Exec(ctx, insertBodies, w.bodyArgs()...); err != nil {
				return fmt.Errorf("bodies: %w", err)
			}
		}
		if len(w.events) > 0 {
			tag, err := tx.Exec(ctx, insertEvents, w.eventArgs()...)
			if err != nil {
				return fmt.Errorf("events: %w", err)
			}
			res.Events = int(tag.RowsAffected())
		}
		if len(w.deliveries) > 0 {
			tag, err := tx.Exec(ctx, upsertDeliveries, w.deliveryArgs()...)
			if err != nil {
				return fmt.Errorf("deliveries: %w", err)
			}
			res.Deliveries = int(tag.RowsAffected())
		}
		if len(w.attempts) > 0 {
			args, err := w.attemptArgs()
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, insertAttempts, args...)
			if err != nil {
				return fmt.Errorf("attempts: %w", err)
			}
			res.Attempts = int(tag.RowsAffected())
		}
		return nil
	})
	return res, err
}

const insertBodies = `
INSERT INTO bodies (hash, day, body)
SELECT * FROM unnest($1::bytea[], $2::date[], $3::bytea[])
ON CONFLICT DO NOTHING`

func (w *write) bodyArgs() []any {
	n := len(w.bodies)
	hashes, days, data := make([][]byte, n), make([]pgtype.Date, n), make([][]byte, n)
	for i, b := range w.bodies {
		hashes[i], days[i], data[i] = b.hash, pgtype.Date{Time: b.day, Valid: true}, b.data
	}
	return []any{hashes, days, data}
}

const insertEvents = `
INSERT INTO events (tenant, id, received_at, type, subject, source, occurred_at, data, changed, previous)
SELECT u.tenant, u.id, u.received_at, u.type, u.subject, u.source, u.occurred_at, u.data, u.changed::jsonb, u.previous
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
            $7::timestamptz[], $8::text[], $9::text[], $10::text[])
     AS u(tenant, id, received_at, type, subject, source, occurred_at, data, changed, previous)
ON CONFLICT DO NOTHING`

func (w *write) eventArgs() []any {
	n := len(w.events)
	tenant, id, typ, subject, source, data := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	received, occurred := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	changed, previous := make([]pgtype.Text, n), make([]pgtype.Text, n)
	for i, e := range w.events {
		tenant[i], id[i], typ[i], subject[i], source[i], data[i] = e.Tenant, e.ID, e.Type, e.Subject, e.Source, string(e.Data)
		received[i], occurred[i] = ts(e.ReceivedAt), ts(e.OccurredAt)
		if len(e.Changed) > 0 {
			raw, _ := json.Marshal(e.Changed) // strings always marshal
			changed[i] = pgtype.Text{String: string(raw), Valid: true}
		}
		if e.Previous != nil {
			previous[i] = pgtype.Text{String: string(e.Previous), Valid: true}
		}
	}
	return []any{tenant, id, received, typ, subject, source, occurred, data, changed, previous}
}

// ahead is logstore.Ahead in SQL: the incoming state version (EXCLUDED)
// is greater than the stored one (d).
const ahead = `(COALESCE(EXCLUDED.updated_at, '-infinity'), EXCLUDED.state, EXCLUDED.attempts)
             > (COALESCE(d.updated_at, '-infinity'), d.state, d.attempts)`

// upsertDeliveries inserts each folded delivery row, or completes the
// stored one: the payload and event time once known, the latest attempt
// time, and the state columns together when the incoming version is
// ahead. A row that changes
// nothing is not written at all (the WHERE), so a replayed batch costs no
// dead tuples.
var upsertDeliveries = `
INSERT INTO deliveries AS d (tenant, id, created_at, subscription_id, event_id, event_type, url, payload_hash,
                             event_time, state, attempts, last_attempt_at, last_status, last_error, next_attempt_at,
                             updated_at, route)
SELECT u.tenant, u.id, u.created_at, u.subscription_id, u.event_id, u.event_type, u.url, u.payload_hash,
       u.event_time, u.state, u.attempts, u.last_attempt_at, u.last_status, u.last_error, u.next_attempt_at,
       u.updated_at, u.route::jsonb
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::bytea[], $9::timestamptz[], $10::int2[], $11::int4[], $12::timestamptz[], $13::int2[],
            $14::text[], $15::timestamptz[], $16::timestamptz[], $17::text[])
     AS u(tenant, id, created_at, subscription_id, event_id, event_type, url, payload_hash,
          event_time, state, attempts, last_attempt_at, last_status, last_error, next_attempt_at,
          updated_at, route)
ON CONFLICT (id, created_at) DO UPDATE SET
    payload_hash    = COALESCE(d.payload_hash, EXCLUDED.payload_hash),
    route           = CASE WHEN d.payload_hash IS NULL THEN EXCLUDED.route ELSE d.route END,
    event_time      = COALESCE(d.event_time, EXCLUDED.event_time),
    state           = CASE WHEN ` + ahead + ` THEN EXCLUDED.state ELSE d.state END,
    updated_at      = CASE WHEN ` + ahead + ` THEN EXCLUDED.updated_at ELSE d.updated_at END,
    attempts        = CASE WHEN ` + ahead + ` THEN EXCLUDED.attempts ELSE d.attempts END,
    last_attempt_at = GREATEST(d.last_attempt_at, EXCLUDED.last_attempt_at),
    last_status     = CASE WHEN ` + ahead + ` THEN EXCLUDED.last_status ELSE d.last_status END,
    last_error      = CASE WHEN ` + ahead + ` THEN EXCLUDED.last_error ELSE d.last_error END,
    next_attempt_at = CASE WHEN ` + ahead + ` THEN EXCLUDED.next_attempt_at ELSE d.next_attempt_at END
WHERE (d.payload_hash IS NULL AND EXCLUDED.payload_hash IS NOT NULL)
   OR (d.event_time IS NULL AND EXCLUDED.event_time IS NOT NULL)
   OR EXCLUDED.last_attempt_at > COALESCE(d.last_attempt_at, '-infinity')
   OR ` + ahead

func (w *write) deliveryArgs() []any {
	n := len(w.deliveries)
	tenant, id, sub, event, typ, url, lastErr := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	created, eventTime, lastAt, nextAt, updated := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	payload := make([][]byte, n)
	route := make([]pgtype.Text, n)
	state, lastStatus := make([]int16, n), make([]int16, n)
	attempts := make([]int32, n)
	for i, d := range w.deliveries {
		tenant[i], id[i], sub[i], event[i], typ[i], url[i], lastErr[i] = d.Tenant, d.ID, d.SubscriptionID, d.EventID, d.EventType, d.URL, d.LastError
		created[i], eventTime[i], lastAt[i], nextAt[i], updated[i] = ts(d.CreatedAt), ts(d.EventTime), ts(d.LastAttemptAt), ts(d.NextAttemptAt), ts(d.UpdatedAt)
		if d.Payload != nil {
			payload[i] = hashOf(d.Payload)
		}
		if d.Route != nil {
			raw, _ := json.Marshal(d.Route) // strings only: cannot fail
			route[i] = pgtype.Text{String: string(raw), Valid: true}
		}
		state[i], lastStatus[i], attempts[i] = int16(d.State.Rank()), status16(d.LastStatus), d.Attempts
	}
	return []any{tenant, id, created, sub, event, typ, url, payload, eventTime, state, attempts, lastAt, lastStatus, lastErr, nextAt, updated, route}
}

const insertAttempts = `
INSERT INTO attempts (tenant, delivery_id, attempt, started_at, delivery_created_at, subscription_id, event_id,
                      event_type, url, outcome, duration_ms, request_headers, body_hash, response_status,
                      response_headers, response_body, response_truncated, error, next_attempt_at, replay, trace_id)
SELECT u.tenant, u.delivery_id, u.attempt, u.started_at, u.delivery_created_at, u.subscription_id, u.event_id,
       u.event_type, u.url, u.outcome, u.duration_ms, u.request_headers::jsonb, u.body_hash, u.response_status,
       u.response_headers::jsonb, u.response_body, u.response_truncated, u.error, u.next_attempt_at, u.replay, u.trace_id
FROM unnest($1::text[], $2::text[], $3::int4[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::int2[], $11::int4[], $12::text[], $13::bytea[], $14::int2[],
            $15::text[], $16::bytea[], $17::bool[], $18::text[], $19::timestamptz[], $20::bool[], $21::text[])
     AS u(tenant, delivery_id, attempt, started_at, delivery_created_at, subscription_id, event_id,
          event_type, url, outcome, duration_ms, request_headers, body_hash, response_status,
          response_headers, response_body, response_truncated, error, next_attempt_at, replay, trace_id)
ON CONFLICT DO NOTHING`

func (w *write) attemptArgs() ([]any, error) {
	n := len(w.attempts)
	tenant, delivery, sub, event, typ, url, errText, trace := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	number, duration := make([]int32, n), make([]int32, n)
	started, created, nextAt := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	outcome, status := make([]int16, n), make([]int16, n)
	reqHeaders, respHeaders := make([]pgtype.Text, n), make([]pgtype.Text, n)
	bodyHash, respBody := make([][]byte, n), make([][]byte, n)
	truncated, replay := make([]bool, n), make([]bool, n)
	for i, a := range w.attempts {
		tenant[i], delivery[i], sub[i], event[i], typ[i], url[i], errText[i], trace[i] = a.Tenant, a.DeliveryID, a.SubscriptionID, a.EventID, a.EventType, a.URL, a.Error, a.TraceID
		number[i], duration[i] = a.Number, int32(min(a.DurationMS, 1<<31-1))
		started[i], created[i], nextAt[i] = ts(a.StartedAt), ts(a.DeliveryCreatedAt), ts(a.NextAttemptAt)
		outcome[i], status[i] = int16(a.Outcome.Rank()), status16(a.ResponseStatus)
		var err error
		if reqHeaders[i], err = headersJSON(a.RequestHeaders); err != nil {
			return nil, err
		}
		if respHeaders[i], err = headersJSON(a.ResponseHeaders); err != nil {
			return nil, err
		}
		switch {
		case a.RequestBody != nil:
			bodyHash[i] = hashOf(a.RequestBody)
		case a.RequestBodyHash != nil:
			bodyHash[i] = a.RequestBodyHash
		}
		respBody[i], truncated[i], replay[i] = a.ResponseBody, a.ResponseTruncated, a.Replay
	}
	return []any{tenant, delivery, number, started, created, sub, event, typ, url, outcome, duration, reqHeaders, bodyHash, status, respHeaders, respBody, truncated, errText, nextAt, replay, trace}, nil
}

func headersJSON(h map[string][]string) (pgtype.Text, error) {
	if h == nil {
		return pgtype.Text{}, nil
	}
	raw, err := json.Marshal(h)
	if err != nil {
		return pgtype.Text{}, fmt.Errorf("headers: %w", err)
	}
	return pgtype.Text{String: string(raw), Valid: true}, nil
}

// ts is t as a nullable timestamptz: the zero time is NULL.
func ts(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// status16 fits an HTTP status into a smallint; anything outside 0..999
// is not an HTTP status and is stored as 0.
func status16(s int32) int16 {
	if s < 0 || s > 999 {
		return 0
	}
	return int16(s)
}

// sqlState is the SQLSTATE of a server's error.
func sqlState(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code, true
	}
	return "", false
}
