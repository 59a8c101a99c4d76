package pglogstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookline/hookline/pkg/logstore"
)

// where builds a WHERE clause with numbered arguments.
type where struct {
	conds []string
	args  []any
}

// and adds a condition; each %s in cond becomes the next argument.
func (w *where) and(cond string, vals ...any) {
	refs := make([]any, len(vals))
	for i, v := range vals {
		w.args = append(w.args, v)
		refs[i] = "$" + strconv.Itoa(len(w.args))
	}
	w.conds = append(w.conds, fmt.Sprintf(cond, refs...))
}

func (w *where) window(col string, since, until time.Time) {
	if !since.IsZero() {
		w.and(col+" >= %s", since)
	}
	if !until.IsZero() {
		w.and(col+" < %s", until)
	}
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// read runs a query under the store's QueryTimeout.
func (s *Store) read(ctx context.Context, sql string, args []any, scan func(pgx.Rows) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return classify(rows.Err())
}

// page trims the limit+1 rows a list query fetched to limit, and makes
// the next cursor when there were more.
func page[T any](items []T, limit int, cursor func(T) string) logstore.Page[T] {
	p := logstore.Page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.Next = cursor(p.Items[limit-1])
	}
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}

const eventColumns = `tenant, id, received_at, type, subject, source, occurred_at, data, changed, previous`

func scanEvent(rows pgx.Row) (logstore.Event, error) {
	var e logstore.Event
	var occurred pgtype.Timestamptz
	var data string
	var changed []byte
	var previous pgtype.Text
	if err := rows.Scan(&e.Tenant, &e.ID, &e.ReceivedAt, &e.Type, &e.Subject, &e.Source, &occurred, &data, &changed, &previous); err != nil {
		return e, err
	}
	e.ReceivedAt, e.OccurredAt, e.Data = e.ReceivedAt.UTC(), timeOf(occurred), json.RawMessage(data)
	if changed != nil {
		if err := json.Unmarshal(changed, &e.Changed); err != nil {
			return e, fmt.Errorf("event %s: changed: %w", e.ID, err)
		}
	}
	if previous.Valid {
		e.Previous = json.RawMessage(previous.String)
	}
	return e, nil
}

// ListEvents uses events_by_type or events_by_subject when filtered so,
// events_by_time otherwise: each reads limit+1 index entries from the
// cursor on, partitions newest first.
func (s *Store) ListEvents(ctx context.Context, tenant string, q logstore.EventQuery) (logstore.Page[logstore.Event], error) {
	sql, args, limit, err := eventsQuery(tenant, q)
	if err != nil {
		return logstore.Page[logstore.Event]{}, err
	}
	var out []logstore.Event
	err = s.read(ctx, sql, args, func(rows pgx.Rows) error {
		e, err := scanEvent(rows)
		out = append(out, e)
		return err
	})
	if err != nil {
		return logstore.Page[logstore.Event]{}, fmt.Errorf("list events: %w", err)
	}
	return page(out, limit, logstore.EventCursor), nil
}

func eventsQuery(tenant string, q logstore.EventQuery) (string, []any, int, error) {
	limit, cur, err := q.Check()
	if err != nil {
		return "", nil, 0, err
	}
	var w where
	w.and("tenant = %s", tenant)
	if q.Type != "" {
		w.and("type = %s", q.Type)
	}
	if q.Subject != "" {
		w.and("subject = %s", q.Subject)
	}
	w.window("received_at", q.Since, q.Until)
	if cur != nil {
		w.and("(received_at, id) < (%s, %s)", cur.At, cur.ID)
	}
	sql := "SELECT " + eventColumns + " FROM events WHERE " + w.String() +
		" ORDER BY received_at DESC, id DESC LIMIT " + strconv.Itoa(limit+1)
	return sql, w.args, limit, nil
}

const getEventSQL = "SELECT " + eventColumns + " FROM events WHERE tenant = $1 AND id = $2 ORDER BY received_at DESC LIMIT 1"

