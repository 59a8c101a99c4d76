package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/emailaddr"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/routeurl"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
)

// Bounds on subscription fields.
const (
	defaultTimeoutMS   = 15000
	defaultMaxAttempts = 8
	maxEventTypes      = 100
	maxHeaders         = 32
	maxMetadata        = 32
	// maxMetadataJSON bounds the metadata as it rides in every delivery
	// body: the record limit is sized for it (docs/limits.md).
	maxMetadataJSON = 16 << 10
	maxRoutes       = 20
	maxDerive       = 20
	maxAllowedHosts = 20
	maxURLLen       = routeurl.MaxURLLen
	maxTextLen      = 512
	maxHeaderValue  = 4096
	maxCredential   = 4096
	maxBatchEvents  = 500
	maxBatchWaitMS  = 60000
	// maxAlertEmails is as many as notify's per-tenant defaults, so an
	// alert has a bounded number of recipients.
	maxAlertEmails = 10
	// maxInFlight bounds a subscription's max_in_flight: requests in
	// flight to one endpoint at once. 0 leaves it to the sender's adaptive
	// default.
	maxInFlight = 256
)

// subscriptionInput is a create (every field) or a patch (only the fields
// present): nil means "not sent". The optional objects are raw so that a
// JSON null, which clears them, differs from leaving them out.
type subscriptionInput struct {
	Name               *string            `json:"name"`
	Description        *string            `json:"description"`
	URL                *string            `json:"url"`
	EventTypes         *[]string          `json:"event_types"`
	Condition          json.RawMessage    `json:"condition"`
	Expression         *string            `json:"expression"`
	Payload            *string            `json:"payload"`
	Headers            *map[string]string `json:"headers"`
	Auth               json.RawMessage    `json:"auth"`
	RateLimitPerSecond *int32             `json:"rate_limit_per_second"`
	TimeoutMS          *int32             `json:"timeout_ms"`
	MaxAttempts        *int32             `json:"max_attempts"`
	MaxInFlight        *int32             `json:"max_in_flight"`
	Ordered            *bool              `json:"ordered"`
	Enabled            *bool              `json:"enabled"`
	Metadata           *map[string]string `json:"metadata"`
	Routes             *[]json.RawMessage `json:"routes"`
	AllowedHosts       *[]string          `json:"allowed_hosts"`
	Batch              json.RawMessage    `json:"batch"`
	Derive             *[]json.RawMessage `json:"derive"`
	AlertEmails        *[]string          `json:"alert_emails"`
	Secret             *string            `json:"secret"` // create only: bring your own whsec_ secret
	Compression        *string            `json:"compression"`
	ClientTLS          json.RawMessage    `json:"client_tls"`
}

// authInput is an endpoint credential. A credential left out keeps the
// stored one of the same type, so that a subscription as GET shows it
// (without its token or password) can be sent back unchanged.
type authInput struct {
	Type     string  `json:"type"`
	Token    *string `json:"token"`
	Username *string `json:"username"`
	Password *string `json:"password"`
}

type batchInput struct {
	MaxEvents int32 `json:"max_events"`
	MaxWaitMS int32 `json:"max_wait_ms"`
}

