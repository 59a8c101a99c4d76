package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/problem"
)

// The delivery history's read side: events, deliveries and attempts from
// the logs service's store (HOOKLINE_POSTGRES_URL), tenant-scoped like
// everything else, cursor-paged like the subscriptions list, newest first.
// Re-running from it is in redeliver.go.

const (
	// historyRetryAfter is the Retry-After of a 503 while the history's
	// database is unavailable: a restart takes seconds.
	historyRetryAfter = "5"
	// maxDeliveryAttempts bounds the attempts GET /v1/deliveries/{id}
	// shows: 20 attempts at most per run, and a few replays.
	maxDeliveryAttempts = 4 * logstore.MaxLimit
	// defaultStatsWindow is the window of the stats when none is given.
	defaultStatsWindow = 24 * time.Hour
)

// historyOn answers 404 when the history is not configured here.
func (s *Server) historyOn(w http.ResponseWriter, r *http.Request) bool {
	if s.History != nil {
		return true
	}
	problem.Write(w, r, problem.New(http.StatusNotFound, "not-enabled",
		"the delivery history is not enabled here: the operator sets HOOKLINE_POSTGRES_URL on ingest"))
	return false
}

// historyFailed answers for a store error: a bad query names its
// parameter, an unknown id is 404, an unavailable database 503 with
// Retry-After, never an empty answer.
func (s *Server) historyFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	var qe *logstore.QueryError
	switch {
	case errors.As(err, &qe):
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: qe.Field, Detail: qe.Reason}))
	case errors.Is(err, logstore.ErrNotFound):
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no "+what))
	case errors.Is(err, logstore.ErrUnavailable):
		s.Log.Warn().Err(err).Str("path", r.URL.Path).Msg("delivery history unavailable")
		w.Header().Set("Retry-After", historyRetryAfter)
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", "the delivery history is unavailable; retry"))
	default:
		s.Log.Error().Err(err).Str("path", r.URL.Path).Msg("delivery history")
		problem.Write(w, r, problem.New(http.StatusInternalServerError, "internal", "the delivery history failed to answer"))
	}
}

// query reads a list's query parameters, collecting every problem.
type query struct {
	v    url.Values
	errs []problem.FieldError
}

func (q *query) bad(field, detail string) {
	q.errs = append(q.errs, problem.FieldError{Field: field, Detail: detail})
}

// known refuses parameters the call does not take: a misspelt filter
// would otherwise widen the answer silently.
// A known parameter given empty (?status=) or holding a NUL byte, which
// PostgreSQL's text cannot, is refused too: neither means "no filter".
func (q *query) known(names ...string) {
	for k, vs := range q.v {
		switch {
		case !slices.Contains(names, k):
			q.bad(k, "unknown query parameter")
		case slices.Contains(vs, ""):
			q.bad(k, "is empty; leave the parameter out for no filter")
		case slices.ContainsFunc(vs, func(v string) bool { return strings.ContainsRune(v, 0) }):
			q.bad(k, "must not contain a NUL character")
		}
	}
}

// time reads an RFC 3339 time; absent or empty, none (known refuses a
// parameter given empty).
func (q *query) time(name string) time.Time {
	v := q.v.Get(name)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		q.bad(name, "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return t
}

// window reads since and until (since inclusive, until exclusive).
func (q *query) window() (since, until time.Time) {
	since, until = q.time("since"), q.time("until")
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		q.bad("until", "must be after since")
	}
	return since, until
}

func (q *query) limit() int {
	v := q.v.Get("limit")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > logstore.MaxLimit {
		q.bad("limit", fmt.Sprintf("must be a whole number from 1 to %d", logstore.MaxLimit))
	}
	return n
}

// status reads ?status= among valid.
func (q *query) status(valid ...logstore.State) logstore.State {
	v := logstore.State(q.v.Get("status"))
	if v != "" && !slices.Contains(valid, v) {
		names := make([]string, len(valid))
		for i, s := range valid {
			names[i] = string(s)
		}
		q.bad("status", fmt.Sprintf("must be one of %v", names))
	}
	return v
}

func (q *query) failed(w http.ResponseWriter, r *http.Request) bool {
	if len(q.errs) == 0 {
		return false
	}
	problem.Write(w, r, problem.Invalid(q.errs...))
	return true
}

// page is one page of a history list; NextCursor is null on the last.
type page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func pageOfItems[T, V any](p logstore.Page[T], view func(T) V) page[V] {
	out := page[V]{Data: make([]V, 0, len(p.Items))}
	for _, it := range p.Items {
		out.Data = append(out.Data, view(it))
	}
	if p.Next != "" {
		out.NextCursor = &p.Next
	}
	return out
}

