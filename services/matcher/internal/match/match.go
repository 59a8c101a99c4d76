// Package match turns one event into its deliveries: it finds the
// subscriptions whose event types and conditions match, picks each one's
// URL, shapes the payload and writes the Delivery records.
package match

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
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

// MaxDeliveryBytes is the largest Delivery value produced: under the 1 MB
// a Kafka broker and franz-go accept per record batch by default, less room
// for the key and headers. A larger delivery would fail its transaction
// on every retry and stall the partition, so its event is rejected instead.
const MaxDeliveryBytes = 1_000_000 - 8<<10

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
		target, urlErr := e.URL(doc)
		d := record.Delivery{
			ID:             id.Delivery(ev.ID, e.Sub.ID),
			Tenant:         ev.Tenant,
			SubscriptionID: e.Sub.ID,
			EventID:        ev.ID,
			EventType:      ev.Type,
			URL:            target,
			Payload:        payload,
			CreatedAt:      now,
			EventTime:      ev.OccurredAt,
		}
		value, err := m.Codecs.Delivery.Marshal(&d)
		if err == nil && len(value) > MaxDeliveryBytes {
			err = fmt.Errorf("delivery to %s is %d bytes, more than %d", e.Sub.ID, len(value), MaxDeliveryBytes)
		}
		if err != nil {
			return []*kgo.Record{m.reject(r, err)}, buf
		}
		topic := m.Topics.Deliveries
		if urlErr != nil {
			// No URL to send to: dead-letter it with the reason, visibly.
			d.URL, d.LastError = "", urlErr.Error()
			if value, err = m.Codecs.Delivery.Marshal(&d); err != nil {
				return []*kgo.Record{m.reject(r, err)}, buf
			}
			topic = m.Topics.DLQ
		}
		out = append(out, &kgo.Record{Topic: topic, Key: e.Key, Value: value, Context: r.Context})
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
func Shape(ev *record.Event, doc condition.Document, e *index.Entry) (string, error) {
	return newShaper(ev, doc).body(e)
}

// shaper builds the bodies of one event. The parts every subscription
// shares are encoded once: the envelope up to data, and the changed-only
// data when some subscription asks for it.
type shaper struct {
	ev      *record.Event
	doc     condition.Document
	head    []byte // {"id":...,"subject":...,"data":
	changed string // changed-only data; empty: send all fields
	err     error
	done    bool // changed and err are computed
}

func newShaper(ev *record.Event, doc condition.Document) *shaper {
	return &shaper{ev: ev, doc: doc}
}

// body is the JSON of Body, written by hand: it is built for every
// delivery, and data is the event's own JSON, already validated by
// Document.
func (s *shaper) body(e *index.Entry) (string, error) {
	if s.head == nil {
		b := append(make([]byte, 0, 128), `{"id":`...)
		b = appendString(b, s.ev.ID)
		b = appendString(append(b, `,"type":`...), s.ev.Type)
		b = s.ev.OccurredAt.UTC().AppendFormat(append(b, `,"timestamp":"`...), time.RFC3339Nano)
		b = appendString(append(b, `","subject":`...), s.ev.Subject)
		s.head = append(b, `,"data":`...)
	}
	data := s.ev.Data
	if e.Sub.Payload == "changed" {
		if !s.done {
			s.changed, s.err = changedData(s.ev, s.doc)
			s.done = true
		}
		if s.err != nil {
			return "", s.err
		}
		if s.changed != "" {
			data = s.changed
		}
	}
	var b strings.Builder
	b.Grow(len(s.head) + len(data) + len(`,"metadata":}`) + len(e.Metadata))
	b.Write(s.head)
	b.WriteString(data)
	if e.Metadata != nil {
		b.WriteString(`,"metadata":`)
		b.Write(e.Metadata)
	}
	b.WriteByte('}')
	return b.String(), nil
}

// appendString appends s as a JSON string. Printable ASCII, what ids and
// types are made of, is written as it is; anything else is left to
// encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// changedData is the changed fields of an update event's data plus the
// record id, as a JSON object, or "" when the event is not an update or
// its data is not an object. Values are copied from the event's own JSON,
// so numbers keep their exact digits.
func changedData(ev *record.Event, doc condition.Document) (string, error) {
	data, ok := doc.Root()["data"].(map[string]any)
	if !ok {
		return "", nil
	}
	fields := changedFields(ev, data, doc.Root()["previous"])
	if fields == nil {
		return "", nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ev.Data), &raw); err != nil {
		return "", fmt.Errorf("event %s data: %w", ev.ID, err)
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
		only["id"] = appendString(nil, ev.Subject)
	}
	b, err := json.Marshal(only)
	return string(b), err
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