var (
	eventTypePattern = regexp.MustCompile(`^(\*|[A-Za-z0-9_-]+)(\.(\*|[A-Za-z0-9_-]+))*$`)
	// numericHost is a host of numbers only that is not a plain IP
	// literal; resolvers read 127.1 or 2130706433 as addresses.
	numericHost = regexp.MustCompile(`^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*$`)
	hostPattern = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)
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
	if in.Secret != nil {
		if !create {
			bad("secret", "can be set only on create; use POST /v1/subscriptions/{id}/secrets/rotate")
		} else if _, err := signature.ParseSecret(*in.Secret); err != nil {
			bad("secret", "%s", err)
		}
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
		if raw := in.Condition; string(raw) != "null" {
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
		errs = append(errs, checkHeaders(*in.Headers)...)
		sub.Headers = *in.Headers
	}
	if in.Auth != nil {
		var fe []problem.FieldError
		sub.Auth, fe = s.authOf(in.Auth, sub)
		errs = append(errs, fe...)
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
	if in.MaxInFlight != nil {
		if v := *in.MaxInFlight; v < 0 || v > maxInFlight {
			bad("max_in_flight", "must be 0 (the sender's adaptive default) to %d", maxInFlight)
		}
		sub.MaxInFlight = *in.MaxInFlight
	}
	if in.Ordered != nil {
		sub.Ordered = *in.Ordered
	}
	if in.Enabled != nil {
		sub.Enabled = *in.Enabled
		switch {
		case sub.Enabled:
			sub.DisabledReason = ""
		case sub.DisabledReason == "":
			// Turned off now (one already disabled keeps its reason).
			sub.DisabledReason = subscription.ReasonOwner
		}
	}
	if in.Metadata != nil {
		if len(*in.Metadata) > maxMetadata {
			bad("metadata", "holds at most %d keys", maxMetadata)
		}
		for _, k := range slices.Sorted(maps.Keys(*in.Metadata)) {
			if k == "" || len(k) > 128 || len((*in.Metadata)[k]) > maxTextLen {
				bad("metadata."+k, "keys must be 1 to 128 characters and values at most %d", maxTextLen)
			}
		}
		if raw, err := json.Marshal(*in.Metadata); err == nil && len(raw) > maxMetadataJSON {
			bad("metadata", "is %d bytes as JSON, more than %d", len(raw), maxMetadataJSON)
		}
		sub.Metadata = *in.Metadata
	}
	if in.Routes != nil {
		if len(*in.Routes) > maxRoutes {
			bad("routes", "holds at most %d routes", maxRoutes)
		}
		sub.Routes = []record.Route{}
		for i, raw := range *in.Routes {
			field := fmt.Sprintf("routes[%d]", i)
			var rt routeView
			if fe := decodeStrict(raw, &rt); fe != nil {
				fe[0].Field = joinField(field, fe[0].Field)
				errs = append(errs, fe...)
				continue
			}
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
	} else if in.AllowedHosts != nil {
		// The routes kept must still fit the new allowed hosts.
		for i, rt := range sub.Routes {
			if msg := s.checkRouteURL(rt.URL, sub.AllowedHosts); msg != "" {
				bad("allowed_hosts", "routes[%d].url no longer fits: %s", i, msg)
			}
		}
	}
	if in.Batch != nil {
		var fe []problem.FieldError
		sub.Batch, fe = batchOf(in.Batch)
		errs = append(errs, fe...)
	}
	if in.AlertEmails != nil {
		errs = append(errs, checkAlertEmails(*in.AlertEmails)...)
		sub.AlertEmails = *in.AlertEmails
	}
	if in.Derive != nil {
		if len(*in.Derive) > maxDerive {
			bad("derive", "holds at most %d derived fields", maxDerive)
		}
		sub.Derive = []record.Derive{}
		for i, raw := range *in.Derive {
			d, fe := deriveOf(raw, fmt.Sprintf("derive[%d]", i))
			errs = append(errs, fe...)
			sub.Derive = append(sub.Derive, d)
		}
	}
	errs = append(errs, s.applyDelivery(in, sub)...)
	return errs
}

// checkAlertEmails refuses what is not a bare address (a name, a list,
// CR/LF that would inject a header) and an address listed twice, naming
// the member at fault.
func checkAlertEmails(addrs []string) []problem.FieldError {
	var errs []problem.FieldError
	if len(addrs) > maxAlertEmails {
		errs = append(errs, problem.FieldError{Field: "alert_emails", Detail: fmt.Sprintf("lists at most %d addresses", maxAlertEmails)})
	}
	seen := map[string]int{}
	for i, a := range addrs {
		field := fmt.Sprintf("alert_emails[%d]", i)
		if err := emailaddr.Check(a); err != nil {
			errs = append(errs, problem.FieldError{Field: field, Detail: err.Error()})
			continue
		}
		if j, dup := seen[emailaddr.Normal(a)]; dup {
			errs = append(errs, problem.FieldError{Field: field, Detail: fmt.Sprintf("repeats alert_emails[%d]", j)})
			continue
		}
		seen[emailaddr.Normal(a)] = i
	}
	return errs
}

// deriveOf validates one derived field by compiling it as the matcher
// will. A default is kept compacted; "default": null is the JSON value
// null, and leaving default out means none.
func deriveOf(raw json.RawMessage, field string) (record.Derive, []problem.FieldError) {
	var in deriveView
	if fe := decodeStrict(raw, &in); fe != nil {
		fe[0].Field = joinField(field, fe[0].Field)
		return record.Derive{}, fe
	}
	d := record.Derive{Field: in.Field, Expression: in.Expression}
	if in.Default != nil {
		d.DefaultJSON = new(string(in.Default))
	}
	compiled, err := condition.CompileDerived(d.Field, d.Expression, d.DefaultJSON)
	if err != nil {
		return d, conditionErrors(field, err)
	}
	if compiled.Default != nil {
		d.DefaultJSON = new(string(compiled.Default))
	}
	return d, nil
}

// checkHeaders refuses invalid names, names Hookline or HTTP itself sets,
// names repeated in another case (one would silently win) and values that
// cannot be sent. Names are checked in order so the errors are stable.
func checkHeaders(headers map[string]string) []problem.FieldError {
	var errs []problem.FieldError
	if len(headers) > maxHeaders {
		errs = append(errs, problem.FieldError{Field: "headers", Detail: fmt.Sprintf("holds at most %d headers", maxHeaders)})
	}
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(headers)) {
		name := subscription.NormalHeader(k)
		detail := ""
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			detail = "is not a valid header name"
		case subscription.ReservedHeader(k):
			detail = "is set by Hookline and cannot be overridden (use auth for credentials)"
		case seen[name] != "":
			detail = "repeats header " + seen[name] + " in another case or spelling"
		case !httpguts.ValidHeaderFieldValue(headers[k]) || len(headers[k]) > maxHeaderValue:
			detail = fmt.Sprintf("value must be at most %d characters without control characters", maxHeaderValue)
		}
		if detail != "" {
			errs = append(errs, problem.FieldError{Field: "headers." + k, Detail: detail})
		}
		seen[name] = k
	}
	return errs
}

