package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
)

// subscriptionView is a subscription as the API shows it: credentials are
// never shown, the signing secret only on create and rotate.
type subscriptionView struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	Description        string            `json:"description"`
	URL                string            `json:"url"`
	EventTypes         []string          `json:"event_types"`
	Condition          json.RawMessage   `json:"condition,omitempty"`
	Expression         string            `json:"expression,omitempty"`
	Payload            string            `json:"payload"`
	Headers            map[string]string `json:"headers"`
	Auth               *authView         `json:"auth,omitempty"`
	RateLimitPerSecond int32             `json:"rate_limit_per_second"`
	TimeoutMS          int32             `json:"timeout_ms"`
	MaxAttempts        int32             `json:"max_attempts"`
	MaxInFlight        int32             `json:"max_in_flight"`
	Ordered            bool              `json:"ordered"`
	Enabled            bool              `json:"enabled"`
	DisabledReason     string            `json:"disabled_reason,omitempty"`
	Metadata           map[string]string `json:"metadata"`
	Routes             []routeView       `json:"routes"`
	AllowedHosts       []string          `json:"allowed_hosts"`
	Batch              *batchInput       `json:"batch,omitempty"`
	Derive             []deriveView      `json:"derive"`
	Compression        string            `json:"compression"`
	ClientTLS          *clientTLSView    `json:"client_tls,omitempty"`
	AlertEmails        []string          `json:"alert_emails"`
	CreatedAt          time.Time         `json:"created_at"`
	UpdatedAt          time.Time         `json:"updated_at"`
	Secret             string            `json:"secret,omitempty"`
	// Health is shown by GET (one and the list), not by writes.
	Health *healthView `json:"health,omitempty"`
}

type authView struct {
	Type     string `json:"type"`
	Username string `json:"username,omitempty"`
}

type routeView struct {
	Condition json.RawMessage `json:"condition"`
	URL       string          `json:"url"`
}

// deriveView is a derived field as the API takes and shows it. Default is
// any JSON value, null included; left out, there is none.
type deriveView struct {
	Field      string          `json:"field"`
	Expression string          `json:"expression"`
	Default    json.RawMessage `json:"default,omitempty"`
}

func viewOf(s *record.Subscription) subscriptionView {
	v := subscriptionView{
		ID: s.ID, Name: s.Name, Description: s.Description, URL: s.URL, EventTypes: s.EventTypes,
		Payload: s.Payload, Headers: s.Headers, RateLimitPerSecond: s.RateLimitPerSecond,
		TimeoutMS: s.TimeoutMS, MaxAttempts: s.MaxAttempts, MaxInFlight: s.MaxInFlight, Ordered: s.Ordered, Enabled: s.Enabled,
		DisabledReason: s.DisabledReason, Metadata: s.Metadata, AllowedHosts: s.AllowedHosts,
		CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(), Routes: []routeView{}, Derive: []deriveView{},
		Compression: s.Compression, ClientTLS: clientTLSViewOf(s.ClientTLS),
		AlertEmails: s.AlertEmails,
	}
	if v.AlertEmails == nil {
		v.AlertEmails = []string{} // records written before alert_emails existed
	}
	if s.Condition != nil {
		v.Condition = json.RawMessage(*s.Condition)
	}
	if s.Expression != nil {
		v.Expression = *s.Expression
	}
	if s.Auth != nil {
		v.Auth = &authView{Type: s.Auth.Type, Username: s.Auth.Username}
	}
	for _, r := range s.Routes {
		v.Routes = append(v.Routes, routeView{Condition: json.RawMessage(r.Condition), URL: r.URL})
	}
	if s.Batch != nil {
		v.Batch = &batchInput{MaxEvents: s.Batch.MaxEvents, MaxWaitMS: s.Batch.MaxWaitMS}
	}
	for _, d := range s.Derive {
		dv := deriveView{Field: d.Field, Expression: d.Expression}
		if d.DefaultJSON != nil {
			dv.Default = json.RawMessage(*d.DefaultJSON)
		}
		v.Derive = append(v.Derive, dv)
	}
	return v
}