// GetEvent probes the primary key of each day's partition, newest first,
// and stops at the first hit.
func (s *Store) GetEvent(ctx context.Context, tenant, id string) (logstore.Event, error) {
	var out []logstore.Event
	err := s.read(ctx, getEventSQL, []any{tenant, id}, func(rows pgx.Rows) error {
		e, err := scanEvent(rows)
		out = append(out, e)
		return err
	})
	switch {
	case err != nil:
		return logstore.Event{}, fmt.Errorf("get event %s: %w", id, err)
	case len(out) == 0:
		return logstore.Event{}, fmt.Errorf("event %s: %w", id, logstore.ErrNotFound)
	}
	return out[0], nil
}

const deliveryColumns = `d.tenant, d.id, d.created_at, d.subscription_id, d.event_id, d.event_type, d.url, d.event_time,
	d.state, d.updated_at, d.attempts, d.last_attempt_at, d.last_status, d.last_error, d.next_attempt_at, d.route`

func scanDelivery(rows pgx.Row, extra ...any) (logstore.Delivery, error) {
	var d logstore.Delivery
	var eventTime, updatedAt, lastAt, nextAt pgtype.Timestamptz
	var state, status int16
	var route []byte
	dest := append([]any{&d.Tenant, &d.ID, &d.CreatedAt, &d.SubscriptionID, &d.EventID, &d.EventType, &d.URL, &eventTime,
		&state, &updatedAt, &d.Attempts, &lastAt, &status, &d.LastError, &nextAt, &route}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return d, err
	}
	if route != nil {
		d.Route = new(logstore.Route)
		if err := json.Unmarshal(route, d.Route); err != nil {
			return d, fmt.Errorf("delivery %s: route: %w", d.ID, err)
		}
	}
	d.CreatedAt, d.EventTime, d.UpdatedAt = d.CreatedAt.UTC(), timeOf(eventTime), timeOf(updatedAt)
	d.LastAttemptAt, d.NextAttemptAt = timeOf(lastAt), timeOf(nextAt)
	d.State, d.LastStatus = stateOf(state), int32(status)
	return d, nil
}

// ListDeliveries uses deliveries_by_event, deliveries_by_subscription or
// deliveries_by_time. The state is not indexed (its updates stay HOT), so
// a status filter reads the index until a page of matches is found:
// bounded by the time window given.
func (s *Store) ListDeliveries(ctx context.Context, tenant string, q logstore.DeliveryQuery) (logstore.Page[logstore.Delivery], error) {
	sql, args, limit, err := deliveriesQuery(tenant, q)
	if err != nil {
		return logstore.Page[logstore.Delivery]{}, err
	}
	var out []logstore.Delivery
	err = s.read(ctx, sql, args, func(rows pgx.Rows) error {
		var payload []byte
		d, err := scanDelivery(rows, &payload)
		d.Payload = payload
		out = append(out, d)
		return err
	})
	if err != nil {
		return logstore.Page[logstore.Delivery]{}, fmt.Errorf("list deliveries: %w", err)
	}
	return page(out, limit, logstore.DeliveryCursor), nil
}

