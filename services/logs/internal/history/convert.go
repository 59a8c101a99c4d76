package history

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// converter maps the records of the topics the history is made of to the
// store's model.
type converter struct {
	codecs *record.Codecs
	topics wire.Topics
}

// add decodes r and adds what it holds to b. It returns an error, and
// adds nothing, for a record the store could not hold: it cannot be
// decoded, or the store would refuse it (logstore.RecordError). skip is
// true for a record that is not history (nothing to add, nothing wrong).
func (c converter) add(b *logstore.Batch, r *kgo.Record) (skip bool, err error) {
	var one logstore.Batch
	switch r.Topic {
	case c.topics.Events:
		var e record.Event
		if err := c.codecs.Event.Unmarshal(r.Value, &e); err != nil {
			return false, err
		}
		one.Events = []logstore.Event{eventOf(&e)}
	case c.topics.Deliveries:
		var d record.Delivery
		if err := c.codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
			return false, err
		}
		one.Deliveries = []logstore.Delivery{queued(&d, r.Timestamp)}
	case c.topics.DLQ:
		var d record.Delivery
		if err := c.codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
			return false, err
		}
		one.Deliveries = []logstore.Delivery{deadLettered(&d, r.Timestamp)}
	case c.topics.DeliveryLog:
		var a record.DeliveryAttempt
		if err := c.codecs.Attempt.Unmarshal(r.Value, &a); err != nil {
			return false, err
		}
		one.Attempts = []logstore.Attempt{attemptOf(&a)}
	default:
		return true, nil
	}
	// The store's own checks, one record at a time, so that a record it
	// would refuse is diverted alone rather than failing the whole batch.
	if _, err := one.Prepare(); err != nil {
		return false, err
	}
	b.Events = append(b.Events, one.Events...)
	b.Deliveries = append(b.Deliveries, one.Deliveries...)
	b.Attempts = append(b.Attempts, one.Attempts...)
	return false, nil
}

func eventOf(e *record.Event) logstore.Event {
	out := logstore.Event{
		Tenant: e.Tenant, ID: e.ID, Type: e.Type, Subject: e.Subject, Source: e.Source,
		OccurredAt: e.OccurredAt, ReceivedAt: e.ReceivedAt, Data: json.RawMessage(e.Data), Changed: e.Changed,
	}
	if e.Previous != nil {
		out.Previous = json.RawMessage(*e.Previous)
	}
	return out
}

// delivery is the part of a Delivery record every topic has.
func delivery(d *record.Delivery) logstore.Delivery {
	out := logstore.Delivery{
		Tenant: d.Tenant, ID: d.ID, SubscriptionID: d.SubscriptionID, EventID: d.EventID, EventType: d.EventType,
		URL: d.URL, Payload: []byte(d.Payload), CreatedAt: d.CreatedAt, EventTime: d.EventTime,
		Attempts: d.Attempt, LastStatus: d.LastStatus, LastError: d.LastError,
	}
	if d.Route != nil {
		out.Route = &logstore.Route{Condition: d.Route.Condition, Values: d.Route.Values}
	}
	return out
}

// queued is a record of hookline.deliveries: pending. A fresh replay (an
// operator's, or a redelivery from the history: attempt count 0) makes
// the delivery pending again as of the record's time; a new delivery, or
// one put back by the retry scheduler, carries no time of its own (the
// attempt before it already said "retrying" and when).
func queued(d *record.Delivery, at time.Time) logstore.Delivery {
	out := delivery(d)
	out.State = logstore.StatePending
	if d.Replay && d.Attempt == 0 {
		out.UpdatedAt = at
	}
	if d.DueAt != nil {
		out.NextAttemptAt = *d.DueAt
	}
	return out
}

// deadLettered is a record of hookline.dlq: failed, as of the time the
// DLQ got it.
func deadLettered(d *record.Delivery, at time.Time) logstore.Delivery {
	out := delivery(d)
	out.State, out.UpdatedAt = logstore.StateFailed, at
	return out
}

// outcomes maps the delivery log's outcomes to the states they leave a
// delivery in.
var outcomes = map[string]logstore.State{
	record.OutcomeDelivered:    logstore.StateDelivered,
	record.OutcomeRetrying:     logstore.StateRetrying,
	record.OutcomeDeadLettered: logstore.StateFailed,
}

func attemptOf(a *record.DeliveryAttempt) logstore.Attempt {
	out := logstore.Attempt{
		Tenant: a.Tenant, DeliveryID: a.DeliveryID, SubscriptionID: a.SubscriptionID, EventID: a.EventID,
		EventType: a.EventType, Number: a.Attempt, StartedAt: a.StartedAt, DurationMS: a.DurationMS, URL: a.URL,
		RequestHeaders: http.Header(a.RequestHeaders), RequestBody: a.RequestBody,
		ResponseStatus: a.StatusCode, ResponseHeaders: http.Header(a.ResponseHeaders),
		ResponseBody: a.ResponseBody, ResponseTruncated: a.ResponseTruncated,
		Error: a.Error, Outcome: outcomes[a.Outcome], Replay: a.Replay, TraceID: a.TraceID,
	}
	if out.Outcome == "" {
		out.Outcome = logstore.State(a.Outcome) // refused by the store's check, naming it
	}
	// Records written before DeliveryAttempt v2 do not name their
	// delivery's created_at: its start is the nearest time known, and
	// places the attempt's delivery row on the same day.
	out.DeliveryCreatedAt = a.StartedAt
	if a.DeliveryCreatedAt != nil {
		out.DeliveryCreatedAt = *a.DeliveryCreatedAt
	}
	if a.RequestBody == nil && len(a.RequestBodySHA256) >= logstore.BodyHashSize {
		out.RequestBodyHash = a.RequestBodySHA256[:logstore.BodyHashSize]
	} else if a.RequestBody == nil && a.RequestBodySHA256 != nil {
		out.RequestBodyHash = a.RequestBodySHA256 // refused by the store's check, naming it
	}
	if len(a.ResponseBody) == 0 && a.ResponseSnippet != "" {
		out.ResponseBody = []byte(a.ResponseSnippet) // v1: the snippet is all there is
	}
	if a.NextAttemptAt != nil {
		out.NextAttemptAt = *a.NextAttemptAt
	}
	return out
}

// reason is what a diverted record's header says.
func reason(err error) string { return fmt.Sprintf("not stored in the delivery history: %v", err) }
