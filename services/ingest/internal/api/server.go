// Package api is ingest's HTTP API: events in, subscriptions managed, and
// the schema registry's read-only paths. Every call but the registry's and
// /openapi.json carries an API key that names the caller's tenant.
package api

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/dlq"
	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/ingest/internal/catalog"
	"github.com/hookline/hookline/services/ingest/internal/deadletters"
	"github.com/hookline/hookline/services/ingest/internal/immediate"
	"github.com/hookline/hookline/services/ingest/internal/outcome"
)

// Server holds the API's dependencies.
type Server struct {
	Producer *kgo.Client
	View     *subscription.View
	Codecs   *record.Codecs
	Topics   wire.Topics
	Keys     Keys
	Events   *idempotency.Store // event ids seen, per tenant
	Box      *secretbox.Box
	Guard    *ssrf.Guard
	Tiers    []time.Duration // retry tiers, for the registry's subjects
	MaxBody  int64
	// Replay copies picked dead letters back to the deliveries topic.
	Replay func(context.Context, dlq.Filter) ([]string, error)
	Log    zerolog.Logger
	Now    func() time.Time

	// Outcomes lets a test ping wait for its first attempt; nil: pings
	// never wait.
	Outcomes *outcome.Watcher
	// Catalog holds the tenants' event types; POST /v1/events checks data
	// against their schemas.
	Catalog *catalog.Catalog

	// Portal signs and checks portal session tokens; nil: no portal.
	Portal *Portal
	// Health reads the sender's endpoint health streaks in Redis, shown
	// in subscription views; nil: no health shown.
	Health *health.Tracker
	// DeadLetters lists the dead letters; nil: GET /v1/dead-letters is
	// unavailable.
	DeadLetters *deadletters.Index
	// Console serves the web console at /console/; nil: none.
	Console http.Handler

	// History reads the delivery history (the logs service's store); nil:
	// the history API answers 404 (HOOKLINE_POSTGRES_URL not set).
	History logstore.Reader
	// Immediate delivers events posted with ?mode=immediate; nil: that
	// mode is refused.
	Immediate *immediate.Deliverer
	// EventRedeliveries remembers the events sent again to a subscription,
	// so that a second call sends nothing; nil: not remembered.
	EventRedeliveries *idempotency.Store

	// EventWrites produces POST /v1/events' records through Producer so
	// that concurrent requests share produce requests; nil: each request
	// produces alone.
	EventWrites *kafka.Group
}

// route is one authenticated API call.
type route struct {
	pattern string // "METHOD /path" as net/http's ServeMux reads it
	handle  http.HandlerFunc
}

// routes lists the API; the OpenAPI document is checked against it.
func (s *Server) routes() []route {
	return []route{
		{"POST /v1/events", s.postEvents},
		{"POST /v1/subscriptions", s.createSubscription},
		{"GET /v1/subscriptions", s.listSubscriptions},
		{"GET /v1/subscriptions/{id}", s.getSubscription},
		{"PUT /v1/subscriptions/{id}", s.replaceSubscription},
		{"PATCH /v1/subscriptions/{id}", s.patchSubscription},
		{"DELETE /v1/subscriptions/{id}", s.deleteSubscription},
		{"POST /v1/subscriptions/{id}/secrets/rotate", s.rotateSecret},
		{"POST /v1/subscriptions/{id}/test", s.testSubscription},
		{"POST /v1/replay", s.replay},
		{"GET /v1/event-types", s.listEventTypes},
		{"POST /v1/event-types", s.createEventType},
		{"GET /v1/event-types/{name}", s.getEventType},
		{"PATCH /v1/event-types/{name}", s.patchEventType},
		{"DELETE /v1/event-types/{name}", s.deleteEventType},
		{"POST /v1/portal/sessions", s.createPortalSession},
		{"GET /v1/session", s.getSession},
		{"GET /v1/dead-letters", s.listDeadLetters},
		{"GET /v1/dead-letters/{id}", s.getDeadLetter},
		{"GET /v1/events", s.listEvents},
		{"GET /v1/events/{id}", s.getEvent},
		{"POST /v1/events/{id}/redeliver", s.redeliverEvent},
		{"GET /v1/deliveries", s.listDeliveries},
		{"GET /v1/deliveries/{id}", s.getDelivery},
		{"POST /v1/deliveries/{id}/redeliver", s.redeliverDelivery},
		{"GET /v1/subscriptions/{id}/attempts", s.listAttempts},
		{"GET /v1/subscriptions/{id}/stats", s.subscriptionStats},
		{"POST /v1/subscriptions/{id}/recover", s.recoverSubscription},
		{"GET /v1/stats", s.overview},
	}
}