func deliveriesQuery(tenant string, q logstore.DeliveryQuery) (string, []any, int, error) {
	limit, cur, err := q.Check()
	if err != nil {
		return "", nil, 0, err
	}
	var w where
	w.and("d.tenant = %s", tenant)
	if q.SubscriptionID != "" {
		w.and("d.subscription_id = %s", q.SubscriptionID)
	}
	if q.EventID != "" {
		w.and("d.event_id = %s", q.EventID)
	}
	if q.Status != "" {
		w.and("d.state = %s", int16(q.Status.Rank()))
	}
	w.window("d.created_at", q.Since, q.Until)
	if cur != nil {
		w.and("(d.created_at, d.id) < (%s, %s)", cur.At, cur.ID)
	}
	where := " FROM deliveries d WHERE " + w.String() + " ORDER BY d.created_at DESC, d.id DESC LIMIT " + strconv.Itoa(limit+1)
	if !q.WithPayload {
		return "SELECT " + deliveryColumns + ", NULL::bytea" + where, w.args, limit, nil
	}
	// The page first, then each row's payload: one probe of bodies'
	// primary key per delivery of the page.
	sql := "SELECT " + strings.ReplaceAll(deliveryColumns, "d.", "p.") + ", b.body FROM (SELECT " + deliveryColumns +
		", d.payload_hash" + where + ") p" +
		" LEFT JOIN bodies b ON b.hash = p.payload_hash AND b.day = (p.created_at AT TIME ZONE 'UTC')::date" +
		" ORDER BY p.created_at DESC, p.id DESC"
	return sql, w.args, limit, nil
}

const getDeliverySQL = `SELECT ` + deliveryColumns + `, b.body FROM
	(SELECT * FROM deliveries WHERE id = $2 AND tenant = $1 ORDER BY created_at DESC LIMIT 1) d
	LEFT JOIN bodies b ON b.hash = d.payload_hash AND b.day = (d.created_at AT TIME ZONE 'UTC')::date`

// GetDelivery probes the primary key (id first) of each day's partition,
// newest first, and joins the payload.
func (s *Store) GetDelivery(ctx context.Context, tenant, id string) (logstore.Delivery, error) {
	var out []logstore.Delivery
	err := s.read(ctx, getDeliverySQL, []any{tenant, id}, func(rows pgx.Rows) error {
		var payload []byte
		d, err := scanDelivery(rows, &payload)
		d.Payload = payload
		out = append(out, d)
		return err
	})
	switch {
	case err != nil:
		return logstore.Delivery{}, fmt.Errorf("get delivery %s: %w", id, err)
	case len(out) == 0:
		return logstore.Delivery{}, fmt.Errorf("delivery %s: %w", id, logstore.ErrNotFound)
	}
	return out[0], nil
}

const attemptColumns = `a.tenant, a.delivery_id, a.attempt, a.started_at, a.delivery_created_at, a.subscription_id,
	a.event_id, a.event_type, a.url, a.outcome, a.duration_ms, a.request_headers, a.response_status,
	a.response_headers, a.response_body, a.response_truncated, a.error, a.next_attempt_at, a.replay, a.trace_id`

// ListAttempts uses attempts_by_outcome with a status filter,
// attempts_by_subscription without, or the primary key for one delivery,
// to find the page's keys (an index-only scan); then it reads those rows
// and their bodies.
func (s *Store) ListAttempts(ctx context.Context, tenant string, q logstore.AttemptQuery) (logstore.Page[logstore.Attempt], error) {
	sql, args, limit, err := attemptsQuery(tenant, q)
	if err != nil {
		return logstore.Page[logstore.Attempt]{}, err
	}
	var out []logstore.Attempt
	err = s.read(ctx, sql, args, func(rows pgx.Rows) error {
		a, err := scanAttempt(rows)
		out = append(out, a)
		return err
	})
	if err != nil {
		return logstore.Page[logstore.Attempt]{}, fmt.Errorf("list attempts: %w", err)
	}
	return page(out, limit, logstore.AttemptCursor), nil
}

