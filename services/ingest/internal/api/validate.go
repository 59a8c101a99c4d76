package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/ssrf"
)

// Bounds on subscription fields.
const (
	defaultTimeoutMS   = 15000
	defaultMaxAttempts = 8
	maxEventTypes      = 100
	maxHeaders         = 32
	maxMetadata        = 32
	maxRoutes          = 20
	maxAllowedHosts    = 20
	maxURLLen          = 2048
	maxTextLen         = 512
)

// subscriptionInput is a create (every field) or a patch (only the fields
// present): nil means "not sent".
type subscriptionInput struct {
	Name               *string            `json:"name"`
	Description        *string            `json:"description"`
	URL                *string            `json:"url"`
	EventTypes         *[]string          `json:"event_types"`
	Condition          *json.RawMessage   `json:"condition"`
	Expression         *string            `json:"expression"`
	Payload            *string            `json:"payload"`
	Headers            *map[string]string `json:"headers"`
	Auth               *json.RawMessage   `json:"auth"`
	RateLimitPerSecond *int32             `json:"rate_limit_per_second"`
	TimeoutMS          *int32             `json:"timeout_ms"`
	MaxAttempts        *int32             `json:"max_attempts"`
	Ordered            *bool              `json:"ordered"`
	Enabled            *bool              `json:"enabled"`
	Metadata           *map[string]string `json:"metadata"`
	Routes             *[]routeView       `json:"routes"`
	AllowedHosts       *[]string          `json:"allowed_hosts"`
	Batch              *json.RawMessage   `json:"batch"`
	Secret             *string            `json:"secret"` // create only: bring your own whsec_ secret
}

type authInput struct {
	Type     string `json:"type"`
	Token    string `json:"token"`
	Username string `json:"username"`
	Password string `json:"password"`
}

type batchInput struct {
	MaxEvents int32 `json:"max_events"`
	MaxWaitMS int32 `json:"max_wait_ms"`
}

var (
	eventTypePattern = regexp.MustCompile(`^(\*|[A-Za-z0-9_-]+)(\.(\*|[A-Za-z0-9_-]+))*$`)
	hostPattern      = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)
	// reservedHeaders are set by Hookline itself or by HTTP: a subscription
	// may not override them.
	reservedHeaders = map[string]bool{
		"webhook-id": true, "webhook-timestamp": true, "webhook-signature": true, "x-hub-signature-256": true,
		"authorization": true, "traceparent": true, "tracestate": true, "content-type": true, "content-length": true,
		"content-encoding": true, "host": true, "connection": true, "keep-alive": true, "proxy-authorization": true,
		"proxy-authenticate": true, "proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true,
		"upgrade": true, "user-agent": true,
	}
)

