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

// Compression values a subscription may ask for; "" sends bodies as they are.
var compressions = map[string]bool{"": true, "gzip": true}

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
	var p problems
	if create && in.URL == nil {
		p.add("url", "is required")
	}
	if create && in.EventTypes == nil {
		p.add("event_types", "is required")
	}
	if in.Secret != nil {
		if !create {
			p.add("secret", "can be set only on create; use POST /v1/subscriptions/{id}/secrets/rotate")
		} else if _, err := signature.ParseSecret(*in.Secret); err != nil {
			p.add("secret", "%s", err)
		}
	}
	for _, rule := range subscriptionRules {
		rule(s, in, sub, &p)
	}
	return p
}

// problems collects the field errors of one body.
type problems []problem.FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, problem.FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// fieldRule validates one member of a subscription body when the body
// holds it, and writes it onto sub.
type fieldRule func(s *Server, in *subscriptionInput, sub *record.Subscription, p *problems)

// subscriptionRules are the rules of every member, in the order they are
// applied: allowed_hosts before url and routes, which are checked against
// it.
var subscriptionRules = []fieldRule{
	textRule("name", nameLength, func(in *subscriptionInput) *string { return in.Name }, func(sub *record.Subscription, v string) { sub.Name = v }),
	textRule("description", descriptionLength, func(in *subscriptionInput) *string { return in.Description },
		func(sub *record.Subscription, v string) { sub.Description = v }),
	applyAllowedHosts,
	applyURL,
	applyEventTypes,
	applyCondition,
	applyExpression,
	applyPayload,
	func(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
		if in.Headers != nil {
			*p = append(*p, checkHeaders(*in.Headers)...)
			sub.Headers = *in.Headers
		}
	},
	func(s *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
		if in.Auth != nil {
			var fe []problem.FieldError
			sub.Auth, fe = s.authOf(in.Auth, sub)
			*p = append(*p, fe...)
		}
	},
	numberRule("rate_limit_per_second", rateLimit, "unlimited", func(in *subscriptionInput) *int32 { return in.RateLimitPerSecond },
		func(sub *record.Subscription, v int32) { sub.RateLimitPerSecond = v }),
	numberRule("timeout_ms", timeoutMS, "", func(in *subscriptionInput) *int32 { return in.TimeoutMS },
		func(sub *record.Subscription, v int32) { sub.TimeoutMS = v }),
	numberRule("max_attempts", maxAttempts, "", func(in *subscriptionInput) *int32 { return in.MaxAttempts },
		func(sub *record.Subscription, v int32) { sub.MaxAttempts = v }),
	numberRule("max_in_flight", maxInFlight, "the sender's adaptive default", func(in *subscriptionInput) *int32 { return in.MaxInFlight },
		func(sub *record.Subscription, v int32) { sub.MaxInFlight = v }),
	func(_ *Server, in *subscriptionInput, sub *record.Subscription, _ *problems) {
		if in.Ordered != nil {
			sub.Ordered = *in.Ordered
		}
	},
	applyEnabled,
	applyMetadata,
	applyRoutes,
	func(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
		if in.Batch != nil {
			var fe []problem.FieldError
			sub.Batch, fe = batchOf(in.Batch)
			*p = append(*p, fe...)
		}
	},
	func(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
		if in.AlertEmails != nil {
			*p = append(*p, checkAlertEmails(*in.AlertEmails)...)
			sub.AlertEmails = *in.AlertEmails
		}
	},
	applyDerive,
	func(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
		if in.Compression != nil {
			if !compressions[*in.Compression] {
				p.add("compression", `must be "gzip" or "" (none)`)
			}
			sub.Compression = *in.Compression
		}
	},
	func(s *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
		if in.ClientTLS != nil {
			var fe []problem.FieldError
			sub.ClientTLS, fe = s.clientTLSOf(in.ClientTLS, sub)
			*p = append(*p, fe...)
		}
	},
}

// textRule is the rule of a plain text member of bounded length.
func textRule(field string, b bound, get func(*subscriptionInput) *string, set func(*record.Subscription, string)) fieldRule {
	return func(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
		if v := get(in); v != nil {
			if !b.holds(len(*v)) {
				p.add(field, "must be at most %d characters", b.Max)
			}
			set(sub, *v)
		}
	}
}