// authOf validates an auth object and seals its credential, bound to the
// subscription's id. JSON null removes the credential.
func (s *Server) authOf(raw json.RawMessage, sub *record.Subscription) (*record.Auth, []problem.FieldError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var a authInput
	if fe := decodeStrict(raw, &a); fe != nil {
		fe[0].Field = joinField("auth", fe[0].Field)
		return nil, fe
	}
	var errs []problem.FieldError
	bad := func(field, detail string) {
		errs = append(errs, problem.FieldError{Field: "auth." + field, Detail: detail})
	}
	kept := func(typ string) []byte {
		if sub.Auth != nil && sub.Auth.Type == typ {
			return sub.Auth.SealedCredential
		}
		return nil
	}
	out := &record.Auth{Type: a.Type}
	switch a.Type {
	case "bearer":
		if a.Username != nil || a.Password != nil {
			bad("type", "bearer takes a token only; username and password are for basic")
		}
		switch {
		case a.Token != nil && (*a.Token == "" || len(*a.Token) > maxCredential || !httpguts.ValidHeaderFieldValue(*a.Token)):
			bad("token", fmt.Sprintf("must be 1 to %d characters without control characters", maxCredential))
		case a.Token != nil:
			out.SealedCredential = s.Box.Seal([]byte(*a.Token), []byte(sub.ID))
		case kept("bearer") != nil:
			out.SealedCredential = kept("bearer")
		default:
			bad("token", "is required")
		}
	case "basic":
		if a.Token != nil {
			bad("token", "is for bearer; basic takes username and password")
		}
		if a.Username == nil || *a.Username == "" || len(*a.Username) > maxTextLen || strings.Contains(*a.Username, ":") || !httpguts.ValidHeaderFieldValue(*a.Username) {
			bad("username", fmt.Sprintf("is required: 1 to %d characters, no colon or control characters", maxTextLen))
		} else {
			out.Username = *a.Username
		}
		switch {
		case a.Password != nil && len(*a.Password) > maxCredential:
			bad("password", fmt.Sprintf("must be at most %d characters", maxCredential))
		case a.Password != nil:
			out.SealedCredential = s.Box.Seal([]byte(*a.Password), []byte(sub.ID))
		case kept("basic") != nil:
			out.SealedCredential = kept("basic")
		default:
			bad("password", "is required (it may be empty)")
		}
	case "":
		bad("type", "is required: bearer or basic")
	default:
		bad("type", "must be bearer or basic")
	}
	if len(errs) > 0 {
		return sub.Auth, errs
	}
	return out, nil
}

