package deliver

import (
	"cmp"
	"fmt"
	"time"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/subscription"
)

// Outcome is what one attempt made of a delivery: the attempt for the
// delivery log and the delivery moved on. Attempt.Outcome says where the
// delivery goes: nowhere when delivered, to the retry tier Tier while its
// attempts remain (retrying), else to the DLQ (dead_lettered).
type Outcome struct {
	Attempt  record.DeliveryAttempt
	Delivery record.Delivery // its attempt counted, last status and error set, DueAt when retried
	Tier     time.Duration   // retrying: the tier it waits in
}

// Decide is the one place an attempt's outcome is decided, by the sender
// for its attempts and by ingest for an immediate one: res is the attempt
// of d to sub, started at started; schedule gives a retry its tier and
// delay (at least the endpoint's Retry-After). A re-run from the history
// is one attempt: it is not retried.
func Decide(d record.Delivery, sub *record.Subscription, res Result, started time.Time, schedule backoff.Schedule) Outcome {
	d.URL = cmp.Or(res.URL, d.URL) // where this attempt went
	n := d.Attempt + 1
	created := d.CreatedAt
	a := record.DeliveryAttempt{
		DeliveryID: d.ID, Tenant: d.Tenant, SubscriptionID: d.SubscriptionID, EventID: d.EventID,
		EventType: d.EventType, URL: d.URL, Attempt: n, Replay: d.Replay, StartedAt: started,
		DurationMS: res.Duration.Milliseconds(), StatusCode: int32(res.Status), Error: res.Err,
		ResponseSnippet: res.Snippet, RequestBytes: res.RequestBytes, ResponseBytes: res.ResponseBytes,
		DeliveryCreatedAt: &created,
		RequestHeaders:    res.RequestHeaders, ResponseHeaders: res.ResponseHeaders,
		ResponseBody: res.Body, ResponseTruncated: res.Truncated,
	}
	d.Attempt, d.LastStatus, d.LastError = n, int32(res.Status), res.Err
	out := Outcome{}
	switch {
	case res.Class == Delivered:
		a.Outcome = record.OutcomeDelivered
	case res.Class == Retryable && n < subscription.MaxAttempts(sub) && d.Redelivery == "":
		tier, delay := schedule.Next(int(n), res.RetryAfter)
		due := started.Add(res.Duration + delay)
		d.DueAt, out.Tier = &due, tier
		a.Outcome, a.NextAttemptAt = record.OutcomeRetrying, &due
	default:
		switch {
		case d.Redelivery != "":
			// A replay of its dead letter is an ordinary one again.
			d.LastError, d.Redelivery = "redelivery failed: "+res.Err, ""
		case res.Class == Retryable:
			d.LastError = fmt.Sprintf("gave up after %d attempts: %s", n, res.Err)
		}
		a.Outcome = record.OutcomeDeadLettered
		d.DueAt = nil
	}
	out.Attempt, out.Delivery = a, d
	return out
}