// newSubscription is a subscription of tenant with every default set.
func newSubscription(subID, tenant string, created time.Time) *record.Subscription {
	return &record.Subscription{
		ID: subID, Tenant: tenant, Enabled: true, Payload: subscription.DefaultPayload,
		TimeoutMS: subscription.DefaultTimeoutMS, MaxAttempts: subscription.DefaultMaxAttempts,
		Headers: map[string]string{}, Metadata: map[string]string{}, Routes: []record.Route{},
		AllowedHosts: []string{}, Derive: []record.Derive{}, AlertEmails: []string{}, CreatedAt: created, UpdatedAt: created,
	}
}

// versionAfter is the updated_at of a subscription version replacing the
// one updated at prev: now, and later than prev even with clocks that
// disagree. It names the version: Hookline's status of the endpoint
// applies to the version it names only (pkg/subscription), so a new
// version must never carry an older one's updated_at.
func (s *Server) versionAfter(prev time.Time) time.Time {
	now, floor := s.now(), prev.UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	if now.Before(floor) {
		return floor
	}
	return now
}

// now is the current time at the precision the subscription record keeps
// (timestamp-millis), so an answer shows what a later GET will.
func (s *Server) now() time.Time { return s.Now().UTC().Truncate(time.Millisecond) }

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	var in subscriptionInput
	if errs := decodeStrict(body, &in); errs != nil {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	now := s.now()
	sub := newSubscription(id.New("sub"), tenantOf(r), now)
	if errs := s.apply(&in, sub, true); len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	secret, whsec, err := signature.NewSecret()
	if err != nil {
		s.unavailable(w, r, "randomness", err)
		return
	}
	if in.Secret != nil { // validated by apply
		secret, _ = signature.ParseSecret(*in.Secret)
		whsec = secret.String()
	}
	sub.Secrets = []record.Secret{{Sealed: s.Box.Seal([]byte(whsec), []byte(sub.ID)), CreatedAt: now}}
	if err := s.writeSubscription(r, sub.ID, sub); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	v := viewOf(sub)
	v.Secret = whsec
	w.Header().Set("Location", "/v1/subscriptions/"+sub.ID)
	writeJSON(w, http.StatusCreated, v)
}

// updateInput is a PUT or PATCH body. It may be a subscription as GET
// shows it: the read-only fields are accepted, and an id must be the one
// in the URL.
type updateInput struct {
	subscriptionInput
	ID             *string         `json:"id"`
	CreatedAt      json.RawMessage `json:"created_at"`
	UpdatedAt      json.RawMessage `json:"updated_at"`
	DisabledReason json.RawMessage `json:"disabled_reason"`
}

// readUpdate reads the body of a PUT or PATCH of sub.
func (s *Server) readUpdate(w http.ResponseWriter, r *http.Request, sub *record.Subscription) (*updateInput, bool) {
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return nil, false
	}
	var in updateInput
	if errs := decodeStrict(body, &in); errs != nil {
		problem.Write(w, r, problem.Invalid(errs...))
		return nil, false
	}
	if in.ID != nil && *in.ID != sub.ID {
		problem.Write(w, r, problem.Invalid(problem.FieldError{Field: "id", Detail: "differs from the subscription in the URL; ids cannot change"}))
		return nil, false
	}
	return &in, true
}

// replaceSubscription is PUT: the body is the whole new subscription, fields
// left out take their defaults. The id, tenant, creation time and signing
// secrets stay.
func (s *Server) replaceSubscription(w http.ResponseWriter, r *http.Request) {
	old, ok := s.lookup(w, r)
	if !ok {
		return
	}
	in, ok := s.readUpdate(w, r, old)
	if !ok {
		return
	}
	next := newSubscription(old.ID, old.Tenant, old.CreatedAt)
	next.Secrets, next.Auth = old.Secrets, old.Auth // the stored credential stays if the body's auth leaves it out
	if in.Auth == nil {
		next.Auth = nil // left out of a full replace: no credential
	}
	if in.ClientTLS != nil {
		next.ClientTLS = old.ClientTLS // the stored key stays if the body's client_tls leaves it out
	}
	if in.Enabled != nil && !*in.Enabled {
		next.DisabledReason = old.DisabledReason
	}
	var errs []problem.FieldError
	if in.Secret != nil {
		errs = append(errs, problem.FieldError{Field: "secret", Detail: "can be set only on create; use POST /v1/subscriptions/{id}/secrets/rotate"})
		in.Secret = nil
	}
	s.update(w, r, old.UpdatedAt, next, append(errs, s.apply(&in.subscriptionInput, next, true)...))
}