// eventView is an event as ingest received it.
type eventView struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Subject    string          `json:"subject"`
	Source     string          `json:"source"`
	OccurredAt *time.Time      `json:"occurred_at"`
	ReceivedAt time.Time       `json:"received_at"`
	Data       json.RawMessage `json:"data"`
	Changed    []string        `json:"changed"`
	Previous   json.RawMessage `json:"previous"`
}

func viewOfEvent(e logstore.Event) eventView {
	v := eventView{ID: e.ID, Type: e.Type, Subject: e.Subject, Source: e.Source, OccurredAt: optTime(e.OccurredAt),
		ReceivedAt: e.ReceivedAt, Data: e.Data, Changed: e.Changed, Previous: e.Previous}
	if v.Changed == nil {
		v.Changed = []string{}
	}
	if v.Previous == nil {
		v.Previous = json.RawMessage("null")
	}
	return v
}

// eventWithDeliveries is GET /v1/events/{id}: the event and its deliveries.
type eventWithDeliveries struct {
	eventView
	Deliveries []deliveryView `json:"deliveries"`
	// DeliveriesNextCursor continues the list at GET /v1/deliveries?event_id=
	// when the event has more deliveries than one page.
	DeliveriesNextCursor *string `json:"deliveries_next_cursor"`
}

// deliveryView is one delivery and its current state.
type deliveryView struct {
	ID             string     `json:"id"`
	SubscriptionID string     `json:"subscription_id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	URL            string     `json:"url"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
	EventTime      *time.Time `json:"event_time"`
	UpdatedAt      *time.Time `json:"updated_at"`
	AttemptCount   int32      `json:"attempt_count"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatus     int32      `json:"last_status"`
	LastError      string     `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
}

func viewOfDelivery(d logstore.Delivery) deliveryView {
	return deliveryView{
		ID: d.ID, SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventType: d.EventType, URL: d.URL,
		Status: string(d.State), CreatedAt: d.CreatedAt, EventTime: optTime(d.EventTime), UpdatedAt: optTime(d.UpdatedAt),
		AttemptCount: d.Attempts, LastAttemptAt: optTime(d.LastAttemptAt), LastStatus: d.LastStatus,
		LastError: d.LastError, NextAttemptAt: optTime(d.NextAttemptAt),
	}
}

// deliveryWithAttempts is GET /v1/deliveries/{id}.
type deliveryWithAttempts struct {
	deliveryView
	// Payload is the body shaped for this delivery (one element of the
	// array when its subscription batches); null while unknown.
	Payload  *bodyText     `json:"payload"`
	Attempts []attemptView `json:"attempts"`
}

// bodyText is a body as text; one that is not UTF-8 is base64 with
// Encoding "base64".
type bodyText struct {
	Text     string `json:"text"`
	Encoding string `json:"encoding,omitempty"`
}

func textOf(b []byte) *bodyText {
	if b == nil {
		return nil
	}
	if utf8.Valid(b) {
		return &bodyText{Text: string(b)}
	}
	return &bodyText{Text: base64.StdEncoding.EncodeToString(b), Encoding: "base64"}
}

// attemptView is one HTTP attempt: what was sent and what came back.
type attemptView struct {
	DeliveryID     string        `json:"delivery_id"`
	SubscriptionID string        `json:"subscription_id"`
	EventID        string        `json:"event_id"`
	EventType      string        `json:"event_type"`
	Attempt        int32         `json:"attempt"`
	StartedAt      time.Time     `json:"started_at"`
	DurationMS     int64         `json:"duration_ms"`
	URL            string        `json:"url"`
	Request        requestView   `json:"request"`
	Response       *responseView `json:"response"`
	Error          string        `json:"error"`
	Outcome        string        `json:"outcome"`
	NextAttemptAt  *time.Time    `json:"next_attempt_at"`
	Replay         bool          `json:"replay"`
	TraceID        string        `json:"trace_id"`
}

// requestView is the request as sent; Body is null in lists (GET
// /v1/deliveries/{id} has it).
type requestView struct {
	Headers http.Header `json:"headers"`
	Body    *bodyText   `json:"body"`
}

// responseView is the answer: its status, headers and first 4 KiB.
type responseView struct {
	Status    int32       `json:"status"`
	Headers   http.Header `json:"headers"`
	Body      *bodyText   `json:"body"`
	Truncated bool        `json:"truncated"`
}

