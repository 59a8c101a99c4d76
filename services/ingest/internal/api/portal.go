package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hookline/hookline/pkg/problem"
)

// Portal sessions are short-lived signed links that open the console for
// one tenant, optionally restricted to some of its subscriptions, for the
// operator's customers. A token is stateless (HMAC-SHA256 over its claims
// with a key derived from HOOKLINE_SECRET_KEY): any ingest instance checks
// it without Redis, and it cannot be revoked before it expires, which is
// why its lifetime is bounded.
const (
	portalTokenPrefix = "hlp_"
	defaultPortalTTL  = time.Hour
	minPortalTTL      = time.Minute
	maxPortalTTL      = 24 * time.Hour
	// maxPortalSubscriptions bounds a restricted session's list, and so
	// the token's size: it travels in every request's Authorization header.
	maxPortalSubscriptions = 100
	// PortalKeyPurpose names the key derived from the operator secret key
	// for portal tokens; changing it invalidates every token issued.
	PortalKeyPurpose = "hookline portal token v1"
)

// Portal signs and checks portal tokens.
type Portal struct {
	key []byte
	// BaseURL is where people reach this ingest (HOOKLINE_PUBLIC_URL, e.g.
	// https://hooks.example.com); empty: the address the session was
	// requested at.
	BaseURL string
}

// NewPortal returns a signer of portal tokens under key (at least 32 bytes).
func NewPortal(key []byte, baseURL string) *Portal {
	return &Portal{key: key, BaseURL: strings.TrimRight(baseURL, "/")}
}

// portalClaims is what a token says; short names keep tokens short.
type portalClaims struct {
	Version       int      `json:"v"`
	Tenant        string   `json:"t"`
	Subscriptions []string `json:"s,omitempty"` // absent: every subscription of the tenant
	Expires       int64    `json:"exp"`         // unix seconds
	Nonce         string   `json:"n"`
}

// Why a token is refused.
var (
	errPortalInvalid = errors.New("the portal link is not valid")
	errPortalExpired = errors.New("the portal link has expired; ask for a new one")
)

