// Package bridge moves JSON events that producers write to
// hookline.ingest.json onto hookline.events, and everything it cannot
// accept onto hookline.ingest.rejected with the reason, so nothing is
// dropped silently.
package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/services/ingest/internal/event"
)

// Headers of a rejected record.
const (
	HeaderTenant = "hookline-tenant" // on input: the event's tenant
	HeaderError  = "hookline-error"  // on rejected records: the problems, as JSON
	HeaderSource = "hookline-source" // topic/partition/offset of the original
)

// MaxRecordBytes bounds one JSON event, like the API's body limit.
const MaxRecordBytes = 1 << 20

// Bridge is the kafka.Handler of the JSON ingest topic.
type Bridge struct {
	Producer *kgo.Client
	Codecs   *record.Codecs
	Topics   kafka.Topics
	Events   *idempotency.Store
	Log      zerolog.Logger
	Now      func() time.Time
}

// Handle converts one partition's batch. Valid and rejected records are
// produced together; the batch counts as done only when all are acknowledged.
func (b *Bridge) Handle(ctx context.Context, batch kafka.Batch) error {
	var out []*kgo.Record
	var claimed []string
	for _, r := range batch.Records {
		ev, ownID, errs := b.convert(r)
		if len(errs) > 0 {
			out = append(out, b.reject(r, errs))
			continue
		}
		if ownID { // only producer-chosen ids can repeat
			key := ev.Tenant + ":" + ev.ID
			fresh, err := b.Events.Claim(ctx, key)
			if err != nil {
				b.release(claimed)
				return err
			}
			if !fresh {
				continue // a redelivered or repeated event id
			}
			claimed = append(claimed, key)
		}
		value, err := b.Codecs.Event.Marshal(ev)
		if err != nil {
			b.release(claimed)
			return err
		}
		out = append(out, &kgo.Record{Topic: b.Topics.Events, Key: []byte(ev.Subject), Value: value})
	}
	if err := b.Producer.ProduceSync(ctx, out...).FirstErr(); err != nil {
		b.release(claimed)
		return fmt.Errorf("produce ingested events: %w", err)
	}
	return nil
}

func (b *Bridge) release(keys []string) {
	for _, k := range keys {
		if err := b.Events.Release(context.Background(), k); err != nil {
			b.Log.Warn().Err(err).Msg("release event id")
		}
	}
}

func (b *Bridge) convert(r *kgo.Record) (ev *record.Event, ownID bool, _ []problem.FieldError) {
	if len(r.Value) > MaxRecordBytes {
		return nil, false, []problem.FieldError{{Detail: fmt.Sprintf("record is larger than %d bytes", MaxRecordBytes)}}
	}
	ins, batch, errs := event.Parse(r.Value)
	if errs != nil {
		return nil, false, errs
	}
	if batch {
		return nil, false, []problem.FieldError{{Detail: "send one event per record, not an array"}}
	}
	in := &ins[0]
	if errs := in.Validate(""); len(errs) > 0 {
		return nil, false, errs
	}
	tenant := in.Tenant
	for _, h := range r.Headers {
		if h.Key == HeaderTenant && tenant == "" {
			tenant = string(h.Value)
		}
	}
	if tenant == "" {
		return nil, false, []problem.FieldError{{Field: "tenant", Detail: "is required: set the tenant field or the hookline-tenant header"}}
	}
	e := in.Record(tenant, b.Now())
	return &e, in.ID != "", nil
}

func (b *Bridge) reject(r *kgo.Record, errs []problem.FieldError) *kgo.Record {
	reason, _ := json.Marshal(errs)
	b.Log.Debug().RawJSON("errors", reason).Int64("offset", r.Offset).Msg("rejected JSON event")
	headers := append([]kgo.RecordHeader{
		{Key: HeaderError, Value: reason},
		{Key: HeaderSource, Value: []byte(r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10))},
	}, r.Headers...)
	return &kgo.Record{Topic: b.Topics.IngestRejected, Key: r.Key, Value: r.Value, Headers: headers}
}