// numberRule is the rule of an integer member within b; lowest says what
// the lowest value means when that needs saying.
func numberRule(field string, b bound, lowest string, get func(*subscriptionInput) *int32, set func(*record.Subscription, int32)) fieldRule {
	return func(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
		if v := get(in); v != nil {
			if !b.holds(int(*v)) {
				p.add(field, "must be %s", rangeText(b, lowest))
			}
			set(sub, *v)
		}
	}
}

func applyAllowedHosts(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.AllowedHosts == nil {
		return
	}
	if !allowedHostsCount.holds(len(*in.AllowedHosts)) {
		p.add("allowed_hosts", "lists at most %d hosts", allowedHostsCount.Max)
	}
	for i, h := range *in.AllowedHosts {
		if !hostPattern.MatchString(h) {
			p.add(fmt.Sprintf("allowed_hosts[%d]", i), "%q is not a host name (a leading *. allows subdomains)", h)
		}
	}
	sub.AllowedHosts = *in.AllowedHosts
}

func applyURL(s *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.URL == nil {
		return
	}
	if msg := s.checkURL(*in.URL); msg != "" {
		p.add("url", "%s", msg)
	}
	sub.URL = *in.URL
}

func applyEventTypes(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.EventTypes == nil {
		return
	}
	types := *in.EventTypes
	if !eventTypesCount.holds(len(types)) {
		p.add("event_types", "must list %d to %d event types", eventTypesCount.Min, eventTypesCount.Max)
	}
	for i, t := range types {
		if !eventTypeLength.holds(len(t)) || !eventTypePattern.MatchString(t) {
			p.add(fmt.Sprintf("event_types[%d]", i), "%q is not an event type or pattern like order.created, order.* or *", t)
		}
	}
	sub.EventTypes = types
}

// applyCondition: JSON null clears the condition.
func applyCondition(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.Condition == nil {
		return
	}
	sub.Condition = nil
	if raw := in.Condition; string(raw) != "null" {
		if _, err := condition.Parse(raw); err != nil {
			*p = append(*p, conditionError("condition", err))
		}
		c := string(raw)
		sub.Condition = &c
	}
}

// applyExpression: an empty expression clears it.
func applyExpression(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.Expression == nil {
		return
	}
	sub.Expression = nil
	if *in.Expression != "" {
		if _, err := condition.CompileExpression(*in.Expression); err != nil {
			p.add("expression", "%s", err)
		}
		sub.Expression = in.Expression
	}
}

func applyPayload(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.Payload == nil {
		return
	}
	if *in.Payload != "full" && *in.Payload != "changed" {
		p.add("payload", "must be full or changed")
	}
	sub.Payload = *in.Payload
}

// applyEnabled: turning a subscription off records that its owner did,
// unless it is off already for another reason (a 410); turning it on
// clears the reason.
func applyEnabled(_ *Server, in *subscriptionInput, sub *record.Subscription, _ *problems) {
	if in.Enabled == nil {
		return
	}
	sub.Enabled = *in.Enabled
	switch {
	case sub.Enabled:
		sub.DisabledReason = ""
	case sub.DisabledReason == "":
		sub.DisabledReason = subscription.ReasonOwner
	}
}

func applyMetadata(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.Metadata == nil {
		return
	}
	md := *in.Metadata
	if !metadataCount.holds(len(md)) {
		p.add("metadata", "holds at most %d keys", metadataCount.Max)
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if !metadataKeyLength.holds(len(k)) || !metadataValueLength.holds(len(md[k])) {
			p.add("metadata."+k, "keys must be %d to %d characters and values at most %d",
				metadataKeyLength.Min, metadataKeyLength.Max, metadataValueLength.Max)
		}
	}
	if raw, err := json.Marshal(md); err == nil && len(raw) > maxMetadataJSON {
		p.add("metadata", "is %d bytes as JSON, more than %d", len(raw), maxMetadataJSON)
	}
	sub.Metadata = md
}

