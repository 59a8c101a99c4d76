package alert

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// Handler queues the notifications of hookline.events records. It is the
// kafka.Handler of notify's consumer group.
type Handler struct {
	Codecs  *record.Codecs
	Outbox  *Outbox
	Metrics *Metrics
	Log     zerolog.Logger
	Now     func() time.Time
	// DigestWindow groups the given-up deliveries of one subscription
	// into one email: the first opens a digest, sent DigestWindow later.
	DigestWindow time.Duration
	// MaxAge is the oldest event still worth an email: older ones (a
	// consumer group starting at the beginning of the topic, a long
	// outage) are counted and left out.
	MaxAge time.Duration
	// Queued is told when a notification was queued, so the dispatcher
	// sends it at once instead of at its next poll.
	Queued func()
}

// Handle queues the batch's notifications; it fails only when Redis does,
// and then the batch is read again (queueing is idempotent per event).
// Records that are not Hookline's endpoint events are skipped; one that
// cannot be decoded is counted and skipped, since the matcher, which reads
// the same topic, sets poison aside in hookline.ingest.rejected.
func (h *Handler) Handle(ctx context.Context, b kafka.Batch) error {
	queued := false
	for _, r := range b.Records {
		var ev record.Event
		if err := h.Codecs.Event.Unmarshal(r.Value, &ev); err != nil {
			h.Metrics.Suppressed.WithLabelValues(ReasonInvalidEvent).Inc()
			h.Log.Debug().Err(err).Int64("offset", r.Offset).Msg("undecodable event skipped")
			continue
		}
		kind, ok := kindOf(ev.Type)
		if !ok {
			continue
		}
		q, err := h.take(ctx, &ev, kind)
		if err != nil {
			return err
		}
		queued = queued || q
	}
	if queued && h.Queued != nil {
		h.Queued()
	}
	return nil
}

// take queues one event's notification; true when it was queued now.
func (h *Handler) take(ctx context.Context, ev *record.Event, kind string) (bool, error) {
	now := h.Now()
	log := h.Log.With().Str("event", ev.ID).Str("type", ev.Type).Str("tenant", ev.Tenant).Logger()
	if h.MaxAge > 0 && !ev.OccurredAt.IsZero() && now.Sub(ev.OccurredAt) > h.MaxAge {
		h.Metrics.Suppressed.WithLabelValues(ReasonStale).Inc()
		log.Info().Time("occurred_at", ev.OccurredAt).Msg("event too old to email")
		return false, nil
	}
	j := &Job{ID: id.Derived("ntf", ev.Tenant, ev.ID), Kind: kind, Tenant: ev.Tenant}
	var (
		fresh bool
		err   error
	)
	if kind == KindExhausted {
		it := Item{Trigger: ev.ID, At: ev.OccurredAt}
		if !h.decode(ev, &it.DeliveryExhausted, log) {
			return false, nil
		}
		j.SubscriptionID = firstNonEmpty(it.SubscriptionID, ev.Subject)
		fresh, err = h.Outbox.EnqueueItem(ctx, j, it, h.DigestWindow, now)
	} else {
		j.Alert = &Alert{Trigger: ev.ID, At: ev.OccurredAt}
		if !h.decode(ev, &j.Alert.EndpointAlert, log) {
			return false, nil
		}
		j.SubscriptionID = firstNonEmpty(j.Alert.SubscriptionID, ev.Subject)
		fresh, err = h.Outbox.EnqueueAlert(ctx, j, now)
	}
	if err != nil {
		return false, err
	}
	if !fresh {
		h.Metrics.Suppressed.WithLabelValues(ReasonDuplicate).Inc()
		return false, nil
	}
	h.Metrics.Queued.WithLabelValues(kind).Inc()
	log.Debug().Str("notification", j.ID).Str("subscription", j.SubscriptionID).Msg("queued")
	return true, nil
}

// decode reads the event's data into v; false (counted) when it cannot,
// or when it names no subscription.
func (h *Handler) decode(ev *record.Event, v any, log zerolog.Logger) bool {
	err := json.Unmarshal([]byte(ev.Data), v)
	sub := ev.Subject
	switch d := v.(type) {
	case *health.EndpointAlert:
		sub = firstNonEmpty(d.SubscriptionID, sub)
	case *health.DeliveryExhausted:
		sub = firstNonEmpty(d.SubscriptionID, sub)
	}
	if err != nil || strings.TrimSpace(sub) == "" {
		h.Metrics.Suppressed.WithLabelValues(ReasonInvalidEvent).Inc()
		log.Error().AnErr("error", err).Msg("endpoint event without a readable subscription; not emailed")
		return false
	}
	return true
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
