// Package bridge moves JSON events that producers write to
// hookline.ingest.json onto hookline.events, and everything it cannot
// accept onto hookline.ingest.rejected with the reason, so nothing is
// dropped silently.
package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/ingest/internal/event"
)

// MaxRecordBytes bounds one JSON event, like the API's body limit.
const MaxRecordBytes = event.MaxBodyBytes

// Bridge is the kafka.Handler of the JSON ingest topic.
type Bridge struct {
	Producer *kgo.Client
	Codecs   *record.Codecs
	Topics   wire.Topics
	Events   *idempotency.Store
	Log      zerolog.Logger
	Now      func() time.Time
}

// Handle converts one partition's batch. Valid and rejected records are
// produced together; the batch counts as done only when all are
// acknowledged. A valid event whose producer-chosen id was already written
// (a redelivered batch, or a producer's repeat) is skipped; ids are
// remembered only after their events are in Kafka, so a batch that fails or
// is cut short by a crash is written in full when it is handled again.
func (b *Bridge) Handle(ctx context.Context, batch kafka.Batch) error {
	events := make([]*record.Event, len(batch.Records))
	keys := make([]string, len(batch.Records))
	out := make([]*kgo.Record, 0, len(batch.Records))
	for i, r := range batch.Records {
		ev, key, errs := b.convert(r)
		if len(errs) > 0 {
			out = append(out, b.reject(r, errs))
			continue
		}
		events[i], keys[i] = ev, key
	}
	dup, err := event.Duplicates(ctx, b.Events, keys)
	if err != nil {
		return fmt.Errorf("check ingested event ids: %w", err)
	}
	var written []string
	for i, ev := range events {
		if ev == nil {
			continue
		}
		if dup[i] {
			b.Log.Debug().Str("event", ev.ID).Int64("offset", batch.Records[i].Offset).Msg("repeated event id skipped")
			continue
		}
		value, err := b.Codecs.Event.Marshal(ev)
		if err != nil {
			// A valid event always encodes; if one does not, keep it visible.
			out = append(out, b.reject(batch.Records[i], []problem.FieldError{{Detail: "cannot be encoded: " + err.Error()}}))
			continue
		}
		out = append(out, &kgo.Record{Topic: b.Topics.Events, Key: []byte(ev.Subject), Value: value, Context: batch.Records[i].Context})
		if keys[i] != "" {
			written = append(written, keys[i])
		}
	}
	if err := b.Producer.ProduceSync(ctx, out...).FirstErr(); err != nil {
		return fmt.Errorf("produce ingested events: %w", err)
	}
	if err := b.Events.Mark(ctx, written...); err != nil {
		// The events are in Kafka; only the dedupe of a later repeat is lost.
		b.Log.Warn().Err(err).Int("events", len(written)).Msg("remember ingested event ids")
	}
	return nil
}

// convert reads one record; key is the event's dedupe key ("" when
// Hookline assigns the id).
func (b *Bridge) convert(r *kgo.Record) (ev *record.Event, key string, _ []problem.FieldError) {
	if len(r.Value) > MaxRecordBytes {
		return nil, "", []problem.FieldError{{Detail: fmt.Sprintf("record is larger than %d bytes", MaxRecordBytes)}}
	}
	ins, batch, errs := event.Parse(r.Value)
	if errs != nil {
		return nil, "", errs
	}
	if batch {
		return nil, "", []problem.FieldError{{Detail: "send one event per record, not an array"}}
	}
	in := &ins[0]
	if errs := in.Validate(""); len(errs) > 0 {
		return nil, "", errs
	}
	tenant := in.Tenant
	for _, h := range r.Headers {
		if h.Key == wire.HeaderTenant && tenant == "" {
			tenant = string(h.Value)
		}
	}
	if tenant == "" {
		return nil, "", []problem.FieldError{{Field: "tenant", Detail: "is required: set the tenant field or the hookline-tenant header"}}
	}
	e := in.Record(tenant, b.Now())
	return &e, in.DedupeKey(tenant), nil
}

// reject diverts a record it cannot accept to the rejected topic, with
// its problems as the reason (wire.Divert): "invalid event: " and each
// problem as <field>: <detail>, separated by "; ".
func (b *Bridge) reject(r *kgo.Record, errs []problem.FieldError) *kgo.Record {
	reason := "invalid event: " + problem.Text(errs)
	b.Log.Debug().Str("reason", reason).Int64("offset", r.Offset).Msg("rejected JSON event")
	return wire.Divert(r, b.Topics.IngestRejected, reason)
}