func attemptsQuery(tenant string, q logstore.AttemptQuery) (string, []any, int, error) {
	limit, cur, err := q.Check()
	if err != nil {
		return "", nil, 0, err
	}
	var w where
	w.and("tenant = %s", tenant)
	if q.SubscriptionID != "" {
		w.and("subscription_id = %s", q.SubscriptionID)
	}
	if q.DeliveryID != "" {
		w.and("delivery_id = %s", q.DeliveryID)
	}
	if q.Status != "" {
		w.and("outcome = %s", int16(q.Status.Rank()))
	}
	w.window("started_at", q.Since, q.Until)
	if cur != nil {
		w.and("(started_at, delivery_id, attempt) < (%s, %s, %s)", cur.At, cur.ID, cur.N)
	}
	// First the page's keys, from the index alone (every key column is in
	// it); then its rows, one primary-key probe each. However the planner
	// orders the partitions, only the page's rows are read from the heap.
	keys := "SELECT started_at, delivery_id, attempt FROM attempts WHERE " + w.String() +
		" ORDER BY started_at DESC, delivery_id DESC, attempt DESC LIMIT " + strconv.Itoa(limit+1)
	body, join := "NULL::bytea", ""
	if q.WithBody {
		// The body an attempt names, stored on its own day; or, when it
		// names none, its delivery's payload, stored on the delivery's day.
		body = "COALESCE(b.body, p.body)"
		join = " LEFT JOIN bodies b ON b.hash = a.body_hash AND b.day = (a.started_at AT TIME ZONE 'UTC')::date" +
			" LEFT JOIN LATERAL (SELECT pb.body FROM deliveries d JOIN bodies pb ON pb.hash = d.payload_hash" +
			" AND pb.day = (d.created_at AT TIME ZONE 'UTC')::date" +
			" WHERE a.body_hash IS NULL AND d.id = a.delivery_id AND d.created_at = a.delivery_created_at) p ON true"
	}
	sql := "SELECT " + attemptColumns + ", " + body + " FROM (" + keys + ") k" +
		" JOIN LATERAL (SELECT * FROM attempts x WHERE x.delivery_id = k.delivery_id AND x.attempt = k.attempt" +
		" AND x.started_at = k.started_at) a ON true" + join +
		" ORDER BY a.started_at DESC, a.delivery_id DESC, a.attempt DESC"
	return sql, w.args, limit, nil
}

func scanAttempt(rows pgx.Row) (logstore.Attempt, error) {
	var a logstore.Attempt
	var outcome, status int16
	var duration int32
	var reqHeaders, respHeaders []byte
	var nextAt pgtype.Timestamptz
	err := rows.Scan(&a.Tenant, &a.DeliveryID, &a.Number, &a.StartedAt, &a.DeliveryCreatedAt, &a.SubscriptionID,
		&a.EventID, &a.EventType, &a.URL, &outcome, &duration, &reqHeaders, &status,
		&respHeaders, &a.ResponseBody, &a.ResponseTruncated, &a.Error, &nextAt, &a.Replay, &a.TraceID, &a.RequestBody)
	if err != nil {
		return a, err
	}
	a.StartedAt, a.DeliveryCreatedAt, a.NextAttemptAt = a.StartedAt.UTC(), a.DeliveryCreatedAt.UTC(), timeOf(nextAt)
	a.Outcome, a.ResponseStatus, a.DurationMS = stateOf(outcome), int32(status), int64(duration)
	if reqHeaders != nil {
		if err := json.Unmarshal(reqHeaders, &a.RequestHeaders); err != nil {
			return a, fmt.Errorf("attempt %s#%d: request headers: %w", a.DeliveryID, a.Number, err)
		}
	}
	if respHeaders != nil {
		if err := json.Unmarshal(respHeaders, &a.ResponseHeaders); err != nil {
			return a, fmt.Errorf("attempt %s#%d: response headers: %w", a.DeliveryID, a.Number, err)
		}
	}
	return a, nil
}

const statsSQL = `SELECT count(*),
	count(*) FILTER (WHERE outcome = 3), count(*) FILTER (WHERE outcome = 1), count(*) FILTER (WHERE outcome = 2),
	percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)
	FROM attempts WHERE tenant = $1 AND subscription_id = $2 AND started_at >= $3 AND started_at < $4`

