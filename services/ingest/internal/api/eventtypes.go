package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/services/ingest/internal/catalog"
	"github.com/hookline/hookline/services/ingest/internal/event"
)

// An event type's name is an event type without wildcards.
var eventTypeName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// eventTypeInput is a create (name required) or a patch: nil means "not
// sent"; a schema of JSON null removes it.
type eventTypeInput struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Validate    *bool           `json:"validate"`
	// Read-only members of an answer, accepted so it can be sent back.
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
}

// eventTypeView is an event type as the API shows it.
type eventTypeView struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Validate    bool            `json:"validate"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

func eventTypeViewOf(e *record.EventType) eventTypeView {
	v := eventTypeView{Name: e.Name, Description: e.Description, Validate: e.Validate, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}
	if e.Schema != nil {
		v.Schema = json.RawMessage(*e.Schema)
	}
	return v
}

type eventTypeList struct {
	Data       []eventTypeView `json:"data"`
	NextCursor *string         `json:"next_cursor"`
}

// catalogReady answers 503 while the catalog is still reading its topic.
func (s *Server) catalogReady(w http.ResponseWriter, r *http.Request) bool {
	if err := s.Catalog.Ready(); err != nil {
		s.unavailable(w, r, "the event type catalog", err)
		return false
	}
	return true
}

// applyEventType validates in and writes it onto et.
func applyEventType(in *eventTypeInput, et *record.EventType, create bool) []problem.FieldError {
	var errs []problem.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, problem.FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
	}
	switch {
	case create && in.Name == nil:
		bad("name", "is required, e.g. order.created")
	case create && (len(*in.Name) > 128 || !eventTypeName.MatchString(*in.Name)):
		bad("name", "must be dot-separated words of letters, digits, _ or -, at most 128 characters, e.g. order.created")
	case !create && in.Name != nil && *in.Name != et.Name:
		bad("name", "differs from the event type in the URL; names cannot change")
	case create:
		et.Name = *in.Name
	}
	if in.Description != nil {
		if !descriptionLength.holds(len(*in.Description)) {
			bad("description", "must be at most %d characters", descriptionLength.Max)
		}
		et.Description = *in.Description
	}
	if in.Schema != nil {
		et.Schema = nil
		if string(in.Schema) != "null" {
			var compact bytes.Buffer
			if err := json.Compact(&compact, in.Schema); err != nil {
				bad("schema", "is not JSON: %v", err)
			} else if _, err := catalog.Compile(compact.String()); err != nil {
				bad("schema", "is not a usable JSON Schema: %v", err)
			} else {
				et.Schema = new(compact.String())
			}
		}
	}
	if in.Validate != nil {
		et.Validate = *in.Validate
	}
	if et.Validate && et.Schema == nil && len(errs) == 0 {
		bad("validate", "needs a schema to validate against")
	}
	return errs
}

func (s *Server) createEventType(w http.ResponseWriter, r *http.Request) {
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	var in eventTypeInput
	if errs := decodeStrict(body, &in); errs != nil {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	now := s.now()
	et := &record.EventType{Tenant: tenantOf(r), CreatedAt: now, UpdatedAt: now}
	if errs := applyEventType(&in, et, true); len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	if !s.catalogReady(w, r) {
		return
	}
	if _, exists := s.Catalog.Get(et.Tenant, et.Name); exists {
		problem.Write(w, r, problem.New(http.StatusConflict, "exists", "event type "+et.Name+" exists; PATCH it"))
		return
	}
	if n := len(s.Catalog.List(et.Tenant)); n >= catalog.MaxTypesPerTen {
		problem.Write(w, r, problem.New(http.StatusConflict, "too-many", fmt.Sprintf("the catalog holds %d event types, the most a tenant may have", n)))
		return
	}
	if err := s.writeEventType(r, et.Key(), et); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	w.Header().Set("Location", "/v1/event-types/"+et.Name)
	writeJSON(w, http.StatusCreated, eventTypeViewOf(et))
}

// lookupEventType finds an event type of the caller's tenant.
func (s *Server) lookupEventType(w http.ResponseWriter, r *http.Request) (*record.EventType, bool) {
	if !s.catalogReady(w, r) {
		return nil, false
	}
	et, ok := s.Catalog.Get(tenantOf(r), r.PathValue("name"))
	if !ok {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no event type "+r.PathValue("name")))
		return nil, false
	}
	return et, true
}

func (s *Server) getEventType(w http.ResponseWriter, r *http.Request) {
	if et, ok := s.lookupEventType(w, r); ok {
		writeJSON(w, http.StatusOK, eventTypeViewOf(et))
	}
}

func (s *Server) patchEventType(w http.ResponseWriter, r *http.Request) {
	old, ok := s.lookupEventType(w, r)
	if !ok {
		return
	}
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	var in eventTypeInput
	if errs := decodeStrict(body, &in); errs != nil {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	next := *old
	if errs := applyEventType(&in, &next, false); len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	next.UpdatedAt = s.now()
	if err := s.writeEventType(r, next.Key(), &next); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	writeJSON(w, http.StatusOK, eventTypeViewOf(&next))
}

func (s *Server) deleteEventType(w http.ResponseWriter, r *http.Request) {
	et, ok := s.lookupEventType(w, r)
	if !ok {
		return
	}
	if err := s.writeEventType(r, et.Key(), nil); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listEventTypes pages through the tenant's event types by name; the
// cursor is the last name of the previous page.
func (s *Server) listEventTypes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _, errs := pageOf(withoutCursor(q))
	var after string
	if v := q.Get("cursor"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(raw) == 0 {
			errs = append(errs, problem.FieldError{Field: "cursor", Detail: "is not a cursor from a previous page's next_cursor"})
		}
		after = string(raw)
	}
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	if !s.catalogReady(w, r) {
		return
	}
	all := s.Catalog.List(tenantOf(r))
	start := sort.Search(len(all), func(i int) bool { return all[i].Name > after })
	end := min(start+limit, len(all))
	out := eventTypeList{Data: make([]eventTypeView, 0, end-start)}
	for _, et := range all[start:end] {
		out.Data = append(out.Data, eventTypeViewOf(et))
	}
	if end < len(all) {
		c := base64.RawURLEncoding.EncodeToString([]byte(all[end-1].Name))
		out.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, out)
}

// writeEventType produces the new state (nil: a tombstone) and waits until
// this instance's catalog has read it, so the caller reads its write.
func (s *Server) writeEventType(r *http.Request, key string, et *record.EventType) error {
	rec := &kgo.Record{Topic: s.Topics.EventTypes, Key: []byte(key)}
	if et != nil {
		value, err := s.Codecs.EventType.Marshal(et)
		if err != nil {
			return err
		}
		rec.Value = value
	}
	res, err := s.Producer.ProduceSync(r.Context(), rec).First()
	if err != nil {
		return err
	}
	return s.Catalog.WaitFor(r.Context(), res.Partition, res.Offset)
}

// checkEvents validates each event's data against its type's schema when
// the tenant registered the type with validation on. Problems name the
// failing path, under [i]. in a batch.
func (s *Server) checkEvents(tenant string, ins []event.Input, batch bool) ([]problem.FieldError, error) {
	var errs []problem.FieldError
	for i := range ins {
		vs, err := s.Catalog.Check(tenant, ins[i].Type, ins[i].Data)
		if err != nil {
			return nil, err
		}
		prefix := ""
		if batch {
			prefix = fmt.Sprintf("[%d].", i)
		}
		for _, v := range vs {
			errs = append(errs, problem.FieldError{Field: prefix + v.Path, Detail: v.Reason + " (the schema of event type " + ins[i].Type + ")"})
		}
	}
	return errs, nil
}
