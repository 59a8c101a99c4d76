package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// Re-running from the history:
//   - a delivery again, now, once, with its webhook-id and payload
//     (Delivery.Redelivery: past the sender's delivered mark);
//   - an old event to one subscription of the tenant, shaped for it by the
//     matcher (hookline.redeliveries), once per event and subscription
//     unless a new attempt is asked for;
//   - every failed delivery of a subscription in a window, as replays
//     (the ordinary retry schedule; a delivery delivered since is not sent
//     again).

const (
	// maxRecover bounds the deliveries one recover call re-runs; a larger
	// window is recovered in several calls (next_until).
	maxRecover = 10_000
	// EventRedeliveryTTL is how long an event sent again to a subscription
	// is remembered, so that a second call does not send it twice: the
	// events topic's retention, beyond which the event is not at hand.
	EventRedeliveryTTL = 7 * 24 * time.Hour
)

// redeliveryAnswer is what a redelivery call answers (202).
type redeliveryAnswer struct {
	DeliveryID   string `json:"delivery_id"`
	RedeliveryID string `json:"redelivery_id,omitempty"`
	// Duplicate: the event was already sent again to that subscription;
	// nothing new was sent (ask with new_attempt for another attempt).
	Duplicate bool `json:"duplicate,omitempty"`
}

// usable answers for a subscription that cannot be sent to now, and
// returns its error, or nil.
func usable(sub *record.Subscription) error {
	if !sub.Enabled {
		return fmt.Errorf("subscription %s is disabled; enable it first", sub.ID)
	}
	return nil
}

// redeliverDelivery is POST /v1/deliveries/{id}/redeliver: one new attempt
// now, with the same webhook-id and payload, marked as a replay in the log,
// whatever the delivery's state (delivered, failed, dead-lettered).
func (s *Server) redeliverDelivery(w http.ResponseWriter, r *http.Request) {
	d, ok := s.delivery(w, r)
	if !ok || !s.viewReady(w, r) {
		return
	}
	sub, found := s.View.Get(d.SubscriptionID)
	switch {
	case !found || sub.Tenant != tenantOf(r):
		problem.Write(w, r, problem.New(http.StatusConflict, "subscription-gone", "subscription "+d.SubscriptionID+" of this delivery is deleted"))
		return
	case usable(sub) != nil:
		problem.Write(w, r, problem.New(http.StatusConflict, "subscription-disabled", usable(sub).Error()))
		return
	case d.Payload == nil:
		// Its attempts are in the history before its record: the logs
		// service is catching up.
		w.Header().Set("Retry-After", historyRetryAfter)
		problem.Write(w, r, problem.New(http.StatusConflict, "payload-unknown", "the delivery's payload is not in the history yet; retry"))
		return
	}
	rd := redelivery(d, id.New("rdl"))
	if err := s.produceDeliveries(r, rd); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	writeJSON(w, http.StatusAccepted, redeliveryAnswer{DeliveryID: d.ID, RedeliveryID: rd.Redelivery})
}

// redelivery is the Delivery record that sends d again: its id, payload
// and created_at (its row in the history), to where its subscription (or
// its route) says now. An empty redeliveryID makes an ordinary replay.
func redelivery(d logstore.Delivery, redeliveryID string) *record.Delivery {
	rd := &record.Delivery{
		ID: d.ID, Tenant: d.Tenant, SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventType: d.EventType,
		URL: d.URL, Payload: string(d.Payload), CreatedAt: d.CreatedAt, EventTime: d.EventTime,
		Replay: true, ResolveURL: true, Redelivery: redeliveryID,
	}
	if rd.EventTime.IsZero() {
		rd.EventTime = d.CreatedAt
	}
	if d.Route != nil {
		rd.Route = &record.RouteRef{Condition: d.Route.Condition, Values: d.Route.Values}
		if rd.Route.Values == nil {
			rd.Route.Values = map[string]string{}
		}
	}
	return rd
}

// produceDeliveries writes deliveries to hookline.deliveries, keyed by
// their subscription, and returns once Kafka has them all.
func (s *Server) produceDeliveries(r *http.Request, ds ...*record.Delivery) error {
	recs := make([]*kgo.Record, len(ds))
	for i, d := range ds {
		v, err := s.Codecs.Delivery.Marshal(d)
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Topic: s.Topics.Deliveries, Key: []byte(d.SubscriptionID), Value: v}
	}
	return s.Producer.ProduceSync(r.Context(), recs...).FirstErr()
}