// apply validates in and writes it onto sub; on create, required fields
// must be present. It returns every problem found.
func (s *Server) apply(in *subscriptionInput, sub *record.Subscription, create bool) []problem.FieldError {
	var errs []problem.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, problem.FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
	}
	if create && in.URL == nil {
		bad("url", "is required")
	}
	if create && in.EventTypes == nil {
		bad("event_types", "is required")
	}
	if !create && in.Secret != nil {
		bad("secret", "can be set only on create; use the rotate call")
	}
	if in.Name != nil {
		if len(*in.Name) > maxTextLen {
			bad("name", "must be at most %d characters", maxTextLen)
		}
		sub.Name = *in.Name
	}
	if in.Description != nil {
		if len(*in.Description) > 4*maxTextLen {
			bad("description", "must be at most %d characters", 4*maxTextLen)
		}
		sub.Description = *in.Description
	}
	if in.AllowedHosts != nil {
		if len(*in.AllowedHosts) > maxAllowedHosts {
			bad("allowed_hosts", "lists at most %d hosts", maxAllowedHosts)
		}
		for i, h := range *in.AllowedHosts {
			if !hostPattern.MatchString(h) {
				bad(fmt.Sprintf("allowed_hosts[%d]", i), "%q is not a host name (a leading *. allows subdomains)", h)
			}
		}
		sub.AllowedHosts = *in.AllowedHosts
	}
	if in.URL != nil {
		if msg := s.checkURL(*in.URL); msg != "" {
			bad("url", "%s", msg)
		}
		sub.URL = *in.URL
	}
	if in.EventTypes != nil {
		types := *in.EventTypes
		if len(types) == 0 || len(types) > maxEventTypes {
			bad("event_types", "must list 1 to %d event types", maxEventTypes)
		}
		for i, t := range types {
			if len(t) > 128 || !eventTypePattern.MatchString(t) {
				bad(fmt.Sprintf("event_types[%d]", i), "%q is not an event type or pattern like order.created, order.* or *", t)
			}
		}
		sub.EventTypes = types
	}
	if in.Condition != nil {
		sub.Condition = nil
		if raw := *in.Condition; len(raw) > 0 && string(raw) != "null" {
			if _, err := condition.Parse(raw); err != nil {
				errs = append(errs, conditionError("condition", err))
			}
			c := string(raw)
			sub.Condition = &c
		}
	}
	if in.Expression != nil {
		sub.Expression = nil
		if *in.Expression != "" {
			if _, err := condition.CompileExpression(*in.Expression); err != nil {
				bad("expression", "%s", err)
			}
			sub.Expression = in.Expression
		}
	}
	if in.Payload != nil {
		if *in.Payload != "full" && *in.Payload != "changed" {
			bad("payload", "must be full or changed")
		}
		sub.Payload = *in.Payload
	}
	if in.Headers != nil {
		if len(*in.Headers) > maxHeaders {
			bad("headers", "holds at most %d headers", maxHeaders)
		}
		for k, v := range *in.Headers {
			switch {
			case !httpguts.ValidHeaderFieldName(k):
				bad("headers."+k, "is not a valid header name")
			case reservedHeaders[strings.ToLower(k)] || strings.HasPrefix(strings.ToLower(k), "webhook-"):
				bad("headers."+k, "is set by Hookline and cannot be overridden (use auth for credentials)")
			case !httpguts.ValidHeaderFieldValue(v) || len(v) > 4096:
				bad("headers."+k, "value must be at most 4096 characters without control characters")
			}
		}
		sub.Headers = *in.Headers
	}
	if in.Auth != nil {
		sub.Auth = nil
		if raw := *in.Auth; len(raw) > 0 && string(raw) != "null" {
			var a authInput
			if fe := decodeStrict(raw, &a); fe != nil {
				fe[0].Field = "auth." + fe[0].Field
				errs = append(errs, fe...)
			} else {
				switch {
				case a.Type == "bearer" && a.Token != "" && a.Username == "" && a.Password == "":
					sub.Auth = &record.Auth{Type: "bearer", SealedCredential: s.Box.Seal([]byte(a.Token), []byte(sub.ID))}
				case a.Type == "basic" && a.Username != "" && a.Token == "" && !strings.Contains(a.Username, ":"):
					sub.Auth = &record.Auth{Type: "basic", Username: a.Username, SealedCredential: s.Box.Seal([]byte(a.Password), []byte(sub.ID))}
				default:
					bad("auth", `must be {"type":"bearer","token":"..."} or {"type":"basic","username":"...","password":"..."}`)
				}
			}
		}
	}
	if in.RateLimitPerSecond != nil {
		if v := *in.RateLimitPerSecond; v < 0 || v > 10000 {
			bad("rate_limit_per_second", "must be 0 (unlimited) to 10000")
		}
		sub.RateLimitPerSecond = *in.RateLimitPerSecond
	}
	if in.TimeoutMS != nil {
		if v := *in.TimeoutMS; v < 1000 || v > 60000 {
			bad("timeout_ms", "must be 1000 to 60000")
		}
		sub.TimeoutMS = *in.TimeoutMS
	}
	if in.MaxAttempts != nil {
		if v := *in.MaxAttempts; v < 1 || v > 20 {
			bad("max_attempts", "must be 1 to 20")
		}
		sub.MaxAttempts = *in.MaxAttempts
	}
	if in.Ordered != nil {
		sub.Ordered = *in.Ordered
	}
	if in.Enabled != nil {
		sub.Enabled = *in.Enabled
		if sub.Enabled {
			sub.DisabledReason = ""
		}
	}
	if in.Metadata != nil {
		if len(*in.Metadata) > maxMetadata {
			bad("metadata", "holds at most %d keys", maxMetadata)
		}
		for k, v := range *in.Metadata {
			if k == "" || len(k) > 128 || len(v) > maxTextLen {
				bad("metadata."+k, "keys must be 1 to 128 characters and values at most %d", maxTextLen)
			}
		}
		sub.Metadata = *in.Metadata
	}
	if in.Routes != nil {
		if len(*in.Routes) > maxRoutes {
			bad("routes", "holds at most %d routes", maxRoutes)
		}
		sub.Routes = []record.Route{}
		for i, rt := range *in.Routes {
			field := fmt.Sprintf("routes[%d]", i)
			if len(rt.Condition) == 0 || string(rt.Condition) == "null" {
				bad(field+".condition", "is required")
			} else if _, err := condition.Parse(rt.Condition); err != nil {
				errs = append(errs, conditionError(field+".condition", err))
			}
			if msg := s.checkRouteURL(rt.URL, sub.AllowedHosts); msg != "" {
				bad(field+".url", "%s", msg)
			}
			sub.Routes = append(sub.Routes, record.Route{Condition: string(rt.Condition), URL: rt.URL})
		}
	}
	if in.Batch != nil {
		sub.Batch = nil
		if raw := *in.Batch; len(raw) > 0 && string(raw) != "null" {
			var b batchInput
			if fe := decodeStrict(raw, &b); fe != nil {
				fe[0].Field = "batch." + fe[0].Field
				errs = append(errs, fe...)
			} else if b.MaxEvents < 1 || b.MaxEvents > 500 || b.MaxWaitMS < 0 || b.MaxWaitMS > 60000 {
				bad("batch", "max_events must be 1 to 500 and max_wait_ms 0 to 60000")
			} else {
				sub.Batch = &record.Batch{MaxEvents: b.MaxEvents, MaxWaitMS: b.MaxWaitMS}
			}
		}
	}
	return errs
}

