// Package match turns one event into its deliveries: it finds the
// subscriptions whose event types and conditions match, picks each one's
// URL, shapes the payload and writes the Delivery records.
package match

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
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
	var (
		out   []*kgo.Record
		now   time.Time
		shape = newShaper(&ev, doc)
	)
	for _, e := range buf {
		if !e.Matches(doc) {
			continue
		}
		if now.IsZero() {
			now = m.Now()
		}
		payload, err := shape.body(e)
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
		out = append(out, &kgo.Record{Topic: m.Topics.Deliveries, Key: e.Key, Value: value, Context: r.Context})
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

// Shape builds the request body of an event for one subscription; doc is
// the event's Document. With payload "changed", an update event (one that
// lists changed fields or carries previous values) sends only the changed
// top-level fields of data that it still has, plus the record's id (data's
// id, else the event's subject); every other event, such as a create or a
// delete, sends all fields. The subscription's metadata rides along.
func Shape(ev *record.Event, doc condition.Document, e *index.Entry) ([]byte, error) {
	return newShaper(ev, doc).body(e)
}

// shaper builds the bodies of one event. The parts every subscription
// shares are encoded once: the envelope up to data, and the changed-only
// data when some subscription asks for it.
type shaper struct {
	ev      *record.Event
	doc     condition.Document
	head    []byte          // {"id":...,"subject":...,"data":
	changed json.RawMessage // changed-only data; nil: send all fields
	err     error
	done    bool // changed and err are computed
}

func newShaper(ev *record.Event, doc condition.Document) *shaper {
	return &shaper{ev: ev, doc: doc}
}

func (s *shaper) body(e *index.Entry) ([]byte, error) {
	if s.head == nil {
		head, err := json.Marshal(Body{ID: s.ev.ID, Type: s.ev.Type, Timestamp: s.ev.OccurredAt.UTC(), Subject: s.ev.Subject})
		if err != nil {
			return nil, err
		}
		// Body's data field is last but one, and metadata is omitted:
		// cut at data and let each subscription finish the object.
		s.head = head[:len(head)-len(`null}`)]
	}
	data := json.RawMessage(s.ev.Data)
	if e.Sub.Payload == "changed" {
		if !s.done {
			s.changed, s.err = changedData(s.ev, s.doc)
			s.done = true
		}
		if s.err != nil {
			return nil, s.err
		}
		if s.changed != nil {
			data = s.changed
		}
	}
	b := make([]byte, 0, len(s.head)+len(data)+len(e.Metadata)+len(`,"metadata":}`))
	b = append(append(b, s.head...), data...)
	if e.Metadata != nil {
		b = append(append(b, `,"metadata":`...), e.Metadata...)
	}
	return append(b, '}'), nil
}

// changedData is the changed fields of an update event's data plus the
// record id, as a JSON object, or nil when the event is not an update or
// its data is not an object. Values are copied from the event's own JSON,
// so numbers keep their exact digits.
func changedData(ev *record.Event, doc condition.Document) (json.RawMessage, error) {
	data, ok := doc.Root()["data"].(map[string]any)
	if !ok {
		return nil, nil
	}
	fields := changedFields(ev, data, doc.Root()["previous"])
	if fields == nil {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ev.Data), &raw); err != nil {
		return nil, fmt.Errorf("event %s data: %w", ev.ID, err)
	}
	only := make(map[string]json.RawMessage, len(fields)+1)
	for _, f := range fields {
		if v, ok := raw[f]; ok {
			only[f] = v
		}
	}
	if v, ok := raw["id"]; ok {
		only["id"] = v
	} else {
		subject, err := json.Marshal(ev.Subject)
		if err != nil {
			return nil, err
		}
		only["id"] = subject
	}
	return json.Marshal(only)
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
	slices.Sort(fields)
	return fields
}