func viewOfAttempt(a logstore.Attempt) attemptView {
	v := attemptView{
		DeliveryID: a.DeliveryID, SubscriptionID: a.SubscriptionID, EventID: a.EventID, EventType: a.EventType,
		Attempt: a.Number, StartedAt: a.StartedAt, DurationMS: a.DurationMS, URL: a.URL,
		Request: requestView{Headers: a.RequestHeaders, Body: textOf(a.RequestBody)},
		Error:   a.Error, Outcome: string(a.Outcome), NextAttemptAt: optTime(a.NextAttemptAt), Replay: a.Replay, TraceID: a.TraceID,
	}
	if v.Request.Headers == nil {
		v.Request.Headers = http.Header{}
	}
	if a.ResponseStatus != 0 {
		v.Response = &responseView{Status: a.ResponseStatus, Headers: a.ResponseHeaders, Body: textOf(a.ResponseBody), Truncated: a.ResponseTruncated}
		if v.Response.Headers == nil {
			v.Response.Headers = http.Header{}
		}
		if v.Response.Body == nil {
			v.Response.Body = &bodyText{}
		}
	}
	return v
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// listEvents is GET /v1/events: the tenant's events by type, subject and
// time received.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := &query{v: r.URL.Query()}
	q.known("type", "subject", "since", "until", "limit", "cursor")
	eq := logstore.EventQuery{Type: q.v.Get("type"), Subject: q.v.Get("subject"), Limit: q.limit(), Cursor: q.v.Get("cursor")}
	eq.Since, eq.Until = q.window()
	if q.failed(w, r) || !s.historyOn(w, r) {
		return
	}
	if principalOf(r).subs != nil {
		// Events are the tenant's, not one subscription's: a restricted
		// portal finds them through its subscriptions' deliveries.
		problem.Write(w, r, problem.New(http.StatusForbidden, "forbidden",
			"a portal session restricted to some subscriptions lists their deliveries, not the tenant's events"))
		return
	}
	p, err := s.History.ListEvents(r.Context(), tenantOf(r), eq)
	if err != nil {
		s.historyFailed(w, r, "events", err)
		return
	}
	writeJSON(w, http.StatusOK, pageOfItems(p, viewOfEvent))
}

// getEvent is GET /v1/events/{id}: the event and its deliveries, with
// their state. A restricted portal sees the event only when one of its
// subscriptions got it, and only those deliveries.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	if !s.historyOn(w, r) {
		return
	}
	id := r.PathValue("id")
	e, err := s.History.GetEvent(r.Context(), tenantOf(r), id)
	if err != nil {
		s.historyFailed(w, r, "event "+id, err)
		return
	}
	p, err := s.History.ListDeliveries(r.Context(), tenantOf(r), logstore.DeliveryQuery{EventID: id, Limit: logstore.MaxLimit})
	if err != nil {
		s.historyFailed(w, r, "event "+id, err)
		return
	}
	p.Items = slices.DeleteFunc(p.Items, func(d logstore.Delivery) bool { return !visible(r, d.SubscriptionID) })
	if principalOf(r).subs != nil && len(p.Items) == 0 {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no event "+id))
		return
	}
	deliveries := pageOfItems(p, viewOfDelivery)
	writeJSON(w, http.StatusOK, eventWithDeliveries{eventView: viewOfEvent(e), Deliveries: deliveries.Data, DeliveriesNextCursor: deliveries.NextCursor})
}

// listDeliveries is GET /v1/deliveries: by subscription, event, state
// and time created. A restricted portal names one of its subscriptions.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := &query{v: r.URL.Query()}
	q.known("subscription_id", "event_id", "status", "since", "until", "limit", "cursor")
	dq := logstore.DeliveryQuery{SubscriptionID: q.v.Get("subscription_id"), EventID: q.v.Get("event_id"),
		Status: q.status(logstore.States...), Limit: q.limit(), Cursor: q.v.Get("cursor")}
	dq.Since, dq.Until = q.window()
	if principalOf(r).subs != nil && dq.SubscriptionID == "" {
		q.bad("subscription_id", "is required for a portal session restricted to some subscriptions")
	}
	if q.failed(w, r) || !s.historyOn(w, r) || (dq.SubscriptionID != "" && !s.ownSubscription(w, r, dq.SubscriptionID)) {
		return
	}
	p, err := s.History.ListDeliveries(r.Context(), tenantOf(r), dq)
	if err != nil {
		s.historyFailed(w, r, "deliveries", err)
		return
	}
	writeJSON(w, http.StatusOK, pageOfItems(p, viewOfDelivery))
}

// ownSubscription answers 404 for a subscription the caller may not see:
// another tenant's, or one outside a restricted portal's list. A
// subscription deleted since keeps its history.
func (s *Server) ownSubscription(w http.ResponseWriter, r *http.Request, id string) bool {
	if sub, ok := s.View.Get(id); (ok && sub.Tenant != tenantOf(r)) || !visible(r, id) {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no subscription "+id))
		return false
	}
	return true
}

