package dispatch

import (
	"context"
	"encoding/json"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/services/sender/internal/deliver"
)

// track counts a request toward its endpoint's health. A failure may cross
// a threshold: then an event about the endpoint goes to hookline.events for
// the subscription's tenant, where operators subscribe to it like to any
// other event, and past the disable window the subscription is disabled.
// Health is best effort: a Redis failure here is counted, never fatal.
func (d *Dispatcher) track(ctx context.Context, ep *endpoint, res deliver.Result, started time.Time, out *outbox) {
	if d.Health == nil {
		return
	}
	now := d.now()
	st, err := d.Health.Failure(context.WithoutCancel(ctx), ep.sub.ID, now)
	if err != nil {
		d.Metrics.RedisErrors.Inc()
		return
	}
	for _, alert := range st.Alerts {
		if alert == health.Disabled && ep.gone.Load() == nil {
			reason := subscription.ReasonFailing(st.FailingSince, d.Health.Window())
			if !d.disable(ctx, ep.sub.ID, started, reason, out) {
				continue
			}
			ep.gone.Store(&reason)
		}
		d.Metrics.EndpointAlerts.WithLabelValues(alert).Inc()
		d.endpointEvent(ep.sub, alert, st, res, now, out)
	}
}

// endStreaks ends the failure streaks of subscriptions whose endpoint
// answered again, in one Redis call.
func (d *Dispatcher) endStreaks(ctx context.Context, ids []string) {
	if d.Health == nil || len(ids) == 0 {
		return
	}
	if err := d.Health.Success(ctx, ids...); err != nil {
		d.Metrics.RedisErrors.Inc()
	}
}

func (d *Dispatcher) endpointEvent(sub *record.Subscription, eventType string, st health.State, res deliver.Result, now time.Time, out *outbox) {
	data, _ := json.Marshal(map[string]any{
		"subscription_id": sub.ID, "url": sub.URL, "consecutive_failures": st.Failures,
		"failing_since": st.FailingSince.UTC(), "last_status": res.Status, "last_error": res.Err,
	})
	ev := record.Event{
		ID: id.New("evt"), Tenant: sub.Tenant, Type: eventType, Subject: sub.ID, Source: "hookline",
		OccurredAt: now, ReceivedAt: now, Data: string(data), Changed: []string{},
	}
	value, err := d.Codecs.Event.Marshal(&ev)
	if err != nil {
		out.fail(err)
		return
	}
	d.Log.Warn().Str("subscription", sub.ID).Str("event", eventType).Int64("failures", st.Failures).Msg("endpoint health")
	out.produce(&kgo.Record{Topic: d.Topics.Events, Key: []byte(sub.ID), Value: value})
}
