// Package match turns one event into its deliveries: it finds the
// subscriptions whose event types and conditions match, picks each one's
// URL, shapes the payload and writes the Delivery records.
package match

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/services/matcher/internal/index"
)

// HeaderError carries the reason on a record diverted to the rejected topic.
const HeaderError = "hookline-error"

// Matcher matches events against the index.
type Matcher struct {
	Index  *index.Index
	Codecs *record.Codecs
	Topics kafka.Topics
	Now    func() time.Time
}

// Body is the JSON a receiver gets for one event.
type Body struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Subject   string            `json:"subject"`
	Data      json.RawMessage   `json:"data"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Process returns the records to produce for one event record: a Delivery
// per matching subscription, or the record itself for the rejected topic
// when it cannot be read. buf is reused between calls.
func (m *Matcher) Process(r *kgo.Record, buf []*index.Entry) ([]*kgo.Record, []*index.Entry) {
	var ev record.Event
	if err := m.Codecs.Event.Unmarshal(r.Value, &ev); err != nil {
		return []*kgo.Record{m.reject(r, err)}, buf
	}
	buf = m.Index.Candidates(buf[:0], ev.Tenant, ev.Type)
	if len(buf) == 0 {
		return nil, buf
	}
	doc, err := Document(&ev)
	if err != nil {
		return []*kgo.Record{m.reject(r, err)}, buf
	}
	var out []*kgo.Record
	now := m.Now()
	for _, e := range buf {
		if !e.Matches(doc) {
			continue
		}
		payload, err := Shape(&ev, doc, e.Sub)
		if err != nil {
			return []*kgo.Record{m.reject(r, err)}, buf
		}
		d := record.Delivery{
			ID:             id.Delivery(ev.ID, e.Sub.ID),
			Tenant:         ev.Tenant,
			SubscriptionID: e.Sub.ID,
			EventID:        ev.ID,
			EventType:      ev.Type,
			URL:            e.URL(doc),
			Payload:        string(payload),
			CreatedAt:      now,
			EventTime:      ev.OccurredAt,
		}
		value, err := m.Codecs.Delivery.Marshal(&d)
		if err != nil {
			return []*kgo.Record{m.reject(r, err)}, buf
		}
		out = append(out, &kgo.Record{Topic: m.Topics.Deliveries, Key: []byte(e.Sub.ID), Value: value, Context: r.Context})
	}
	return out, buf
}

func (m *Matcher) reject(r *kgo.Record, err error) *kgo.Record {
	return &kgo.Record{
		Topic:   m.Topics.IngestRejected,
		Key:     r.Key,
		Value:   r.Value,
		Context: r.Context,
		Headers: append([]kgo.RecordHeader{{Key: HeaderError, Value: []byte(err.Error())}}, r.Headers...),
	}
}

// Document decodes an event once for every condition evaluated on it.
func Document(ev *record.Event) (condition.Document, error) {
	data, err := condition.DecodeValue([]byte(ev.Data))
	if err != nil {
		return condition.Document{}, fmt.Errorf("event %s data: %w", ev.ID, err)
	}
	var previous any
	if ev.Previous != nil {
		if previous, err = condition.DecodeValue([]byte(*ev.Previous)); err != nil {
			return condition.Document{}, fmt.Errorf("event %s previous: %w", ev.ID, err)
		}
	}
	changed := make([]any, len(ev.Changed))
	for i, c := range ev.Changed {
		changed[i] = c
	}
	return condition.NewDocument(map[string]any{
		"id": ev.ID, "type": ev.Type, "subject": ev.Subject, "source": ev.Source,
		"data": data, "changed": changed, "previous": previous,
	}), nil
}

// Shape builds the request body for one subscription. With payload
// "changed", an update event (one that lists changed fields or carries
// previous values) sends only the changed fields plus the record's id;
// every other event sends all fields.
func Shape(ev *record.Event, doc condition.Document, sub *record.Subscription) ([]byte, error) {
	b := Body{ID: ev.ID, Type: ev.Type, Timestamp: ev.OccurredAt.UTC(), Subject: ev.Subject, Data: json.RawMessage(ev.Data), Metadata: sub.Metadata}
	if sub.Payload == "changed" {
		if data, ok := doc.Root()["data"].(map[string]any); ok {
			if fields := changedFields(ev, data, doc.Root()["previous"]); fields != nil {
				only := make(map[string]any, len(fields)+1)
				for _, f := range fields {
					if v, ok := data[f]; ok {
						only[f] = v
					}
				}
				if v, ok := data["id"]; ok {
					only["id"] = v
				} else {
					only["id"] = ev.Subject
				}
				raw, err := json.Marshal(only)
				if err != nil {
					return nil, err
				}
				b.Data = raw
			}
		}
	}
	return json.Marshal(b)
}

// changedFields is the event's changed list, or the fields of data that
// differ from previous; nil when the event is not an update.
func changedFields(ev *record.Event, data map[string]any, previous any) []string {
	if len(ev.Changed) > 0 {
		return ev.Changed
	}
	prev, ok := previous.(map[string]any)
	if !ok {
		return nil
	}
	fields := []string{}
	for k, v := range data {
		if old, had := prev[k]; !had || !reflect.DeepEqual(old, v) {
			fields = append(fields, k)
		}
	}
	for k := range prev {
		if _, still := data[k]; !still {
			fields = append(fields, k)
		}
	}
	return fields
}