// delivery is the caller's delivery id, with its payload; it answers
// and returns false when there is none.
func (s *Server) delivery(w http.ResponseWriter, r *http.Request) (logstore.Delivery, bool) {
	if !s.historyOn(w, r) {
		return logstore.Delivery{}, false
	}
	id := r.PathValue("id")
	d, err := s.History.GetDelivery(r.Context(), tenantOf(r), id)
	if err == nil && !visible(r, d.SubscriptionID) {
		err = logstore.ErrNotFound
	}
	if err != nil {
		s.historyFailed(w, r, "delivery "+id, err)
		return logstore.Delivery{}, false
	}
	return d, true
}

// getDelivery is GET /v1/deliveries/{id}: the delivery, its payload and
// every attempt, newest first, with what was sent and what came back.
func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	d, ok := s.delivery(w, r)
	if !ok {
		return
	}
	out := deliveryWithAttempts{deliveryView: viewOfDelivery(d), Payload: textOf(d.Payload), Attempts: []attemptView{}}
	aq := logstore.AttemptQuery{DeliveryID: d.ID, WithBody: true, Limit: logstore.MaxLimit}
	for len(out.Attempts) < maxDeliveryAttempts {
		p, err := s.History.ListAttempts(r.Context(), tenantOf(r), aq)
		if err != nil {
			s.historyFailed(w, r, "delivery "+d.ID, err)
			return
		}
		for _, a := range p.Items {
			out.Attempts = append(out.Attempts, viewOfAttempt(a))
		}
		if aq.Cursor = p.Next; p.Next == "" {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// listAttempts is GET /v1/subscriptions/{id}/attempts: the Logs tab of one
// webhook, newest first, by outcome and time started.
func (s *Server) listAttempts(w http.ResponseWriter, r *http.Request) {
	q := &query{v: r.URL.Query()}
	q.known("status", "since", "until", "limit", "cursor")
	aq := logstore.AttemptQuery{SubscriptionID: r.PathValue("id"), Limit: q.limit(), Cursor: q.v.Get("cursor"),
		Status: q.status(logstore.StateDelivered, logstore.StateRetrying, logstore.StateFailed)}
	aq.Since, aq.Until = q.window()
	if q.failed(w, r) || !s.historyOn(w, r) {
		return
	}
	if _, ok := s.lookup(w, r); !ok {
		return
	}
	p, err := s.History.ListAttempts(r.Context(), tenantOf(r), aq)
	if err != nil {
		s.historyFailed(w, r, "attempts", err)
		return
	}
	writeJSON(w, http.StatusOK, pageOfItems(p, viewOfAttempt))
}

// statsAnswer is GET /v1/subscriptions/{id}/stats.
type statsAnswer struct {
	SubscriptionID string    `json:"subscription_id"`
	Since          time.Time `json:"since"`
	Until          time.Time `json:"until"`
	Attempts       int64     `json:"attempts"`
	Delivered      int64     `json:"delivered"`
	Retrying       int64     `json:"retrying"`
	Failed         int64     `json:"failed"`
	LatencyMS      latencies `json:"latency_ms"`
}

type latencies struct {
	P50 int64 `json:"p50"`
	P95 int64 `json:"p95"`
	P99 int64 `json:"p99"`
}

// subscriptionStats counts a subscription's attempts by outcome in a
// window (the last 24 hours by default), with latency percentiles.
func (s *Server) subscriptionStats(w http.ResponseWriter, r *http.Request) {
	q := &query{v: r.URL.Query()}
	q.known("since", "until")
	since, until := q.window()
	if until.IsZero() {
		until = s.Now().UTC()
	}
	if since.IsZero() {
		since = until.Add(-defaultStatsWindow)
	}
	if !since.Before(until) && len(q.errs) == 0 {
		q.bad("since", "must be before until (now when not given)")
	}
	if q.failed(w, r) || !s.historyOn(w, r) {
		return
	}
	sub, ok := s.lookup(w, r)
	if !ok {
		return
	}
	st, err := s.History.Stats(r.Context(), tenantOf(r), logstore.StatsQuery{SubscriptionID: sub.ID, Since: since, Until: until})
	if err != nil {
		s.historyFailed(w, r, "stats", err)
		return
	}
	writeJSON(w, http.StatusOK, statsAnswer{
		SubscriptionID: sub.ID, Since: since, Until: until,
		Attempts: st.Attempts, Delivered: st.Delivered, Retrying: st.Retrying, Failed: st.Failed,
		LatencyMS: latencies{P50: st.P50.Milliseconds(), P95: st.P95.Milliseconds(), P99: st.P99.Milliseconds()},
	})
}
