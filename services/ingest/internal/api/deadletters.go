package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/services/ingest/internal/deadletters"
)

type deadLetterPage struct {
	Data       []deadletters.Letter `json:"data"`
	NextCursor *string              `json:"next_cursor"`
}

// deadLetter is one letter with the body that was to be sent.
type deadLetter struct {
	deadletters.Letter
	Payload string `json:"payload"`
}

// listDeadLetters pages through the tenant's dead letters, newest first:
// ?subscription_id=, ?since= and ?until= (RFC 3339, dead-lettered in
// [since, until)), ?limit=, ?cursor=.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _, errs := pageOf(withoutCursor(q))
	query := deadletters.Query{Tenant: tenantOf(r), SubscriptionID: q.Get("subscription_id"), Within: principalOf(r).subs, Limit: limit}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &query.Since}, {"until", &query.Until}} {
		if q.Has(t.name) { // present but empty is an error, not "no bound"
			at, err := time.Parse(time.RFC3339Nano, q.Get(t.name))
			if err != nil {
				errs = append(errs, problem.FieldError{Field: t.name, Detail: "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"})
			}
			*t.to = at
		}
	}
	if !query.Since.IsZero() && !query.Until.IsZero() && !query.Since.Before(query.Until) {
		errs = append(errs, problem.FieldError{Field: "since", Detail: "must be before until"})
	}
	if v := q.Get("cursor"); v != "" {
		c, err := parseLetterCursor(v)
		if err != nil {
			errs = append(errs, problem.FieldError{Field: "cursor", Detail: "is not a cursor from a previous page's next_cursor"})
		}
		query.After = &c
	}
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	if s.DeadLetters == nil {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "dead letters are not listed here"))
		return
	}
	if query.SubscriptionID != "" && !visible(r, query.SubscriptionID) {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no subscription "+query.SubscriptionID))
		return
	}
	letters, next, err := s.DeadLetters.List(query)
	if err != nil {
		s.unavailable(w, r, "the dead letter index", err)
		return
	}
	page := deadLetterPage{Data: letters}
	if next != nil {
		c := letterCursor(*next)
		page.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, page)
}

// getDeadLetter shows one dead letter and the body that was to be sent,
// read from the DLQ topic.
func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	if s.DeadLetters == nil {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "dead letters are not listed here"))
		return
	}
	l, err := s.DeadLetters.Get(tenantOf(r), r.PathValue("id"))
	switch {
	case errors.Is(err, deadletters.ErrNotFound) || (err == nil && !visible(r, l.SubscriptionID)):
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no dead letter "+r.PathValue("id")))
		return
	case err != nil:
		s.unavailable(w, r, "the dead letter index", err)
		return
	}
	payload, err := s.DeadLetters.Payload(r.Context(), tenantOf(r), l)
	if errors.Is(err, deadletters.ErrBusy) {
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, problem.New(http.StatusTooManyRequests, "busy", err.Error()+"; retry"))
		return
	}
	if err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	writeJSON(w, http.StatusOK, deadLetter{Letter: l, Payload: payload})
}

// withoutCursor leaves the subscriptions list's cursor out of pageOf: dead
// letters and event types have their own.
func withoutCursor(q map[string][]string) map[string][]string {
	out := make(map[string][]string, len(q))
	for k, v := range q {
		if k != "cursor" {
			out[k] = v
		}
	}
	return out
}

func letterCursor(c deadletters.Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.At.UnixNano(), 10) + "/" + c.ID))
}

func parseLetterCursor(s string) (deadletters.Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return deadletters.Cursor{}, err
	}
	ns, id, ok := strings.Cut(string(raw), "/")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return deadletters.Cursor{}, errors.New("malformed cursor")
	}
	return deadletters.Cursor{At: time.Unix(0, n).UTC(), ID: id}, nil
}
