package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/ingest/internal/event"
	"github.com/hookline/hookline/services/ingest/internal/immediate"
)

type acceptedEvent struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// postEvents accepts one event or a batch, all or nothing: it answers 202
// only after Kafka has acknowledged every record (acks=all). An event whose
// producer-chosen id was accepted before is answered duplicate:true and not
// written again.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	// Not readJSON: event.Parse refuses deep nesting itself, and a second
	// pass over every body cost about 5% of this handler's CPU.
	p := jsonContent(r)
	var body []byte
	if p == nil {
		body, p = s.readBody(w, r)
	}
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	ins, batch, errs := event.Parse(body)
	mode, modeErrs := s.deliveryMode(r, batch) // immediate mode (immediate.go)
	errs = append(errs, modeErrs...)
	for i := range ins {
		prefix := ""
		if batch {
			prefix = fmt.Sprintf("[%d].", i)
		}
		if ins[i].Tenant != "" {
			errs = append(errs, problem.FieldError{Field: prefix + "tenant", Detail: "is set by your API key; leave it out"})
		}
		errs = append(errs, ins[i].Validate(prefix)...)
	}
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	if s.Catalog != nil {
		if !s.catalogReady(w, r) {
			return
		}
		errs, err := s.checkEvents(tenantOf(r), ins, batch)
		if err != nil {
			s.Log.Error().Err(err).Msg("event type schema")
			problem.Write(w, r, problem.New(http.StatusInternalServerError, "schema", "the event type's schema cannot be used; ask the operator"))
			return
		}
		if len(errs) > 0 {
			problem.Write(w, r, problem.Invalid(errs...))
			return
		}
	}

	tenant, now := tenantOf(r), s.Now()
	keys := make([]string, len(ins))
	for i := range ins {
		keys[i] = ins[i].DedupeKey(tenant)
	}
	dup, err := event.Duplicates(r.Context(), s.Events, keys)
	if err != nil {
		s.unavailable(w, r, "Redis", err)
		return
	}
	out := make([]acceptedEvent, len(ins))
	var recs []*kgo.Record
	var written []string
	var plan *immediate.Plan // claimed before the event is written (package immediate)
	for i := range ins {
		ev := ins[i].Record(tenant, now)
		out[i] = acceptedEvent{ID: ev.ID, Duplicate: dup[i]}
		if dup[i] {
			continue
		}
		value, err := s.Codecs.Event.Marshal(&ev)
		if err != nil {
			s.unavailable(w, r, "encoding", err)
			return
		}
		if mode.immediate {
			plan = s.Immediate.Plan(r.Context(), &ev, mode.wait)
		}
		rec := &kgo.Record{Topic: s.Topics.Events, Key: []byte(ev.Subject), Value: value, Context: r.Context()}
		if mode.immediate {
			// Its deliveries may be claimed: the sender reads the
			// claims of marked deliveries only (wire.HeaderImmediate).
			wire.MarkImmediate(rec)
		}
		recs = append(recs, rec)
		if keys[i] != "" {
			written = append(written, keys[i])
		}
	}
	if err := s.produceEvents(r.Context(), recs).FirstErr(); err != nil {
		plan.Abandon(r.Context())
		if tooLarge(err) {
			// Permanent: retrying cannot help, so never 503. Only a topic
			// whose record limit was not raised (docs/operations.md) and
			// a body near the limit get here.
			s.Log.Error().Err(err).Msg("an event is larger than the events topic takes; raise its max.message.bytes")
			problem.Write(w, r, problem.New(http.StatusRequestEntityTooLarge, "body-too-large",
				"an event is larger than the events topic accepts: "+err.Error()))
			return
		}
		s.unavailable(w, r, "Kafka", err)
		return
	}
	if mode.immediate {
		// The attempts go out while the ids are remembered, not after.
		plan.Start(r.Context())
	}
	s.markWritten(r.Context(), written)
	if mode.immediate {
		s.answerImmediate(w, r, out[0], plan, mode)
		return
	}
	if batch {
		writeJSON(w, http.StatusAccepted, map[string]any{"events": out})
		return
	}
	writeJSON(w, http.StatusAccepted, out[0])
}

// produceEvents writes an event request's records and waits for Kafka's
// acknowledgement of each, sharing produce requests with the requests
// concurrent with it when EventWrites is set.
func (s *Server) produceEvents(ctx context.Context, recs []*kgo.Record) kgo.ProduceResults {
	if s.EventWrites != nil {
		return s.EventWrites.ProduceSync(ctx, recs...)
	}
	return s.Producer.ProduceSync(ctx, recs...)
}

// tooLarge reports whether a produce failed because a record exceeds a
// limit of the client or the topic: a permanent condition.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// markWritten remembers the ids just written. The events are in Kafka
// whatever happens here: a failure only weakens deduplication of a retry,
// so it is logged, not answered.
func (s *Server) markWritten(ctx context.Context, keys []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.Events.Mark(ctx, keys...); err != nil {
		s.Log.Warn().Err(err).Int("events", len(keys)).Msg("remember event ids")
	}
}