// checkURL allows https, or http for a host the operator allowlisted, and
// refuses IP literals that are not public. Names are checked again at dial
// time, after DNS, by the sender's SSRF guard.
func (s *Server) checkURL(raw string) string {
	if len(raw) > maxURLLen {
		return fmt.Sprintf("must be at most %d characters", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "must be an absolute https:// URL"
	}
	host := u.Hostname()
	allowed := s.Guard.AllowsHost(host)
	switch {
	case u.User != nil:
		return "must not hold credentials; use auth"
	case u.Scheme == "http" && !allowed:
		return "must use https (http is allowed only for hosts the operator allowlists)"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must use https"
	case u.Fragment != "":
		return "must not have a #fragment"
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && !allowed && !ssrf.IsPublicIP(ip) {
		return "points at a private, loopback, link-local or metadata address"
	}
	if net.ParseIP(host) == nil && !allowed && (host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".internal")) {
		return "points at a local host name"
	}
	return ""
}

// checkRouteURL also allows {{field}} placeholders when the subscription
// lists allowed hosts: the host then must be one of them.
func (s *Server) checkRouteURL(raw string, allowedHosts []string) string {
	if !strings.Contains(raw, "{{") {
		return s.checkURL(raw)
	}
	if len(allowedHosts) == 0 {
		return "a URL taken from the event needs allowed_hosts on the subscription"
	}
	return ""
}

// conditionError locates a condition problem inside the request body.
func conditionError(field string, err error) problem.FieldError {
	var ce *condition.Error
	if errors.As(err, &ce) {
		return problem.FieldError{Field: ce.Field(field), Detail: ce.Reason}
	}
	return problem.FieldError{Field: field, Detail: err.Error()}
}
