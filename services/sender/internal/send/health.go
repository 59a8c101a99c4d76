package send

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
func (s *Sender) track(ep *endpoint, res deliver.Result, started time.Time, out *outbox) {
	if s.Health == nil {
		return
	}
	if res.Class == deliver.Delivered {
		ep.healthy.Store(true)
		return
	}
	now := s.Now()
	st, err := s.Health.Failure(context.Background(), ep.sub.ID, now)
	if err != nil {
		s.Metrics.RedisErrors.Inc()
		return
	}
	for _, alert := range st.Alerts {
		if alert == health.Disabled && ep.gone.Load() == nil {
			reason := subscription.ReasonFailing(st.FailingSince, s.Health.Window())
			if !s.disable(ep.sub.ID, started, reason, out) {
				continue
			}
			ep.gone.Store(&reason)
		}
		s.Metrics.EndpointAlerts.WithLabelValues(alert).Inc()
		s.endpointEvent(ep.sub, alert, st, res, now, out)
	}
}

// endHealthy ends the failure streaks of the endpoints that delivered in
// this batch, in one Redis call.
func (s *Sender) endHealthy(eps []*endpoint) {
	if s.Health == nil {
		return
	}
	var ids []string
	for _, ep := range eps {
		if ep != nil && ep.healthy.Load() {
			ids = append(ids, ep.sub.ID)
		}
	}
	if err := s.Health.Success(context.Background(), ids...); err != nil {
		s.Metrics.RedisErrors.Inc()
	}
}

func (s *Sender) endpointEvent(sub *record.Subscription, eventType string, st health.State, res deliver.Result, now time.Time, out *outbox) {
	data, _ := json.Marshal(map[string]any{
		"subscription_id": sub.ID, "url": sub.URL, "consecutive_failures": st.Failures,
		"failing_since": st.FailingSince.UTC(), "last_status": res.Status, "last_error": res.Err,
	})
	ev := record.Event{
		ID: id.New("evt"), Tenant: sub.Tenant, Type: eventType, Subject: sub.ID, Source: "hookline",
		OccurredAt: now, ReceivedAt: now, Data: string(data), Changed: []string{},
	}
	value, err := s.Codecs.Event.Marshal(&ev)
	if err != nil {
		out.fail(err)
		return
	}
	s.Log.Warn().Str("subscription", sub.ID).Str("event", eventType).Int64("failures", st.Failures).Msg("endpoint health")
	out.produce(&kgo.Record{Topic: s.Topics.Events, Key: []byte(sub.ID), Value: value})
}