// openAPI is the API's OpenAPI 3.1 document, served at /openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.auth(rt.handle))
	}
	s.registryRoutes(mux)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	if s.Console != nil {
		mux.Handle("GET /console/", s.Console)
		mux.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The catch-all also gets known paths with another method
		// (ServeMux answers 405 itself only without a catch-all).
		if allowed := allowedMethods(mux, r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, "method-not-allowed",
				r.Method+" is not allowed on "+r.URL.Path+"; use "+strings.Join(allowed, ", ")))
			return
		}
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "no such route: "+r.Method+" "+r.URL.Path))
	})
	return mux
}

// allowedMethods lists the methods mux routes r's path with, other than
// its catch-all; none for an unknown path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodPatch, http.MethodPost, http.MethodPut} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host}
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

// Keys maps the SHA-256 of each API key to its tenant, so that the keys
// themselves are not kept in memory or config once hashed.
type Keys map[[sha256.Size]byte]string

// ParseKeys reads "tenant=key,tenant2=sha256:<hex>" (HOOKLINE_API_KEYS).
func ParseKeys(entries []string) (Keys, error) {
	keys := Keys{}
	for _, e := range entries {
		tenant, key, ok := strings.Cut(e, "=")
		if !ok || tenant == "" || key == "" {
			return nil, fmt.Errorf("API key entry %q is not tenant=key", e)
		}
		var sum [sha256.Size]byte
		if h, found := strings.CutPrefix(key, "sha256:"); found {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("API key of tenant %s: sha256: needs 64 hex digits", tenant)
			}
			copy(sum[:], b)
		} else {
			sum = sha256.Sum256([]byte(key))
		}
		keys[sum] = tenant
	}
	if len(keys) == 0 {
		return nil, errors.New("no API keys configured")
	}
	return keys, nil
}

// auth admits a tenant's API key, or a portal token to the calls a portal
// may make. Credentials travel only in the Authorization header, never in
// a cookie, so a cross-site request cannot carry them (no CSRF).
func (s *Server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		ok = ok && strings.EqualFold(scheme, "Bearer") // auth schemes are case-insensitive (RFC 9110)
		token = strings.TrimSpace(token)
		if ok && strings.HasPrefix(token, portalTokenPrefix) {
			s.portalAuth(w, r, token, h)
			return
		}
		tenant, known := s.Keys[sha256.Sum256([]byte(token))]
		if !ok || !known {
			s.refuse(w, r, "send an API key as Authorization: Bearer <key>")
			return
		}
		h(w, r.WithContext(contextWith(r, &principal{tenant: tenant})))
	})
}

func contextWith(r *http.Request, p *principal) context.Context {
	return context.WithValue(r.Context(), tenantKey{}, p)
}

// readJSON checks the content type, reads a bounded body and refuses JSON
// nested deeper than problem.MaxNesting, naming the member where it is.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request) ([]byte, *problem.Details) {
	if p := jsonContent(r); p != nil {
		return nil, p
	}
	body, p := s.readBody(w, r)
	if p != nil {
		return nil, p
	}
	if fe, deep := problem.TooDeep(body, problem.MaxNesting); deep {
		return nil, problem.Invalid(fe)
	}
	return body, nil
}

// jsonContent accepts application/json, and for PATCH also
// application/merge-patch+json, whose semantics PATCH follows.
func jsonContent(r *http.Request) *problem.Details {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && (mt == "application/json" || (r.Method == http.MethodPatch && mt == "application/merge-patch+json")) {
		return nil
	}
	return problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as Content-Type: application/json")
}

// readBody reads a body of at most MaxBody bytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *problem.Details) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, problem.New(http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("the body is larger than %d bytes", s.MaxBody))
	case err != nil:
		return nil, problem.New(http.StatusBadRequest, "unreadable-body", "the body could not be read")
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	writeJSONBody(w, status, v)
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// unavailable is the answer when Kafka or Redis cannot take a write: the
// caller should retry, and nothing was half-written.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.Log.Error().Err(err).Str("path", r.URL.Path).Msg(what)
	w.Header().Set("Retry-After", "1")
	problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "unavailable", what+" is unavailable; retry"))
}
