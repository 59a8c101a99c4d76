package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/services/ingest/internal/outcome"
)

// TestEventType is the type of the event a test ping delivers.
const TestEventType = "webhook.test"

// pingBody is the webhook body of a test ping, shaped like every other
// delivery's.
type pingBody struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Subject   string            `json:"subject"`
	Data      pingData          `json:"data"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

type pingData struct {
	Message string `json:"message"`
}

type pingAnswer struct {
	DeliveryID string      `json:"delivery_id"`
	EventID    string      `json:"event_id"`
	Result     *pingResult `json:"result,omitempty"` // with ?wait, once the first attempt is known
}

// pingResult is the first attempt of a test ping, as the delivery log has it.
type pingResult struct {
	Outcome       string     `json:"outcome"` // delivered, retrying or dead_lettered
	StatusCode    int32      `json:"status_code"`
	DurationMS    int64      `json:"duration_ms"`
	Error         string     `json:"error,omitempty"`
	Response      string     `json:"response,omitempty"` // the first bytes of the endpoint's answer
	URL           string     `json:"url"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// How long a test ping may wait for its outcome (?wait=true, ?wait_ms=):
// long enough for an endpoint answering within a few seconds, bounded so a
// request is not held open for the subscription's whole timeout.
const (
	defaultPingWait = 10 * time.Second
	maxPingWait     = 30 * time.Second
)

// pingWait reads ?wait=true (defaultPingWait) or ?wait_ms=N (1 to
// maxPingWait); 0 means answer at once. A parameter present but empty is
// refused, as the OpenAPI document says, rather than read as absent.
func pingWait(r *http.Request) (time.Duration, *problem.FieldError) {
	q := r.URL.Query()
	if q.Has("wait_ms") {
		n, err := strconv.Atoi(q.Get("wait_ms"))
		if err != nil || n < 0 || time.Duration(n)*time.Millisecond > maxPingWait {
			return 0, &problem.FieldError{Field: "wait_ms", Detail: fmt.Sprintf("must be a whole number from 0 to %d", maxPingWait.Milliseconds())}
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	switch v, sent := q.Get("wait"), q.Has("wait"); {
	case !sent || v == "false":
		return 0, nil
	case v == "true":
		return defaultPingWait, nil
	}
	return 0, &problem.FieldError{Field: "wait", Detail: "must be true or false"}
}

// testSubscription sends a webhook.test event to this subscription only:
// the delivery is written straight to the deliveries topic, bypassing the
// matcher, so no other subscription of the tenant receives it. It goes
// through the sender like any delivery (signed, retried, logged).
//
// With ?wait=true or ?wait_ms=N the call waits (at most N ms, or
// defaultPingWait) for the first attempt and answers 200 with its result;
// past the wait, or when too many callers wait already, it answers 202
// without one, as it does without wait.
func (s *Server) testSubscription(w http.ResponseWriter, r *http.Request) {
	wait, fe := pingWait(r)
	if fe != nil {
		problem.Write(w, r, problem.Invalid(*fe))
		return
	}
	sub, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if !sub.Enabled {
		problem.Write(w, r, problem.New(http.StatusConflict, "subscription-disabled", "subscription "+sub.ID+" is disabled; enable it to test it"))
		return
	}
	d, err := s.ping(sub)
	if err != nil {
		s.unavailable(w, r, "encoding", err)
		return
	}
	value, err := s.Codecs.Delivery.Marshal(d)
	if err != nil {
		s.unavailable(w, r, "encoding", err)
		return
	}
	var watch *outcome.Wait
	if wait > 0 && s.Outcomes != nil {
		// Before the ping is written, so that its attempt cannot be missed.
		var err error
		if watch, err = s.Outcomes.Watch(r.Context(), sub.Tenant, d.ID); err != nil && !errors.Is(err, outcome.ErrBusy) {
			s.Log.Warn().Err(err).Str("delivery", d.ID).Msg("test ping answered without waiting")
		}
	}
	if watch != nil {
		defer watch.Close()
	}
	rec := &kgo.Record{Topic: s.Topics.Deliveries, Key: []byte(sub.ID), Value: value, Context: r.Context()}
	if err := s.Producer.ProduceSync(r.Context(), rec).FirstErr(); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	answer := pingAnswer{DeliveryID: d.ID, EventID: d.EventID}
	if watch != nil {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		a, ok := watch.Attempt(ctx)
		cancel()
		if ok {
			answer.Result = &pingResult{Outcome: a.Outcome, StatusCode: a.StatusCode, DurationMS: a.DurationMS, Error: a.Error,
				Response: a.ResponseSnippet, URL: a.URL, NextAttemptAt: a.NextAttemptAt}
			writeJSON(w, http.StatusOK, answer)
			return
		}
	}
	writeJSON(w, http.StatusAccepted, answer)
}

// ping is the delivery of a fresh test event to sub; its id derives from
// the event's and the subscription's, like the matcher's.
func (s *Server) ping(sub *record.Subscription) (*record.Delivery, error) {
	now := s.now()
	eventID := id.New("evt")
	body, err := json.Marshal(pingBody{
		ID: eventID, Type: TestEventType, Timestamp: now, Subject: sub.ID,
		Data:     pingData{Message: "This is a test webhook from Hookline."},
		Metadata: sub.Metadata,
	})
	if err != nil {
		return nil, err
	}
	return &record.Delivery{
		ID: id.Delivery(eventID, sub.ID), Tenant: sub.Tenant, SubscriptionID: sub.ID,
		EventID: eventID, EventType: TestEventType, URL: sub.URL, Payload: string(body),
		CreatedAt: now, EventTime: now, ResolveURL: true,
	}, nil
}
