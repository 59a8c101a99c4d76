// Package match turns one event into what one subscription gets from it:
// whether the subscription's condition holds, the body shaped for it
// (payload mode, derived fields, metadata), the URL or route it goes to,
// and the Delivery record that carries it. The matcher runs it on every
// event of hookline.events; ingest runs the same code for an event posted
// with mode=immediate, so that both build the same delivery, with the
// same id, for the same subscription.
package match

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// MaxDeliveryBytes is the largest Delivery value produced: the record limit
// of every Hookline topic and client (wire.MaxRecordBytes) less room for
// the key, the headers and the record batch around it. Every event ingest
// accepts fits, with the subscription's metadata and derived fields
// (TestLargestEventFits); a larger delivery would fail its transaction on
// every retry and stall the partition, so it is dead-lettered instead.
const MaxDeliveryBytes = wire.MaxRecordBytes - 16<<10

// Body is the JSON a receiver gets for one event.
type Body struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Subject   string            `json:"subject"`
	Data      json.RawMessage   `json:"data"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// NewDelivery is the delivery of ev to e's subscription before its body
// and target are known (Fill): its id is id.Delivery(event, subscription),
// the same wherever and however often it is built.
func NewDelivery(ev *record.Event, e *index.Entry, now time.Time) record.Delivery {
	return record.Delivery{
		ID:             id.Delivery(ev.ID, e.Sub.ID),
		Tenant:         ev.Tenant,
		SubscriptionID: e.Sub.ID,
		EventID:        ev.ID,
		EventType:      ev.Type,
		CreatedAt:      now,
		EventTime:      ev.OccurredAt,
	}
}

// Fill shapes d's body for e and finds where it goes. An error says why no
// delivery can be built (no URL, a derived field that broke the body): the
// matcher dead-letters it. A route is kept even then, so that a replay
// after the owner fixed the subscription finds it.
func Fill(d *record.Delivery, doc condition.Document, shape *Shaper, e *index.Entry) error {
	payload, err := shape.Body(e)
	if err != nil {
		return err
	}
	d.Payload = payload
	// The sender posts to the subscription's url or this route as they
	// are at each attempt, not to the URL found now.
	d.ResolveURL = true
	d.URL, d.Route, err = e.Target(doc)
	if err != nil {
		d.URL = "" // no URL to send to
		return err
	}
	return nil
}

// Encode is d as its record's value, or why it cannot be one (over
// MaxDeliveryBytes).
func Encode(codecs *record.Codecs, d *record.Delivery) ([]byte, error) {
	value, err := codecs.Delivery.Marshal(d)
	if err == nil && len(value) > MaxDeliveryBytes {
		err = fmt.Errorf("the delivery is %d bytes, more than the %d a record may hold; its body is not kept", len(value), MaxDeliveryBytes)
	}
	return value, err
}

func Document(ev *record.Event) (condition.Document, error) {
	data, err := condition.DecodeString(ev.Data)
	if err != nil {
		return condition.Document{}, fmt.Errorf("event %s data: %w", ev.ID, err)
	}
	var previous any
	if ev.Previous != nil {
		if previous, err = condition.DecodeString(*ev.Previous); err != nil {
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
// delete, sends all fields. The subscription's derived fields are then set
// in data, and its metadata rides along.
func Shape(ev *record.Event, doc condition.Document, e *index.Entry) (string, error) {
	return NewShaper(ev, doc, nil).Body(e)
}

// Shaper builds the bodies of one event. The parts subscriptions share
// are encoded once: the envelope up to data, the changed-only data when
// some subscription asks for it, and the bodies that add nothing to these.
type Shaper struct {
	ev  *record.Event
	doc condition.Document
	// deriveFailed counts a derived field that could not be computed, by
	// what the body got instead ("default" or "omitted"); nil: not counted.
	deriveFailed func(fallback string)
	head         []byte // {"id":...,"subject":...,"data":
	changed      string // changed-only data; empty: send all fields
	err          error
	done         bool // changed and err are computed

	full, changedOnly string // bodies without metadata or derived fields; "" until built
}

// NewShaper returns the shaper of ev, whose Document is doc; deriveFailed
// (nil: none) counts the derived fields that could not be computed.
func NewShaper(ev *record.Event, doc condition.Document, deriveFailed func(fallback string)) *Shaper {
	return &Shaper{ev: ev, doc: doc, deriveFailed: deriveFailed}
}

// Body is the JSON of Body, written by hand: it is built for every
// delivery, and data is the event's own JSON, already validated by
// Document. A body without metadata or derived fields is the same for
// every subscription with the same data, so it is built once and shared.
func (s *Shaper) Body(e *index.Entry) (string, error) {
	data, shared := s.ev.Data, &s.full
	if e.Sub.Payload == "changed" {
		if !s.done {
			s.changed, s.err = changedData(s.ev, s.doc)
			s.done = true
		}
		if s.err != nil {
			return "", s.err
		}
		if s.changed != "" {
			data, shared = s.changed, &s.changedOnly
		}
	}
	if len(e.Derived) > 0 {
		var err error
		if data, err = s.derive(data, e.Derived); err != nil {
			return "", err
		}
		shared = nil
	}
	if e.Metadata != nil {
		shared = nil
	}
	if shared != nil && *shared != "" {
		return *shared, nil
	}
	body := s.build(data, e.Metadata)
	if shared != nil {
		*shared = body
	}
	return body, nil
}

// build writes a body around data, with metadata when it is not nil.
func (s *Shaper) build(data string, metadata json.RawMessage) string {
	if s.head == nil {
		b := append(make([]byte, 0, 128), `{"id":`...)
		b = appendString(b, s.ev.ID)
		b = appendString(append(b, `,"type":`...), s.ev.Type)
		b = s.ev.OccurredAt.UTC().AppendFormat(append(b, `,"timestamp":"`...), time.RFC3339Nano)
		b = appendString(append(b, `","subject":`...), s.ev.Subject)
		s.head = append(b, `,"data":`...)
	}
	var b strings.Builder
	b.Grow(len(s.head) + len(data) + len(`,"metadata":}`) + len(metadata))
	b.Write(s.head)
	b.WriteString(data)
	if metadata != nil {
		b.WriteString(`,"metadata":`)
		b.Write(metadata)
	}
	b.WriteByte('}')
	return b.String()
}