// Stats reads attempts_by_subscription alone (an index-only scan, as its
// INCLUDE holds outcome and duration): O(attempts in the window).
func (s *Store) Stats(ctx context.Context, tenant string, q logstore.StatsQuery) (logstore.Stats, error) {
	if err := q.Check(); err != nil {
		return logstore.Stats{}, err
	}
	var st logstore.Stats
	var pct []pgtype.Int4
	err := s.read(ctx, statsSQL, []any{tenant, q.SubscriptionID, q.Since, q.Until}, func(rows pgx.Rows) error {
		return rows.Scan(&st.Attempts, &st.Delivered, &st.Retrying, &st.Failed, &pct)
	})
	if err != nil {
		return logstore.Stats{}, fmt.Errorf("stats: %w", err)
	}
	st.P50, st.P95, st.P99 = percentiles(pct)
	return st, nil
}

// overviewSQL sums the window up three ways in one pass: in all, per
// bucket and per subscription (GROUPING says which row is which: 3, 1, 2).
const overviewSQL = `SELECT GROUPING(bucket, subscription_id), bucket, subscription_id, count(*),
	count(*) FILTER (WHERE outcome = 3), count(*) FILTER (WHERE outcome = 1), count(*) FILTER (WHERE outcome = 2),
	percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)
	FROM (SELECT date_bin($4::bigint * interval '1 second', started_at, $2) AS bucket, subscription_id, outcome, duration_ms
		FROM attempts WHERE tenant = $1 AND started_at >= $2 AND started_at < $3 AND ($5::text[] IS NULL OR subscription_id = ANY($5))) a
	GROUP BY GROUPING SETS ((), (bucket), (subscription_id))`

// Overview reads attempts_by_subscription alone, like Stats, but for every
// subscription of the tenant: the day partitions of the window are pruned,
// and within them PostgreSQL reads the tenant's index entries (an
// index-only scan): O(the tenant's attempts on the window's days).
func (s *Store) Overview(ctx context.Context, tenant string, q logstore.OverviewQuery) (logstore.Overview, error) {
	if err := q.Check(); err != nil {
		return logstore.Overview{}, err
	}
	var subs []string // nil: every subscription (SQL NULL)
	if q.SubscriptionIDs != nil {
		subs = append([]string{}, q.SubscriptionIDs...)
	}
	out := logstore.Overview{Series: []logstore.Bucket{}, Subscriptions: []logstore.SubscriptionStats{}}
	args := []any{tenant, q.Since, q.Until, int64(q.Bucket / time.Second), subs}
	err := s.read(ctx, overviewSQL, args, func(rows pgx.Rows) error {
		var grouping int32
		var bucket pgtype.Timestamptz
		var sub pgtype.Text
		var st logstore.Stats
		var pct []pgtype.Int4
		if err := rows.Scan(&grouping, &bucket, &sub, &st.Attempts, &st.Delivered, &st.Retrying, &st.Failed, &pct); err != nil {
			return err
		}
		st.P50, st.P95, st.P99 = percentiles(pct)
		switch grouping {
		case 3:
			out.Stats = st
		case 1:
			out.Series = append(out.Series, logstore.Bucket{Start: timeOf(bucket), Stats: st})
		case 2:
			out.Subscriptions = append(out.Subscriptions, logstore.SubscriptionStats{SubscriptionID: sub.String, Stats: st})
		}
		return nil
	})
	if err != nil {
		return logstore.Overview{}, fmt.Errorf("overview: %w", err)
	}
	slices.SortFunc(out.Series, func(a, b logstore.Bucket) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// percentiles reads percentile_disc's array of milliseconds.
func percentiles(pct []pgtype.Int4) (p50, p95, p99 time.Duration) {
	ms := func(i int) time.Duration {
		if i >= len(pct) || !pct[i].Valid {
			return 0
		}
		return time.Duration(pct[i].Int32) * time.Millisecond
	}
	return ms(0), ms(1), ms(2)
}

func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func stateOf(rank int16) logstore.State {
	if rank < 0 || int(rank) >= len(logstore.States) {
		return ""
	}
	return logstore.States[rank]
}
