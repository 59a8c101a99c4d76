package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/services/ingest/internal/immediate"
)

// delivery is how POST /v1/events delivers: queue mode (the pipeline,
// answered once Kafka has the event) or immediate mode (?mode=immediate:
// the request also delivers it, waiting up to wait; package immediate).
type delivery struct {
	immediate bool
	wait      time.Duration
}

// deliveryMode reads ?mode= and ?wait_ms=. Immediate mode takes one
// event, not a batch, and needs a server that has it.
func (s *Server) deliveryMode(r *http.Request, batch bool) (delivery, []problem.FieldError) {
	q := r.URL.Query()
	var (
		m    delivery
		errs []problem.FieldError
	)
	switch q.Get("mode") {
	case "", "queue":
	case "immediate":
		m.immediate, m.wait = true, immediate.DefaultWait
		switch {
		case batch:
			errs = append(errs, problem.FieldError{Field: "mode", Detail: "immediate mode takes one event, not a batch"})
		case s.Immediate == nil:
			errs = append(errs, problem.FieldError{Field: "mode", Detail: "immediate mode is not enabled on this server"})
		}
	default:
		errs = append(errs, problem.FieldError{Field: "mode", Detail: "must be queue or immediate"})
	}
	if q.Has("wait_ms") {
		n, err := strconv.Atoi(q.Get("wait_ms"))
		switch {
		case err != nil || n < 1 || n > int(immediate.MaxWait.Milliseconds()):
			errs = append(errs, problem.FieldError{Field: "wait_ms", Detail: "must be a whole number from 1 to " + strconv.FormatInt(immediate.MaxWait.Milliseconds(), 10)})
		case !m.immediate:
			errs = append(errs, problem.FieldError{Field: "wait_ms", Detail: "only with mode=immediate"})
		default:
			m.wait = time.Duration(n) * time.Millisecond
		}
	}
	return m, errs
}

// immediateAnswer is the answer of an immediate POST /v1/events.
type immediateAnswer struct {
	ID         string               `json:"id"`
	Duplicate  bool                 `json:"duplicate,omitempty"`
	Deliveries []immediate.Delivery `json:"deliveries"`
}

// answerImmediate delivers a written event's planned deliveries and
// answers with each outcome: 200 when all ended, 202 when some are
// pending or queued. A duplicate (plan nil) was delivered, or is being
// delivered, by its first request: 202 with no deliveries.
func (s *Server) answerImmediate(w http.ResponseWriter, r *http.Request, ev acceptedEvent, plan *immediate.Plan, m delivery) {
	if plan == nil {
		writeJSON(w, http.StatusAccepted, immediateAnswer{ID: ev.ID, Duplicate: ev.Duplicate, Deliveries: []immediate.Delivery{}})
		return
	}
	ds := plan.Deliver(r.Context(), m.wait)
	if ds == nil {
		ds = []immediate.Delivery{}
	}
	writeJSON(w, immediate.Status(ds), immediateAnswer{ID: ev.ID, Deliveries: ds})
}
