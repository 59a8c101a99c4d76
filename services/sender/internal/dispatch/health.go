package dispatch

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/subscription"
)

// The events below go to hookline.events for the subscription's tenant,
// with subject = the subscription id and source = "hookline", where
// operators subscribe to them like to any other event and notify emails
// them (docs/alerts.md). Their ids are derived from what they report, so
// writing one again (an attempt's outcome written again after a failed
// write) repeats the same event, which notify and the matcher's delivery
// ids recognise, rather than telling anyone twice.

// track counts a failed request toward its endpoint's health. A failure may
// cross a threshold: then hookline.endpoint.failing, .critical or .disabled
// is written, and past the disable window the subscription is disabled.
// Health is best effort: a Redis failure here is counted, never fatal.
func (d *Dispatcher) track(ctx context.Context, ep *endpoint, res deliver.Result, started time.Time, out *outbox) {
	if d.Health == nil {
		return
	}
	now := d.now()
	st, err := d.Health.Failure(context.WithoutCancel(ctx), ep.Sub.ID, health.Failed{At: now, Status: res.Status, Error: res.Err})
	if err != nil {
		d.Metrics.RedisErrors.Inc()
		return
	}
	for _, alert := range st.Alerts {
		if alert == health.Disabled && ep.gone.Load() == nil {
			reason := subscription.ReasonFailing(st.FailingSince, d.Health.Window())
			if !d.disable(ctx, ep.Sub.ID, started, reason, out) {
				continue
			}
			ep.gone.Store(&reason)
		}
		d.endpointEvent(ep.Sub, alert, st, nil, now, out)
	}
}

// recovered ends the failure streak of ep's subscription after a request
// started at started was delivered, and writes hookline.endpoint.recovered
// when the streak had alerted. pkg/health hands a streak's end to one
// caller only, so two senders never both report it. Like track, it is best
// effort: Redis failing is counted, and the streak ends at a later
// success.
func (d *Dispatcher) recovered(ctx context.Context, ep *endpoint, started time.Time, out *outbox) {
	if d.Health == nil {
		return
	}
	ended, err := d.Health.Success(context.WithoutCancel(ctx), ep.Sub.ID)
	if err != nil {
		d.Metrics.RedisErrors.Inc()
		return
	}
	now := d.now()
	for _, r := range ended {
		at := started.UTC()
		d.endpointEvent(ep.Sub, health.Recovered, r.State, &at, now, out)
	}
}

// endpointEvent writes a hookline.endpoint.* event about sub's streak st,
// one per streak and type: its id is derived from both.
func (d *Dispatcher) endpointEvent(sub *record.Subscription, eventType string, st health.State, recoveredAt *time.Time, now time.Time, out *outbox) {
	data := health.EndpointAlert{
		SubscriptionID: sub.ID, URL: sub.URL, ConsecutiveFailures: st.Failures,
		FailingSince: st.FailingSince.UTC(), LastStatus: st.LastStatus, LastError: st.LastError,
		RecoveredAt: recoveredAt,
	}
	evID := id.Derived("evt", eventType, sub.ID, strconv.FormatInt(st.FailingSince.UnixMilli(), 10))
	d.Log.Warn().Str("subscription", sub.ID).Str("event", eventType).Int64("failures", st.Failures).Msg("endpoint health")
	d.hooklineEvent(sub.Tenant, sub.ID, eventType, evID, data, now, out)
}

// exhausted writes hookline.delivery.exhausted for a delivery given up
// after the attempt just made (its last, or a permanent failure), dl as
// it goes to the DLQ. Its id is derived from the delivery and the record
// the attempt came from, so the same attempt written again repeats it,
// while a replay given up again is a new occurrence.
//
// A given-up delivery of a hookline.delivery.exhausted event raises none:
// an endpoint subscribed to them that refuses everything would otherwise
// feed itself forever.
func (d *Dispatcher) exhausted(it *item, dl *record.Delivery, res deliver.Result, out *outbox) {
	if dl.EventType == health.Exhausted {
		return
	}
	now := d.now()
	data := health.DeliveryExhausted{
		DeliveryID: dl.ID, EventID: dl.EventID, EventType: dl.EventType, SubscriptionID: dl.SubscriptionID,
		URL: dl.URL, Attempts: int(dl.Attempt), LastStatus: res.Status, LastError: res.Err,
		DeadLetteredAt: now.UTC(),
	}
	evID := id.Derived("evt", health.Exhausted, dl.ID, it.rec.Topic,
		strconv.FormatInt(int64(it.rec.Partition), 10), strconv.FormatInt(it.rec.Offset, 10))
	d.Log.Debug().Str("subscription", dl.SubscriptionID).Str("delivery", dl.ID).Int32("attempts", dl.Attempt).Msg("delivery given up")
	d.hooklineEvent(dl.Tenant, dl.SubscriptionID, health.Exhausted, evID, data, now, out)
}

// hooklineEvent writes one of Hookline's own events about subscription
// subject to hookline.events for tenant, keyed like any event by its
// subject (so one subscription's events keep their order).
func (d *Dispatcher) hooklineEvent(tenant, subject, eventType, evID string, data any, now time.Time, out *outbox) {
	body, err := json.Marshal(data)
	if err != nil {
		out.fail(err)
		return
	}
	ev := record.Event{
		ID: evID, Tenant: tenant, Type: eventType, Subject: subject, Source: "hookline",
		OccurredAt: now, ReceivedAt: now, Data: string(body), Changed: []string{},
	}
	value, err := d.Codecs.Event.Marshal(&ev)
	if err != nil {
		out.fail(err)
		return
	}
	d.Metrics.EndpointAlerts.WithLabelValues(eventType).Inc()
	out.produce(&kgo.Record{Topic: d.Topics.Events, Key: []byte(subject), Value: value})
}