type eventRedeliveryInput struct {
	SubscriptionID *string `json:"subscription_id"`
	// NewAttempt sends the event even if it was sent to that subscription
	// before (and delivered).
	NewAttempt bool `json:"new_attempt"`
}

// redeliverEvent is POST /v1/events/{id}/redeliver: an old event to a
// subscription of the tenant (one created since, say), shaped for it by
// the matcher, with the delivery id a match gives (the event's and the
// subscription's). Twice to one subscription sends it once, unless the
// caller asks for a new attempt: the history or, before the history has
// it, Redis remembers the pair.
func (s *Server) redeliverEvent(w http.ResponseWriter, r *http.Request) {
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	var in eventRedeliveryInput
	if errs := decodeStrict(body, &in); errs != nil {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	if in.SubscriptionID == nil || *in.SubscriptionID == "" {
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: "subscription_id", Detail: "is required"}))
		return
	}
	if !s.historyOn(w, r) || !s.viewReady(w, r) {
		return
	}
	subID := *in.SubscriptionID
	sub, found := s.View.Get(subID)
	if !found || sub.Tenant != tenantOf(r) || !visible(r, subID) {
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: "subscription_id", Detail: "no subscription " + subID}))
		return
	}
	if err := usable(sub); err != nil {
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: "subscription_id", Detail: err.Error()}))
		return
	}
	eventID := r.PathValue("id")
	ev, err := s.History.GetEvent(r.Context(), tenantOf(r), eventID)
	if err == nil && principalOf(r).subs != nil {
		err = s.seenBy(r, eventID)
	}
	if err != nil {
		s.historyFailed(w, r, "event "+eventID, err)
		return
	}
	answer := redeliveryAnswer{DeliveryID: id.Delivery(ev.ID, sub.ID)}
	// The pair's delivery may be in the history already (the subscription
	// matched the event, or it was sent there before): then it is one
	// delivery, and a new attempt is a re-run of it, not a second delivery
	// of the same id made at another time.
	existing, err := s.History.GetDelivery(r.Context(), tenantOf(r), answer.DeliveryID)
	switch {
	case err == nil && !in.NewAttempt:
		answer.Duplicate = true
		writeJSON(w, http.StatusOK, answer)
		return
	case err == nil && existing.Payload != nil:
		rd := redelivery(existing, id.New("rdl"))
		if err := s.produceDeliveries(r, rd); err != nil {
			s.unavailable(w, r, "Kafka", err)
			return
		}
		answer.RedeliveryID = rd.Redelivery
		writeJSON(w, http.StatusAccepted, answer)
		return
	case err != nil && !errors.Is(err, logstore.ErrNotFound):
		s.historyFailed(w, r, "event "+eventID, err)
		return
	}
	claim := tenantOf(r) + "/" + answer.DeliveryID
	if in.NewAttempt {
		answer.RedeliveryID = id.New("rdl")
	} else if s.EventRedeliveries != nil {
		first, err := s.EventRedeliveries.Claim(r.Context(), claim)
		if err != nil {
			s.unavailable(w, r, "Redis", err)
			return
		}
		if !first {
			answer.Duplicate = true
			writeJSON(w, http.StatusOK, answer)
			return
		}
	}
	if err := s.produceRedelivery(r, ev, sub.ID, answer.RedeliveryID); err != nil {
		if !in.NewAttempt && s.EventRedeliveries != nil {
			_ = s.EventRedeliveries.Release(r.Context(), claim) // so that a retry sends it
		}
		s.unavailable(w, r, "Kafka", err)
		return
	}
	writeJSON(w, http.StatusAccepted, answer)
}

// seenBy reports, for a restricted portal, whether one of its
// subscriptions had a delivery of the event (ErrNotFound otherwise): an
// event of the tenant it never got is not its to see.
func (s *Server) seenBy(r *http.Request, eventID string) error {
	q := logstore.DeliveryQuery{EventID: eventID, Limit: logstore.MaxLimit}
	for {
		p, err := s.History.ListDeliveries(r.Context(), tenantOf(r), q)
		if err != nil {
			return err
		}
		for _, d := range p.Items {
			if visible(r, d.SubscriptionID) {
				return nil
			}
		}
		if q.Cursor = p.Next; p.Next == "" {
			return logstore.ErrNotFound
		}
	}
}