func (p *Portal) mac(payload string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(portalTokenPrefix + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sign returns the token of c: hlp_<base64url claims>.<base64url MAC>.
func (p *Portal) sign(c portalClaims) string {
	raw, _ := json.Marshal(c) // plain strings and numbers: cannot fail
	payload := base64.RawURLEncoding.EncodeToString(raw)
	return portalTokenPrefix + payload + "." + p.mac(payload)
}

// verify checks a token's MAC, then its expiry at now.
func (p *Portal) verify(token string, now time.Time) (portalClaims, error) {
	payload, mac, ok := strings.Cut(strings.TrimPrefix(token, portalTokenPrefix), ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(p.mac(payload))) {
		return portalClaims{}, errPortalInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	var c portalClaims
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Version != 1 || c.Tenant == "" {
		return portalClaims{}, errPortalInvalid
	}
	if !now.Before(time.Unix(c.Expires, 0)) {
		return portalClaims{}, errPortalExpired
	}
	return c, nil
}

// principal is who calls: a tenant's API key, or a portal session of it.
type principal struct {
	tenant  string
	portal  bool
	subs    []string // a restricted portal's subscriptions; nil: all
	expires time.Time
}

type tenantKey struct{}

func principalOf(r *http.Request) *principal { return r.Context().Value(tenantKey{}).(*principal) }

func tenantOf(r *http.Request) string { return principalOf(r).tenant }

// visible reports whether the caller may see the tenant's subscription
// id: always with an API key, and within its list for a restricted portal.
func visible(r *http.Request, id string) bool {
	p := principalOf(r)
	return p.subs == nil || slices.Contains(p.subs, id)
}

// portalRoutes are the calls a portal session may make: managing its
// tenant's endpoints, reading the event type catalog, the dead letters and
// the delivery history, and re-running deliveries from it.
// Anything else (publishing events, changing the catalog, making portal
// sessions) needs the API key; a route added later is refused to portals
// until it is listed here.
var portalRoutes = map[string]bool{
	"GET /v1/session":                            true,
	"GET /v1/subscriptions":                      true,
	"POST /v1/subscriptions":                     true, // unrestricted sessions only (portalAuth)
	"GET /v1/subscriptions/{id}":                 true,
	"PUT /v1/subscriptions/{id}":                 true,
	"PATCH /v1/subscriptions/{id}":               true,
	"DELETE /v1/subscriptions/{id}":              true,
	"POST /v1/subscriptions/{id}/secrets/rotate": true,
	"POST /v1/subscriptions/{id}/test":           true,
	"POST /v1/replay":                            true,
	"GET /v1/dead-letters":                       true,
	"GET /v1/dead-letters/{id}":                  true,
	"GET /v1/event-types":                        true,
	"GET /v1/event-types/{name}":                 true,
	// The delivery history, confined like the rest: a restricted session
	// sees its subscriptions' deliveries and attempts only.
	"GET /v1/events":                      true, // unrestricted sessions only (listEvents)
	"GET /v1/events/{id}":                 true,
	"POST /v1/events/{id}/redeliver":      true,
	"GET /v1/deliveries":                  true,
	"GET /v1/deliveries/{id}":             true,
	"POST /v1/deliveries/{id}/redeliver":  true,
	"GET /v1/subscriptions/{id}/attempts": true,
	"GET /v1/subscriptions/{id}/stats":    true,
	"POST /v1/subscriptions/{id}/recover": true,
	"GET /v1/stats":                       true, // a restricted session's subscriptions only (overview)
}

// portalAuth admits a portal token to the routes a portal may call.
func (s *Server) portalAuth(w http.ResponseWriter, r *http.Request, token string, h http.HandlerFunc) {
	if s.Portal == nil {
		s.refuse(w, r, "portal sessions are not enabled here")
		return
	}
	c, err := s.Portal.verify(token, s.Now())
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hookline", error="invalid_token"`)
		kind := "portal-invalid"
		if errors.Is(err, errPortalExpired) {
			kind = "portal-expired"
		}
		problem.Write(w, r, problem.New(http.StatusUnauthorized, kind, err.Error()))
		return
	}
	if _, known := s.tenants()[c.Tenant]; !known {
		// The tenant's API key was removed: its sessions end with it.
		s.refuse(w, r, "the portal link's tenant no longer exists")
		return
	}
	restricted := c.Subscriptions != nil
	if !portalRoutes[r.Pattern] || (restricted && r.Pattern == "POST /v1/subscriptions") {
		problem.Write(w, r, problem.New(http.StatusForbidden, "forbidden", "a portal session cannot call "+r.Pattern))
		return
	}
	p := &principal{tenant: c.Tenant, portal: true, subs: c.Subscriptions, expires: time.Unix(c.Expires, 0).UTC()}
	if restricted && p.subs == nil {
		p.subs = []string{}
	}
	h(w, r.WithContext(contextWith(r, p)))
}

// refuse answers 401 for a credential that is not accepted.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="hookline"`)
	problem.Write(w, r, problem.New(http.StatusUnauthorized, "unauthorized", detail))
}

// tenants is the set of tenants that have an API key.
func (s *Server) tenants() map[string]struct{} {
	out := make(map[string]struct{}, len(s.Keys))
	for _, t := range s.Keys {
		out[t] = struct{}{}
	}
	return out
}

type portalSessionInput struct {
	SubscriptionIDs *[]string `json:"subscription_ids"`
	ExpiresIn       *int64    `json:"expires_in"`
}

type portalSessionAnswer struct {
	URL             string    `json:"url"`
	Token           string    `json:"token"`
	ExpiresAt       time.Time `json:"expires_at"`
	Tenant          string    `json:"tenant"`
	SubscriptionIDs []string  `json:"subscription_ids,omitempty"`
}

// createPortalSession makes a portal link for the caller's tenant,
// optionally restricted to some of its subscriptions (each must exist).
func (s *Server) createPortalSession(w http.ResponseWriter, r *http.Request) {
	if s.Portal == nil {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "portal sessions are not enabled here"))
		return
	}
	body, p := s.readJSON(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	var in portalSessionInput
	if errs := decodeStrict(body, &in); errs != nil {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	var errs []problem.FieldError
	ttl := defaultPortalTTL
	if in.ExpiresIn != nil {
		ttl = time.Duration(*in.ExpiresIn) * time.Second
		if *in.ExpiresIn < int64(minPortalTTL/time.Second) || *in.ExpiresIn > int64(maxPortalTTL/time.Second) {
			errs = append(errs, problem.FieldError{Field: "expires_in", Detail: fmt.Sprintf("must be %d to %d seconds", int(minPortalTTL.Seconds()), int(maxPortalTTL.Seconds()))})
		}
	}
	var subs []string
	if in.SubscriptionIDs != nil {
		ids := *in.SubscriptionIDs
		if len(ids) == 0 || len(ids) > maxPortalSubscriptions {
			errs = append(errs, problem.FieldError{Field: "subscription_ids", Detail: fmt.Sprintf("lists 1 to %d subscriptions; leave it out for all of them", maxPortalSubscriptions)})
		} else if !s.viewReady(w, r) {
			return
		}
		for i, id := range ids {
			if sub, ok := s.View.Get(id); !ok || sub.Tenant != tenantOf(r) {
				errs = append(errs, problem.FieldError{Field: fmt.Sprintf("subscription_ids[%d]", i), Detail: "no subscription " + id})
			} else if !slices.Contains(subs, id) {
				subs = append(subs, id)
			}
		}
	}
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid(errs...))
		return
	}
	nonce := make([]byte, 9)
	_, _ = rand.Read(nonce)
	expires := s.Now().Add(ttl).Truncate(time.Second)
	token := s.Portal.sign(portalClaims{Version: 1, Tenant: tenantOf(r), Subscriptions: subs, Expires: expires.Unix(),
		Nonce: base64.RawURLEncoding.EncodeToString(nonce)})
	// The token rides in the fragment: browsers send it neither to the
	// server nor in Referer headers, so it stays out of access logs.
	writeJSON(w, http.StatusCreated, portalSessionAnswer{
		URL: s.publicURL(r) + "/console/#portal=" + token, Token: token, ExpiresAt: expires.UTC(),
		Tenant: tenantOf(r), SubscriptionIDs: subs,
	})
}

// publicURL is where people reach this API.
func (s *Server) publicURL(r *http.Request) string {
	if s.Portal.BaseURL != "" {
		return s.Portal.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type sessionAnswer struct {
	Tenant          string     `json:"tenant"`
	Kind            string     `json:"kind"` // api_key or portal
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	SubscriptionIDs []string   `json:"subscription_ids,omitempty"`
	// CanCreate says whether this session may create subscriptions (a
	// restricted portal may not).
	CanCreate bool `json:"can_create"`
	// CanPublish says whether it may publish events and change the event
	// type catalog (an API key only).
	CanPublish bool `json:"can_publish"`
}

// getSession tells the console who it is signed in as.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	a := sessionAnswer{Tenant: p.tenant, Kind: "api_key", CanCreate: p.subs == nil, CanPublish: !p.portal}
	if p.portal {
		a.Kind, a.ExpiresAt, a.SubscriptionIDs = "portal", &p.expires, p.subs
	}
	writeJSON(w, http.StatusOK, a)
}