// applyRoutes checks new routes, or the routes kept against new allowed
// hosts.
func applyRoutes(s *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.Routes == nil {
		if in.AllowedHosts != nil {
			for i, rt := range sub.Routes {
				if msg := s.checkRouteURL(rt.URL, sub.AllowedHosts); msg != "" {
					p.add("allowed_hosts", "routes[%d].url no longer fits: %s", i, msg)
				}
			}
		}
		return
	}
	if !routesCount.holds(len(*in.Routes)) {
		p.add("routes", "holds at most %d routes", routesCount.Max)
	}
	sub.Routes = []record.Route{}
	for i, raw := range *in.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		var rt routeView
		if fe := decodeStrict(raw, &rt); fe != nil {
			fe[0].Field = joinField(field, fe[0].Field)
			*p = append(*p, fe...)
			continue
		}
		if len(rt.Condition) == 0 || string(rt.Condition) == "null" {
			p.add(field+".condition", "is required")
		} else if _, err := condition.Parse(rt.Condition); err != nil {
			*p = append(*p, conditionError(field+".condition", err))
		}
		if msg := s.checkRouteURL(rt.URL, sub.AllowedHosts); msg != "" {
			p.add(field+".url", "%s", msg)
		}
		sub.Routes = append(sub.Routes, record.Route{Condition: string(rt.Condition), URL: rt.URL})
	}
}

func applyDerive(_ *Server, in *subscriptionInput, sub *record.Subscription, p *problems) {
	if in.Derive == nil {
		return
	}
	if !deriveCount.holds(len(*in.Derive)) {
		p.add("derive", "holds at most %d derived fields", deriveCount.Max)
	}
	sub.Derive = []record.Derive{}
	for i, raw := range *in.Derive {
		d, fe := deriveOf(raw, fmt.Sprintf("derive[%d]", i))
		*p = append(*p, fe...)
		sub.Derive = append(sub.Derive, d)
	}
}

// checkAlertEmails refuses what is not a bare address (a name, a list,
// CR/LF that would inject a header) and an address listed twice, naming
// the member at fault.
func checkAlertEmails(addrs []string) []problem.FieldError {
	var errs []problem.FieldError
	if !alertEmailsCount.holds(len(addrs)) {
		errs = append(errs, problem.FieldError{Field: "alert_emails", Detail: fmt.Sprintf("lists at most %d addresses", alertEmailsCount.Max)})
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
	if !headersCount.holds(len(headers)) {
		errs = append(errs, problem.FieldError{Field: "headers", Detail: fmt.Sprintf("holds at most %d headers", headersCount.Max)})
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
		case !httpguts.ValidHeaderFieldValue(headers[k]) || !headerValueLength.holds(len(headers[k])):
			detail = fmt.Sprintf("value must be at most %d characters without control characters", headerValueLength.Max)
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
		case a.Token != nil && (!tokenLength.holds(len(*a.Token)) || !httpguts.ValidHeaderFieldValue(*a.Token)):
			bad("token", fmt.Sprintf("must be %d to %d characters without control characters", tokenLength.Min, tokenLength.Max))
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
		if a.Username == nil || !usernameLength.holds(len(*a.Username)) || strings.Contains(*a.Username, ":") || !httpguts.ValidHeaderFieldValue(*a.Username) {
			bad("username", fmt.Sprintf("is required: %d to %d characters, no colon or control characters", usernameLength.Min, usernameLength.Max))
		} else {
			out.Username = *a.Username
		}
		switch {
		case a.Password != nil && !passwordLength.holds(len(*a.Password)):
			bad("password", fmt.Sprintf("must be at most %d characters", passwordLength.Max))
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
	if !batchEvents.holds(int(b.MaxEvents)) {
		errs = append(errs, problem.FieldError{Field: "batch.max_events", Detail: "must be " + rangeText(batchEvents, "")})
	}
	if !batchWaitMS.holds(int(b.MaxWaitMS)) {
		errs = append(errs, problem.FieldError{Field: "batch.max_wait_ms", Detail: "must be " + rangeText(batchWaitMS, "")})
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
	if !urlLength.holds(len(raw)) {
		return fmt.Sprintf("must be at most %d characters", urlLength.Max)
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
	case !urlLength.holds(len(raw)):
		return fmt.Sprintf("must be at most %d characters", urlLength.Max)
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
