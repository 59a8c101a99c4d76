package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// diagnose tells what became of deliveries that never arrived: their
// attempts in the delivery log and whether they sit in the DLQ. It reads
// both topics from the start to their current end, for at most 30 s.
func (b *bench) diagnose(ctx context.Context, ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	notes := map[string][]string{}
	cfg := kafka.Config{Brokers: strings.Split(b.o.brokers, ","), ClientID: "hookload", Topics: b.topics}
	err := kafka.NewReader(b.topics.DeliveryLog, b.topics.DLQ).ReadToEnd(ctx, cfg, zerolog.Nop(), func(r *kgo.Record) bool {
		if r.Topic == b.topics.DLQ {
			var d record.Delivery
			if b.codecs.Delivery.Unmarshal(r.Value, &d) == nil && slices.Contains(ids, d.ID) {
				notes[d.ID] = append(notes[d.ID], "in the DLQ: "+d.LastError)
			}
			return true
		}
		var a record.DeliveryAttempt
		if b.codecs.Attempt.Unmarshal(r.Value, &a) == nil && slices.Contains(ids, a.DeliveryID) {
			notes[a.DeliveryID] = append(notes[a.DeliveryID], fmt.Sprintf("attempt %d at %s: %s, status %d %s",
				a.Attempt, a.StartedAt.Format("15:04:05.000"), a.Outcome, a.StatusCode, a.Error))
		}
		return true
	})
	var out []string
	if err != nil {
		out = append(out, "diagnosis (partial): "+err.Error())
	}
	for _, id := range ids {
		n := notes[id]
		if len(n) == 0 {
			n = []string{"no attempt in the delivery log"}
		}
		out = append(out, fmt.Sprintf("lost %s: %s", id, strings.Join(n, "; ")))
	}
	return out
}
