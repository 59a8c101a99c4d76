package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/hookline/hookline/pkg/dlq"
	"github.com/hookline/hookline/pkg/problem"
)

// replayInput is the body of POST /v1/replay. since and until are read as
// strings and parsed here, so that a bad one is answered naming it
// (encoding/json's time error names no field).
type replayInput struct {
	DeliveryIDs    []string `json:"delivery_ids"`
	SubscriptionID string   `json:"subscription_id"`
	Since          *string  `json:"since"`
	Until          *string  `json:"until"`
}

// windowOf parses since and until (RFC 3339; absent is open).
func windowOf(in *replayInput) (since, until time.Time, errs []problem.FieldError) {
	parse := func(field string, v *string) time.Time {
		if v == nil {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, *v)
		if err != nil {
			errs = append(errs, problem.FieldError{Field: field, Detail: "must be an RFC 3339 timestamp, e.g. 2026-01-02T15:04:05Z"})
		}
		return t
	}
	since, until = parse("since", in.Since), parse("until", in.Until)
	if len(errs) == 0 && !since.IsZero() && !until.IsZero() && !since.Before(until) {
		errs = append(errs, problem.FieldError{Field: "until", Detail: "must be after since"})
	}
	return since, until, errs
}

// replay sends dead letters of the caller's tenant again: by delivery id,
// or every one of a subscription, optionally within a time window. Each
// keeps its webhook-id and starts a fresh attempt count; one already
// delivered since is skipped by the sender.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	var in replayInput
	if errs := decodeStrict(body, &in); errs != nil {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	switch {
	case len(in.DeliveryIDs) == 0 && in.SubscriptionID == "":
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: "delivery_ids", Detail: "name delivery_ids or a subscription_id"}))
		return
	case len(in.DeliveryIDs) > 0 && in.SubscriptionID != "":
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: "subscription_id", Detail: "give either delivery_ids or subscription_id, not both"}))
		return
	case len(in.DeliveryIDs) > 1000:
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: "delivery_ids", Detail: "at most 1000 per call"}))
		return
	}
	since, until, errs := windowOf(&in)
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	if in.SubscriptionID != "" {
		if sub, ok := s.View.Get(in.SubscriptionID); !ok || sub.Tenant != tenantOf(r) || !visible(r, sub.ID) {
			problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no subscription "+in.SubscriptionID))
			return
		}
	}
	f := dlq.Filter{Tenant: tenantOf(r), DeliveryIDs: in.DeliveryIDs, SubscriptionID: in.SubscriptionID, Since: since, Until: until, Within: principalOf(r).subs}
	ids, err := s.Replay(r.Context(), f)
	if errors.Is(err, dlq.ErrNoSelection) {
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: "delivery_ids", Detail: err.Error()}))
		return
	}
	if err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"replayed": ids})
}
