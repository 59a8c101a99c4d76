// Package match turns one event into its deliveries: it finds the
// subscriptions whose event types and conditions match, picks each one's
// URL, shapes the payload and writes the Delivery records.
package match

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/crashguard"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/matcher/internal/index"
)

// MaxDeliveryBytes is the largest Delivery value produced: the record limit
// of every Hookline topic and client (wire.MaxRecordBytes) less room for
// the key, the headers and the record batch around it. Every event ingest
// accepts fits, with the subscription's metadata and derived fields
// (TestLargestEventFits); a larger delivery would fail its transaction on
// every retry and stall the partition, so it is dead-lettered instead.
const MaxDeliveryBytes = wire.MaxRecordBytes - 16<<10

// maxReasonBytes bounds the reason a dead letter carries.
const maxReasonBytes = 4 << 10

// Matcher matches events against the index.
type Matcher struct {
	Index   *index.Index
	Codecs  *record.Codecs
	Topics  wire.Topics
	Now     func() time.Time
	Metrics *Metrics // nil: not counted
	// Guard counts crashes per partition and offset so that a record that
	// kills the process is processed alone and then quarantined; nil: no
	// crash protection.
	Guard *crashguard.Guard
	// Fault, when set, is called for every event (e nil) and each of its
	// candidate subscriptions before their work: tests make it panic or
	// kill the process to check that one event cannot stop the matcher.
	Fault func(ev *record.Event, e *index.Entry)
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
// when it cannot be read.
func (m *Matcher) Process(r *kgo.Record) []*kgo.Record {
	return m.ProcessBatch([]*kgo.Record{r})[0]
}

// ProcessBatch is Process for the records of one partition in a poll: it
// returns what each record yields, in the records' order. It matches the
// events grouped by tenant and event type, though: the index of thousands
// of subscriptions is far larger than the CPU caches, and matching a
// tenant's events one after another reads its subscriptions from memory
// once for the group rather than once per event, which cut the CPU per
// event by a fifth to a third in BenchmarkProcess.
func (m *Matcher) ProcessBatch(recs []*kgo.Record) [][]*kgo.Record {
	if len(recs) > 0 && recs[0].Topic == m.Topics.Redeliveries {
		out := make([][]*kgo.Record, len(recs))
		for i, r := range recs {
			out[i] = m.redeliver(r)
		}
		return out
	}
	out := make([][]*kgo.Record, len(recs))
	events := make([]record.Event, len(recs))
	order := make([]int, 0, len(recs))
	for i, r := range recs {
		if err := m.Codecs.Event.Unmarshal(r.Value, &events[i]); err != nil {
			out[i] = []*kgo.Record{m.reject(r, err)}
			continue
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(strings.Compare(events[a].Tenant, events[b].Tenant), strings.Compare(events[a].Type, events[b].Type), a-b)
	})
	var memo condition.Memo
	for _, i := range order {
		out[i] = m.match(recs[i], &events[i], &memo)
	}
	return out
}

// match returns the deliveries of one decoded event, using memo for its
// conditions' lookups. A panic in the event's own work (decoding it,
// finding its candidates) diverts the event to the rejected topic with
// the reason; one in a subscription's work dead-letters that
// subscription's delivery, and the event's other subscriptions get theirs.
func (m *Matcher) match(r *kgo.Record, ev *record.Event, memo *condition.Memo) (out []*kgo.Record) {
	defer func() {
		if p := recover(); p != nil {
			m.Metrics.recovered("event")
			out = []*kgo.Record{m.reject(r, fmt.Errorf("the matcher panicked on this event: %v", p))}
		}
	}()
	if m.Fault != nil {
		m.Fault(ev, nil)
	}
	candidates := m.Index.Candidates(ev.Tenant, ev.Type)
	if len(candidates) == 0 {
		return nil
	}
	doc, err := Document(ev)
	if err != nil {
		return []*kgo.Record{m.reject(r, err)}
	}
	doc = doc.WithMemo(memo)
	var (
		now   time.Time
		shape = newShaper(ev, doc, m.Metrics)
	)
	for _, e := range candidates {
		if now.IsZero() {
			now = m.Now()
		}
		out = append(out, m.deliver(r, ev, doc, shape, e, now, "")...)
	}
	return out
}

// deliver returns what one candidate subscription gets from an event:
// nothing when it does not match, its Delivery for hookline.deliveries,
// or, when no delivery can be built for it (no URL, a body over the
// record limit, a panic), a dead letter on hookline.dlq with the reason
// and an attempt on the delivery log saying so.
//
// A record of hookline.redeliveries names its subscription, which gets
// the delivery whether or not it matches; redelivery, when set, marks a
// re-run asked for from the history (Delivery.Redelivery).
func (m *Matcher) deliver(r *kgo.Record, ev *record.Event, doc condition.Document, shape *shaper, e *index.Entry, now time.Time, redelivery string) (out []*kgo.Record) {
	d := record.Delivery{
		ID:             id.Delivery(ev.ID, e.Sub.ID),
		Tenant:         ev.Tenant,
		SubscriptionID: e.Sub.ID,
		EventID:        ev.ID,
		EventType:      ev.Type,
		CreatedAt:      now,
		EventTime:      ev.OccurredAt,
		Replay:         r.Topic == m.Topics.Redeliveries,
		Redelivery:     redelivery,
	}
	defer func() {
		if p := recover(); p != nil {
			m.Metrics.recovered("subscription")
			out = m.deadLetter(r, e, d, fmt.Errorf("the matcher panicked building this delivery: %v", p))
		}
	}()
	if m.Fault != nil {
		m.Fault(ev, e)
	}
	if r.Topic != m.Topics.Redeliveries && !e.Matches(doc) {
		return nil
	}
	payload, err := shape.body(e)
	if err != nil {
		return m.deadLetter(r, e, d, err)
	}
	d.Payload = payload
	// The sender posts to the subscription's url or this route as they
	// are at each attempt, not to the URL found now.
	d.ResolveURL = true
	d.URL, d.Route, err = e.Target(doc)
	if err != nil {
		// No URL to send to. The route is kept, so that a replay after
		// the owner fixed the subscription finds it.
		d.URL = ""
		return m.deadLetter(r, e, d, err)
	}
	value, err := m.Codecs.Delivery.Marshal(&d)
	if err == nil && len(value) > MaxDeliveryBytes {
		err = fmt.Errorf("the delivery is %d bytes, more than the %d a record may hold; its body is not kept", len(value), MaxDeliveryBytes)
	}
	if err != nil {
		return m.deadLetter(r, e, d, err)
	}
	return []*kgo.Record{{Topic: m.Topics.Deliveries, Key: e.Key, Value: value, Context: r.Context}}
}

// deadLetter writes d to hookline.dlq with reason, and an attempt 0 (no
// request was made) with outcome dead_lettered to the delivery log, which
// is where a tenant sees what became of a delivery. A body that does not
// fit a record is dropped from the dead letter, which then cannot be
// replayed (dlq.Replay skips it); the event itself stays in
// hookline.events.
func (m *Matcher) deadLetter(r *kgo.Record, e *index.Entry, d record.Delivery, reason error) []*kgo.Record {
	m.Metrics.deadLettered()
	d.LastError = reason.Error()
	if len(d.LastError) > maxReasonBytes {
		d.LastError = d.LastError[:maxReasonBytes]
	}
	value, err := m.Codecs.Delivery.Marshal(&d)
	if err != nil || len(value) > MaxDeliveryBytes {
		d.Payload = ""
		value, err = m.Codecs.Delivery.Marshal(&d)
	}
	if err != nil {
		return []*kgo.Record{m.reject(r, fmt.Errorf("dead letter of %s: %w (%s)", d.ID, err, d.LastError))}
	}
	attempt := record.DeliveryAttempt{
		DeliveryID: d.ID, Tenant: d.Tenant, SubscriptionID: d.SubscriptionID, EventID: d.EventID,
		EventType: d.EventType, URL: d.URL, Attempt: 0, StartedAt: d.CreatedAt,
		Outcome: record.OutcomeDeadLettered, Error: d.LastError,
	}
	logValue, err := m.Codecs.Attempt.Marshal(&attempt)
	if err != nil {
		return []*kgo.Record{m.reject(r, fmt.Errorf("attempt of %s: %w (%s)", d.ID, err, d.LastError))}
	}
	return []*kgo.Record{
		{Topic: m.Topics.DLQ, Key: e.Key, Value: value, Context: r.Context},
		{Topic: m.Topics.DeliveryLog, Key: []byte(d.ID), Value: logValue, Context: r.Context},
	}
}

// redeliver handles a record of hookline.redeliveries: an event the API
// sends again to the one subscription its header names, shaped for that
// subscription (payload mode, derived fields, metadata, routes) as a
// match would be. The caller named the subscription, so its event types
// and condition are not evaluated. A subscription no longer enabled, or
// of another tenant, is not sent to: the record goes to the rejected
// topic with the reason.
func (m *Matcher) redeliver(r *kgo.Record) (out []*kgo.Record) {
	defer func() {
		if p := recover(); p != nil {
			m.Metrics.recovered("event")
			out = []*kgo.Record{m.reject(r, fmt.Errorf("the matcher panicked on this event: %v", p))}
		}
	}()
	var ev record.Event
	if err := m.Codecs.Event.Unmarshal(r.Value, &ev); err != nil {
		return []*kgo.Record{m.reject(r, err)}
	}
	var subID, redelivery string
	for _, h := range r.Headers {
		switch h.Key {
		case wire.HeaderSubscription:
			subID = string(h.Value)
		case wire.HeaderRedelivery:
			redelivery = string(h.Value)
		}
	}
	e := m.Index.Entry(ev.Tenant, subID)
	if e == nil {
		return []*kgo.Record{m.reject(r, fmt.Errorf("redelivery of event %s: subscription %q of tenant %s is not enabled (deleted or disabled)", ev.ID, subID, ev.Tenant))}
	}
	doc, err := Document(&ev)
	if err != nil {
		return []*kgo.Record{m.reject(r, err)}
	}
	return m.deliver(r, &ev, doc, newShaper(&ev, doc, m.Metrics), e, m.Now(), redelivery)
}

// reject diverts an event record, unchanged, to the rejected topic with
// the reason (wire.Divert).
func (m *Matcher) reject(r *kgo.Record, err error) *kgo.Record {
	return wire.Divert(r, m.Topics.IngestRejected, err.Error())
}

// Document decodes an event once for every condition evaluated on it.
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
	return newShaper(ev, doc, nil).body(e)
}