// batchOf validates a batch object; JSON null turns batching off.
func batchOf(raw json.RawMessage) (*record.Batch, []problem.FieldError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var b batchInput
	if fe := decodeStrict(raw, &b); fe != nil {
		fe[0].Field = joinField("batch", fe[0].Field)
		return nil, fe
	}
	var errs []problem.FieldError
	if b.MaxEvents < 1 || b.MaxEvents > maxBatchEvents {
		errs = append(errs, problem.FieldError{Field: "batch.max_events", Detail: fmt.Sprintf("must be 1 to %d", maxBatchEvents)})
	}
	if b.MaxWaitMS < 0 || b.MaxWaitMS > maxBatchWaitMS {
		errs = append(errs, problem.FieldError{Field: "batch.max_wait_ms", Detail: fmt.Sprintf("must be 0 to %d", maxBatchWaitMS)})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &record.Batch{MaxEvents: b.MaxEvents, MaxWaitMS: b.MaxWaitMS}, nil
}

func joinField(prefix, field string) string {
	if field == "" {
		return prefix
	}
	return prefix + "." + field
}

// checkURL allows https, or http for a host the operator allowlisted, and
// refuses IP literals that are not public. Names are checked again at dial
// time, after DNS, by the sender's SSRF guard.
func (s *Server) checkURL(raw string) string {
	if len(raw) > maxURLLen {
		return fmt.Sprintf("must be at most %d characters", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || u.Opaque != "" {
		return "must be an absolute https:// URL"
	}
	host := u.Hostname()
	allowed := s.Guard.AllowsHost(host)
	switch {
	case !routeurl.ValidPort(u.Port()):
		return fmt.Sprintf("port %q is not a port number from 1 to 65535", u.Port())
	case u.User != nil:
		return "must not hold credentials; use auth"
	case u.Scheme == "http" && !allowed:
		return "must use https (http is allowed only for hosts the operator allowlists)"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must use https"
	case u.Fragment != "":
		return "must not have a #fragment"
	case allowed:
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ssrf.IsPublicIP(ip) {
			return "points at a private, loopback, link-local or metadata address"
		}
		return ""
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case name == "localhost" || strings.HasSuffix(name, ".localhost") || strings.HasSuffix(name, ".internal") || strings.HasSuffix(name, ".local"):
		return "points at a local host name"
	case numericHost.MatchString(name):
		// 127.1, 2130706433 or 0x7f.0.0.1: resolvers read these as IPs.
		return "is a numeric host that is not a plain IP address"
	}
	return ""
}

// checkRouteURL checks a route's URL. A URL with {{field.path}}
// placeholders is filled from the event when it is matched: the
// subscription must then list allowed hosts, and a host written in the URL
// must be one of them. A URL that starts with a placeholder takes its host
// from the event, so only the matcher can check it.
func (s *Server) checkRouteURL(raw string, allowedHosts []string) string {
	if !strings.Contains(raw, "{{") && !strings.Contains(raw, "}}") {
		return s.checkURL(raw)
	}
	switch {
	case len(allowedHosts) == 0:
		return "a URL taken from the event needs allowed_hosts on the subscription"
	case len(raw) > maxURLLen:
		return fmt.Sprintf("must be at most %d characters", maxURLLen)
	}
	if rest := routeurl.Placeholder.ReplaceAllString(raw, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		return "placeholders must be written {{field.path}}, e.g. {{data.callback_url}}"
	}
	if strings.HasPrefix(raw, "{{") {
		return ""
	}
	filled := routeurl.Example(raw)
	if msg := s.checkURL(filled); msg != "" {
		return msg
	}
	if u, _ := url.Parse(filled); !routeurl.HostAllowed(u.Hostname(), allowedHosts) {
		return fmt.Sprintf("host %s is not in allowed_hosts", u.Hostname())
	}
	return ""
}

// conditionErrors locates each problem of a joined error, as
// condition.CompileDerived returns, inside the request body.
func conditionErrors(field string, err error) []problem.FieldError {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []problem.FieldError{conditionError(field, err)}
	}
	var out []problem.FieldError
	for _, e := range joined.Unwrap() {
		out = append(out, conditionError(field, e))
	}
	return out
}

// conditionError locates a condition problem inside the request body.
func conditionError(field string, err error) problem.FieldError {
	var ce *condition.Error
	if errors.As(err, &ce) {
		return problem.FieldError{Field: ce.Field(field), Detail: ce.Reason}
	}
	return problem.FieldError{Field: field, Detail: err.Error()}
}