// derive returns data with the derived fields set, in order. Each is
// computed from the whole event, whatever the payload mode. A field whose
// expression fails at run time gets its default, or is left out when it
// has none (as is one whose parent in data is not an object); either way
// it is counted and the delivery goes out: a derived field never holds an
// event back.
func (s *Shaper) derive(data string, fields []*condition.Derived) (string, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(data), &obj) != nil || obj == nil {
		// Not an object (ingest refuses such data): nowhere to set them.
		for range fields {
			s.countDerive("omitted")
		}
		return data, nil
	}
	budget := condition.MaxDerivedBytes
	for _, d := range fields {
		v, err := d.Eval(s.doc)
		if err == nil && len(v) > budget {
			err = errDerivedTooLarge
		}
		if err != nil && (d.Default == nil || len(d.Default) > budget) {
			s.countDerive("omitted")
			continue
		}
		if err != nil {
			s.countDerive("default")
			v = d.Default
		}
		if !setPath(obj, d.Path, v) {
			s.countDerive("omitted")
			continue
		}
		budget -= len(v)
	}
	b, err := marshalJSON(obj)
	if err != nil {
		return "", fmt.Errorf("event %s data with derived fields: %w", s.ev.ID, err)
	}
	return string(b), nil
}

// marshalJSON is json.Marshal without its HTML escaping: json.Marshal
// writes each <, > and & of the event's own JSON (in a RawMessage) as a
// six-byte \u escape, so data re-encoded for derived fields or a changed
// payload could grow sixfold past the record limit.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// errDerivedTooLarge is a derived value over what is left of
// condition.MaxDerivedBytes.
var errDerivedTooLarge = errors.New("derived fields larger than their bound")

// setPath sets the member of obj at path to v, creating the objects on the
// way where they are missing or null. It reports false, changing nothing,
// when a member on the way is something other than an object.
func setPath(obj map[string]json.RawMessage, path []string, v json.RawMessage) bool {
	if len(path) == 1 {
		obj[path[0]] = v
		return true
	}
	var child map[string]json.RawMessage
	if raw, ok := obj[path[0]]; ok && json.Unmarshal(raw, &child) != nil {
		return false
	}
	if child == nil {
		child = map[string]json.RawMessage{}
	}
	if !setPath(child, path[1:], v) {
		return false
	}
	b, err := marshalJSON(child)
	if err != nil {
		return false
	}
	obj[path[0]] = b
	return true
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
	b, err := marshalJSON(only)
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

// countDerive counts one failed derived field.
func (s *Shaper) countDerive(fallback string) {
	if s.deriveFailed != nil {
		s.deriveFailed(fallback)
	}
}
