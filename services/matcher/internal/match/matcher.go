// Package match is the matcher's consume-transform-produce: it turns each
// event record into its deliveries, finding the subscriptions whose event
// types and conditions match and building each one's Delivery with
// pkg/match (which ingest's immediate mode shares), and writes them in
// Kafka transactions.
package match

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/crashguard"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/match"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

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
	// Fresh, when set, returns once the index holds every subscription
	// written before newest, the batch's newest event, or before fetched,
	// when the batch had been fetched (see Fresh); a batch is matched only
	// then.
	Fresh func(ctx context.Context, newest, fetched time.Time) error
	// Gather, when set, extends a batch with the records its partition
	// fetches while the next transaction waits its turn
	// (kafka.Transactor.Gather); a batch is matched only then.
	Gather func(ctx context.Context, b kafka.Batch) kafka.Batch
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
	doc, err := match.Document(ev)
	if err != nil {
		return []*kgo.Record{m.reject(r, err)}
	}
	doc = doc.WithMemo(memo)
	var (
		now   time.Time
		shape = match.NewShaper(ev, doc, m.Metrics.deriveFailer())
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
func (m *Matcher) deliver(r *kgo.Record, ev *record.Event, doc condition.Document, shape *match.Shaper, e *index.Entry, now time.Time, redelivery string) (out []*kgo.Record) {
	d := match.NewDelivery(ev, e, now)
	d.Replay, d.Redelivery = r.Topic == m.Topics.Redeliveries, redelivery
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
	if err := match.Fill(&d, doc, shape, e); err != nil {
		return m.deadLetter(r, e, d, err)
	}
	value, err := match.Encode(m.Codecs, &d)
	if err != nil {
		return m.deadLetter(r, e, d, err)
	}
	out = []*kgo.Record{{Topic: m.Topics.Deliveries, Key: e.Key, Value: value, Context: r.Context}}
	if wire.Immediate(r) && !d.Replay {
		// Ingest may have claimed it (immediate mode): the sender reads
		// claims of marked deliveries only.
		wire.MarkImmediate(out[0])
	}
	return out
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
	if err != nil || len(value) > match.MaxDeliveryBytes {
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
	doc, err := match.Document(&ev)
	if err != nil {
		return []*kgo.Record{m.reject(r, err)}
	}
	return m.deliver(r, &ev, doc, match.NewShaper(&ev, doc, m.Metrics.deriveFailer()), e, m.Now(), redelivery)
}

// reject diverts an event record, unchanged, to the rejected topic with
// the reason (wire.Divert).
func (m *Matcher) reject(r *kgo.Record, err error) *kgo.Record {
	return wire.Divert(r, m.Topics.IngestRejected, err.Error())
}