// shaper builds the bodies of one event. The parts subscriptions share
// are encoded once: the envelope up to data, the changed-only data when
// some subscription asks for it, and the bodies that add nothing to these.
type shaper struct {
	ev      *record.Event
	doc     condition.Document
	metrics *Metrics
	head    []byte // {"id":...,"subject":...,"data":
	changed string // changed-only data; empty: send all fields
	err     error
	done    bool // changed and err are computed

	full, changedOnly string // bodies without metadata or derived fields; "" until built
}

func newShaper(ev *record.Event, doc condition.Document, metrics *Metrics) *shaper {
	return &shaper{ev: ev, doc: doc, metrics: metrics}
}

// body is the JSON of Body, written by hand: it is built for every
// delivery, and data is the event's own JSON, already validated by
// Document. A body without metadata or derived fields is the same for
// every subscription with the same data, so it is built once and shared.
func (s *shaper) body(e *index.Entry) (string, error) {
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
func (s *shaper) build(data string, metadata json.RawMessage) string {
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
func (s *shaper) derive(data string, fields []*condition.Derived) (string, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(data), &obj) != nil || obj == nil {
		// Not an object (ingest refuses such data): nowhere to set them.
		for range fields {
			s.metrics.deriveFailed("omitted")
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
			s.metrics.deriveFailed("omitted")
			continue
		}
		if err != nil {
			s.metrics.deriveFailed("default")
			v = d.Default
		}
		if !setPath(obj, d.Path, v) {
			s.metrics.deriveFailed("omitted")
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