// produceRedelivery writes the event to hookline.redeliveries for the
// matcher, naming the subscription (and the redelivery, for a new
// attempt). The event is rebuilt as received: its id, time and data.
func (s *Server) produceRedelivery(r *http.Request, e logstore.Event, subID, redeliveryID string) error {
	ev := record.Event{ID: e.ID, Tenant: e.Tenant, Type: e.Type, Subject: e.Subject, Source: e.Source,
		OccurredAt: e.OccurredAt, ReceivedAt: e.ReceivedAt, Data: string(e.Data), Changed: e.Changed}
	if ev.Changed == nil {
		ev.Changed = []string{}
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = e.ReceivedAt
	}
	if e.Previous != nil {
		prev := string(e.Previous)
		ev.Previous = &prev
	}
	v, err := s.Codecs.Event.Marshal(&ev)
	if err != nil {
		return err
	}
	headers := []kgo.RecordHeader{{Key: wire.HeaderSubscription, Value: []byte(subID)}}
	if redeliveryID != "" {
		headers = append(headers, kgo.RecordHeader{Key: wire.HeaderRedelivery, Value: []byte(redeliveryID)})
	}
	rec := &kgo.Record{Topic: s.Topics.Redeliveries, Key: []byte(ev.Subject), Value: v, Headers: headers}
	return s.Producer.ProduceSync(r.Context(), rec).FirstErr()
}

type recoverInput struct {
	Since *time.Time `json:"since"`
	Until *time.Time `json:"until"`
}

// recoverAnswer is what POST /v1/subscriptions/{id}/recover answers.
type recoverAnswer struct {
	// Count is how many failed deliveries were sent again.
	Count       int      `json:"count"`
	DeliveryIDs []string `json:"delivery_ids"`
	// NextUntil, when set, says the window held more than one call
	// re-runs: call again with it as until for the older ones.
	NextUntil *time.Time `json:"next_until"`
}

// recoverSubscription is POST /v1/subscriptions/{id}/recover: every
// delivery of the subscription created in [since, until) (until: now)
// that failed (dead-lettered) is sent again, as a replay: the ordinary
// retry schedule, and one delivered since (a replay) is not sent twice.
func (s *Server) recoverSubscription(w http.ResponseWriter, r *http.Request) {
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	var in recoverInput
	if errs := decodeStrict(body, &in); errs != nil {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	var errs []problem.FieldError
	until := s.Now().UTC()
	if in.Until != nil {
		until = *in.Until
	}
	switch {
	case in.Since == nil:
		errs = append(errs, problem.FieldError{Field: "since", Detail: "is required"})
	case !in.Since.Before(until):
		errs = append(errs, problem.FieldError{Field: "since", Detail: "must be before until (now when not given)"})
	}
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	if !s.historyOn(w, r) {
		return
	}
	sub, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if err := usable(sub); err != nil {
		problem.Write(w, r, problem.New(http.StatusConflict, "subscription-disabled", err.Error()))
		return
	}
	out := recoverAnswer{DeliveryIDs: []string{}}
	q := logstore.DeliveryQuery{SubscriptionID: sub.ID, Status: logstore.StateFailed, Since: *in.Since, Until: until,
		Limit: logstore.MaxLimit, WithPayload: true}
	var last time.Time // created_at of the last delivery taken
	for more := true; more; {
		pg, err := s.History.ListDeliveries(r.Context(), tenantOf(r), q)
		if err != nil {
			s.historyFailed(w, r, "deliveries", err)
			return
		}
		var batch []*record.Delivery
		for _, d := range pg.Items {
			// Past the bound, stop where created_at changes, so that the
			// next call's until (exclusive) takes exactly the rest.
			if len(out.DeliveryIDs) >= maxRecover && !d.CreatedAt.Equal(last) {
				out.NextUntil, more = &last, false
				break
			}
			last = d.CreatedAt
			if d.Payload == nil {
				continue // its record is not in the history yet; a later call finds it
			}
			batch = append(batch, redelivery(d, ""))
			out.DeliveryIDs = append(out.DeliveryIDs, d.ID)
		}
		if len(batch) > 0 {
			if err := s.produceDeliveries(r, batch...); err != nil {
				// What was produced before stays produced; a retry replays
				// those once more, and delivered marks keep any that got
				// through from going twice.
				s.Log.Warn().Err(err).Int("recovered", len(out.DeliveryIDs)-len(batch)).Msg("recover interrupted")
				s.unavailable(w, r, "Kafka", err)
				return
			}
		}
		if q.Cursor = pg.Next; pg.Next == "" {
			more = false
		}
	}
	out.Count = len(out.DeliveryIDs)
	writeJSON(w, http.StatusAccepted, out)
}
