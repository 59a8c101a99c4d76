package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/hookline/hookline/pkg/dlq"
	"github.com/hookline/hookline/pkg/problem"
)

type replayInput struct {
	DeliveryIDs    []string   `json:"delivery_ids"`
	SubscriptionID string     `json:"subscription_id"`
	Since          *time.Time `json:"since"`
	Until          *time.Time `json:"until"`
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
	if in.SubscriptionID != "" {
		if sub, ok := s.View.Get(in.SubscriptionID); !ok || sub.Tenant != tenantOf(r) || !visible(r, sub.ID) {
			problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no subscription "+in.SubscriptionID))
			return
		}
	}
	f := dlq.Filter{Tenant: tenantOf(r), DeliveryIDs: in.DeliveryIDs, SubscriptionID: in.SubscriptionID, Within: principalOf(r).subs}
	if in.Since != nil {
		f.Since = *in.Since
	}
	if in.Until != nil {
		f.Until = *in.Until
	}
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
