package main

import (
	"context"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/loadtest/internal/report"
	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// hops breaks down the latency of the deliveries in expected that arrived
// by where the time went, from the timestamps every stage leaves: the
// event's occurred_at (the generator's send time), the events record's
// Kafka timestamp (ingest produced it), the deliveries record's (the
// matcher produced it inside its transaction), the first attempt's
// started_at in the delivery log (the sender began the request), and the
// sink's arrival. Kafka's and the log's timestamps are in milliseconds,
// so a hop's figures are good to about a millisecond. It reads the three
// topics to their end, for at most a minute.
func (b *bench) hops(ctx context.Context, tally *sink.Tally, expected map[string]struct{}) ([]report.Hop, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	arrived := tally.Arrived(func(id string) bool { _, ok := expected[id]; return ok })
	type delivery struct {
		event    string
		produced time.Time // the deliveries record's timestamp
	}
	var (
		sent     = map[string]time.Time{} // event id -> occurred_at
		ingested = map[string]time.Time{} // event id -> events record timestamp
		matched  = map[string]delivery{}  // delivery id -> its first record
		started  = map[string]time.Time{} // delivery id -> first attempt's start
	)
	cfg := kafka.Config{Brokers: strings.Split(b.o.brokers, ","), ClientID: "hookload", Topics: b.topics}
	err := kafka.NewReader(b.topics.Events, b.topics.Deliveries, b.topics.DeliveryLog).ReadToEnd(ctx, cfg, zerolog.Nop(), func(r *kgo.Record) bool {
		switch r.Topic {
		case b.topics.Events:
			var ev record.Event
			if b.codecs.Event.Unmarshal(r.Value, &ev) == nil {
				if _, seen := ingested[ev.ID]; !seen {
					sent[ev.ID], ingested[ev.ID] = ev.OccurredAt, r.Timestamp
				}
			}
		case b.topics.Deliveries:
			var d record.Delivery
			if b.codecs.Delivery.Unmarshal(r.Value, &d) == nil {
				if _, owed := arrived[d.ID]; owed {
					if _, seen := matched[d.ID]; !seen {
						matched[d.ID] = delivery{event: d.EventID, produced: r.Timestamp}
					}
				}
			}
		default:
			var a record.DeliveryAttempt
			if b.codecs.Attempt.Unmarshal(r.Value, &a) == nil {
				if _, owed := arrived[a.DeliveryID]; owed {
					if t, seen := started[a.DeliveryID]; !seen || a.StartedAt.Before(t) {
						started[a.DeliveryID] = a.StartedAt
					}
				}
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	names := []struct{ name, about string }{
		{"ingest", "sent → event produced"},
		{"matcher", "event produced → delivery produced"},
		{"sender", "delivery produced → request started (matcher's commit, sender's fetch, checks)"},
		{"request", "request started → arrived at the sink"},
		{"end to end", "sent → arrived"},
	}
	spans := make([][]time.Duration, len(names))
	for id, at := range arrived {
		d, ok := matched[id]
		start, ok2 := started[id]
		if !ok || !ok2 {
			continue
		}
		s, ing := sent[d.event], ingested[d.event]
		if s.IsZero() || ing.IsZero() {
			continue
		}
		for i, span := range []time.Duration{ing.Sub(s), d.produced.Sub(ing), start.Sub(d.produced), at.Sub(start), at.Sub(s)} {
			spans[i] = append(spans[i], span)
		}
	}
	out := make([]report.Hop, len(names))
	for i, n := range names {
		out[i] = report.Hop{Name: n.name, About: n.about, Latency: report.Summarize(spans[i])}
	}
	return out, nil
}
