package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	topics := []string{b.topics.DeliveryLog, b.topics.DLQ}
	ends, err := kadm.NewClient(b.kafka).ListEndOffsets(ctx, topics...)
	if err != nil {
		return []string{"diagnosis: " + err.Error()}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(b.o.brokers, ",")...),
		kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return []string{"diagnosis: " + err.Error()}
	}
	defer cl.Close()
	left := map[string]map[int32]int64{} // offsets still to read
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if left[o.Topic] == nil {
				left[o.Topic] = map[int32]int64{}
			}
			left[o.Topic][o.Partition] = o.Offset
		}
	})
	notes := map[string][]string{}
	for len(left) > 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Topic][r.Partition]; ok && r.Offset+1 >= end {
				delete(left[r.Topic], r.Partition)
				if len(left[r.Topic]) == 0 {
					delete(left, r.Topic)
				}
			}
			if r.Topic == b.topics.DLQ {
				var d record.Delivery
				if b.codecs.Delivery.Unmarshal(r.Value, &d) == nil && slices.Contains(ids, d.ID) {
					notes[d.ID] = append(notes[d.ID], "in the DLQ: "+d.LastError)
				}
				return
			}
			var a record.DeliveryAttempt
			if b.codecs.Attempt.Unmarshal(r.Value, &a) == nil && slices.Contains(ids, a.DeliveryID) {
				notes[a.DeliveryID] = append(notes[a.DeliveryID], fmt.Sprintf("attempt %d at %s: %s, status %d %s",
					a.Attempt, a.StartedAt.Format("15:04:05.000"), a.Outcome, a.StatusCode, a.Error))
			}
		})
	}
	var out []string
	for _, id := range ids {
		n := notes[id]
		if len(n) == 0 {
			n = []string{"no attempt in the delivery log"}
		}
		out = append(out, fmt.Sprintf("lost %s: %s", id, strings.Join(n, "; ")))
	}
	return out
}
