package api

import (
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/services/ingest/internal/event"
)

type acceptedEvent struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// postEvents accepts one event or a batch, all or nothing: it answers 202
// only after Kafka has acknowledged every record (acks=all).
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	ins, batch, errs := event.Parse(body)
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

	tenant, now := tenantOf(r), s.Now()
	out := make([]acceptedEvent, len(ins))
	var recs []*kgo.Record
	var claimed []string
	release := func() {
		for _, k := range claimed {
			if err := s.Events.Release(r.Context(), k); err != nil {
				s.Log.Warn().Err(err).Msg("release event id")
			}
		}
	}
	for i := range ins {
		ev := ins[i].Record(tenant, now)
		out[i].ID = ev.ID
		if ins[i].ID != "" { // only producer-chosen ids can repeat
			key := tenant + ":" + ev.ID
			fresh, err := s.Events.Claim(r.Context(), key)
			if err != nil {
				release()
				s.unavailable(w, r, "Redis", err)
				return
			}
			if !fresh {
				out[i].Duplicate = true
				continue
			}
			claimed = append(claimed, key)
		}
		value, err := s.Codecs.Event.Marshal(&ev)
		if err != nil {
			release()
			s.unavailable(w, r, "encoding", err)
			return
		}
		recs = append(recs, &kgo.Record{Topic: s.Topics.Events, Key: []byte(ev.Subject), Value: value})
	}
	if err := s.Producer.ProduceSync(r.Context(), recs...).FirstErr(); err != nil {
		release()
		s.unavailable(w, r, "Kafka", err)
		return
	}
	if batch {
		writeJSON(w, http.StatusAccepted, map[string]any{"events": out})
		return
	}
	writeJSON(w, http.StatusAccepted, out[0])
}