// patchSubscription is PATCH: only the fields present change; JSON null
// clears an optional object (condition, auth, batch).
func (s *Server) patchSubscription(w http.ResponseWriter, r *http.Request) {
	old, ok := s.lookup(w, r)
	if !ok {
		return
	}
	in, ok := s.readUpdate(w, r, old)
	if !ok {
		return
	}
	next := *old // apply replaces fields, never mutates the view's maps and slices
	s.update(w, r, old.UpdatedAt, &next, s.apply(&in.subscriptionInput, &next, false))
}

// update writes a changed subscription, replacing the version updated at
// prevUpdatedAt, and answers with it.
func (s *Server) update(w http.ResponseWriter, r *http.Request, prevUpdatedAt time.Time, next *record.Subscription, errs []problem.FieldError) {
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	next.UpdatedAt = s.versionAfter(prevUpdatedAt)
	if err := s.writeSubscription(r, next.ID, next); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(next))
}

// writeSubscription produces the new state (nil: a tombstone) and waits
// until this instance's view has read it, so the caller reads its write.
func (s *Server) writeSubscription(r *http.Request, id string, sub *record.Subscription) error {
	rec := &kgo.Record{Topic: s.Topics.Subscriptions, Key: []byte(id)}
	if sub != nil {
		value, err := s.Codecs.Subscription.Marshal(sub)
		if err != nil {
			return err
		}
		rec.Value = value
	}
	res, err := s.Producer.ProduceSync(r.Context(), rec).First()
	if err != nil {
		return err
	}
	return s.View.WaitFor(r.Context(), res.Partition, res.Offset)
}

// lookup finds a subscription of the caller's tenant; another tenant's id
// is answered exactly like an unknown one.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*record.Subscription, bool) {
	if !s.viewReady(w, r) {
		return nil, false
	}
	sub, ok := s.View.Get(r.PathValue("id"))
	if !ok || sub.Tenant != tenantOf(r) || !visible(r, sub.ID) {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no subscription "+r.PathValue("id")))
		return nil, false
	}
	return sub, true
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	if sub, ok := s.lookup(w, r); ok {
		v := []subscriptionView{viewOf(sub)}
		s.addHealth(r, v)
		writeJSON(w, http.StatusOK, v[0])
	}
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if err := s.writeSubscription(r, sub.ID, nil); err != nil {
		s.unavailable(w, r, "Kafka", err)
		return
	}
	// Hookline's status of the endpoint, if any, goes with it: it applies
	// to this subscription only, and nothing else would remove it. Only
	// after the subscription's tombstone, so a failure here leaves an
	// orphan status that nothing reads, never a subscription without the
	// status that disabled it.
	status := &kgo.Record{Topic: s.Topics.EndpointStatus, Key: []byte(sub.ID)}
	if err := s.Producer.ProduceSync(r.Context(), status).FirstErr(); err != nil {
		s.Log.Warn().Err(err).Str("subscription", sub.ID).Msg("endpoint status of a deleted subscription left behind")
	}
	w.WriteHeader(http.StatusNoContent)
}

// viewReady answers 503 while the view is still reading the topic at
// startup: until then an existing subscription would look unknown.
func (s *Server) viewReady(w http.ResponseWriter, r *http.Request) bool {
	if err := s.View.Ready(); err != nil {
		s.unavailable(w, r, "the subscriptions view", err)
		return false
	}
	return true
}

// decodeStrict decodes one JSON object and refuses unknown fields, and
// null, which encoding/json would read as an empty object: a PATCH of
// null would otherwise change nothing and answer 200.
func decodeStrict(body []byte, v any) []problem.FieldError {
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return []problem.FieldError{{Field: "", Detail: "must be a JSON object, not null"}}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON value")
	}
	if err != nil {
		return []problem.FieldError{problem.JSONError(err)}
	}
	return nil
}
