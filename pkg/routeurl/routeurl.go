// Package routeurl decides where a delivery goes. A subscription has a
// url and may have routes, each a condition and a URL; a route URL may
// take parts from the event (https://{{data.shop}}.example.com/hooks),
// limited to the subscription's allowed_hosts. The ingest API checks the
// rules when a subscription is written; the matcher picks the route and
// records it with the event's values of its placeholders (a
// record.RouteRef); the sender resolves the target from the subscription
// as it is at each attempt (Resolve), so a retry or a replay goes to the
// URL its owner has set since, and checks it again (Check).
package routeurl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/hookline/hookline/pkg/record"
)

// Placeholder is {{field.path}} in a route URL; its group is the path.
var Placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.\[\]-]+)\s*\}\}`)

// IsTemplate reports whether a route URL takes parts from the event.
func IsTemplate(u string) bool { return strings.Contains(u, "{{") }

// HostAllowed matches host against allowed_hosts entries: exact names, or
// *.example.com for any subdomain of example.com. Case and a trailing dot
// do not matter.
func HostAllowed(host string, allowed []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range allowed {
		a = strings.ToLower(a)
		if suffix, ok := strings.CutPrefix(a, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
		} else if host == a {
			return true
		}
	}
	return false
}

// Fill fills a route URL template: value returns the event's value at a
// placeholder's path as text (a string, or a number written out), false
// when there is none. Values are path-escaped, so that none can change
// the URL's structure. It returns the URL, the values used by path (what
// a RouteRef records), and the paths that had no value; the URL is
// meaningful only when none is missing.
func Fill(tmpl string, value func(path string) (string, bool)) (filled string, values map[string]string, missing []string) {
	values = map[string]string{}
	filled = Placeholder.ReplaceAllStringFunc(tmpl, func(m string) string {
		path := Placeholder.FindStringSubmatch(m)[1]
		v, ok := value(path)
		if !ok {
			missing = append(missing, path)
			return ""
		}
		values[path] = v
		return url.PathEscape(v)
	})
	return filled, values, missing
}

// ErrRefused is wrapped by every error of Check and Resolve: the URL is
// not one Hookline may call.
var ErrRefused = errors.New("target refused")

// Check applies to a URL about to be called the rules every target URL
// follows: an absolute https URL without credentials, or http to a host
// the operator allowlists (httpAllowed, HOOKLINE_ALLOW_HOSTS; nil allows
// none); and for a URL filled from the event (allowed non-nil), a host in
// the subscription's allowed_hosts; at most MaxURLLen bytes, with a port
// that can be dialled. The SSRF guard checks the address again when it is
// dialled.
func Check(raw string, httpAllowed func(host string) bool, allowed []string) error {
	if len(raw) > MaxURLLen {
		return fmt.Errorf("%w: the URL is %d bytes, more than %d", ErrRefused, len(raw), MaxURLLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%w: %q is not an absolute URL", ErrRefused, raw)
	case !ValidPort(u.Port()):
		return fmt.Errorf("%w: %q has port %q, not one from 1 to 65535", ErrRefused, raw, u.Port())
	case u.User != nil:
		return fmt.Errorf("%w: %q holds credentials", ErrRefused, raw)
	case u.Scheme == "http" && (httpAllowed == nil || !httpAllowed(u.Hostname())):
		return fmt.Errorf("%w: %q uses http, which is allowed only to hosts the operator allowlists", ErrRefused, raw)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%w: %q is not an https URL", ErrRefused, raw)
	case allowed != nil && !HostAllowed(u.Hostname(), allowed):
		return fmt.Errorf("%w: host %q is not in allowed_hosts", ErrRefused, u.Hostname())
	}
	return nil
}

// ConditionID names a route by its condition (the JSON of a condition
// tree), in canonical form, so that a delivery finds its route wherever
// the owner has moved it in the list and however the JSON is spaced. Two
// routes with the same condition are one: the first always matches
// first. Invalid JSON is named by its own bytes.
func ConditionID(condition string) string {
	canonical := []byte(condition)
	dec := json.NewDecoder(strings.NewReader(condition))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) == nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if enc.Encode(v) == nil { // map keys sorted, numbers as written
			canonical = bytes.TrimSpace(buf.Bytes())
		}
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:16])
}

// Resolve returns the URL an attempt of d goes to now, from sub as it is:
//
//   - its url when d names no route;
//   - the route d names (by its condition) as it is now, its placeholders
//     filled from the values d recorded; when that route is gone, the url
//     if no route is left (every event goes there now), else an error: the
//     event is not at hand to pick another route, and guessing could send
//     it where its owner no longer wants it;
//   - for a delivery written before deliveries named their target
//     (d.ResolveURL false): the URL it was matched with, since whether
//     that was the url or a route is not known.
//
// The result passes Check; otherwise Resolve says why not.
func Resolve(sub *record.Subscription, d *record.Delivery, httpAllowed func(host string) bool) (string, error) {
	target, allowed, err := pick(sub, d)
	if err != nil {
		return "", err
	}
	if err := Check(target, httpAllowed, allowed); err != nil {
		return "", err
	}
	return target, nil
}

// pick chooses the target, with the allowed hosts it must be in (nil: not
// filled from the event).
func pick(sub *record.Subscription, d *record.Delivery) (string, []string, error) {
	switch {
	case !d.ResolveURL:
		return d.URL, nil, nil
	case d.Route == nil:
		return sub.URL, nil, nil
	}
	for _, r := range sub.Routes {
		if ConditionID(r.Condition) != d.Route.Condition {
			continue
		}
		if !IsTemplate(r.URL) {
			return r.URL, nil, nil
		}
		filled, _, missing := Fill(r.URL, func(path string) (string, bool) {
			v, ok := d.Route.Values[path]
			return v, ok
		})
		if len(missing) > 0 {
			return "", nil, fmt.Errorf("%w: route URL %s needs %s, which the event did not have when it was matched",
				ErrRefused, r.URL, strings.Join(missing, ", "))
		}
		return filled, sub.AllowedHosts, nil
	}
	if len(sub.Routes) == 0 {
		return sub.URL, nil, nil
	}
	return "", nil, fmt.Errorf("%w: the route this delivery was matched to is no longer on the subscription (removed, or its condition changed)", ErrRefused)
}

// Example is a URL the template could become, for checking its fixed
// parts when a subscription is written: each placeholder becomes "x",
// except in the port, where it becomes "443" (a port taken from the event
// may be any valid one).
func Example(tmpl string) string {
	port := portSpan(tmpl)
	var b strings.Builder
	last := 0
	for _, m := range Placeholder.FindAllStringIndex(tmpl, -1) {
		b.WriteString(tmpl[last:m[0]])
		if m[0] >= port[0] && m[1] <= port[1] {
			b.WriteString("443")
		} else {
			b.WriteString("x")
		}
		last = m[1]
	}
	b.WriteString(tmpl[last:])
	return b.String()
}

// portSpan is where the port of a URL template is: after the last colon
// of the authority (outside an IPv6 literal), up to its end; empty when
// there is none.
func portSpan(tmpl string) [2]int {
	start := strings.Index(tmpl, "://")
	if start < 0 {
		return [2]int{}
	}
	start += len("://")
	end := len(tmpl)
	if i := strings.IndexAny(tmpl[start:], "/?#"); i >= 0 {
		end = start + i
	}
	authority := tmpl[start:end]
	colon := strings.LastIndexByte(authority, ':')
	if colon < 0 || colon < strings.LastIndexByte(authority, ']') || colon < strings.LastIndexByte(authority, '@') {
		return [2]int{}
	}
	return [2]int{start + colon + 1, end}
}

// MaxURLLen is the longest URL a subscription or route may hold, and the
// longest one filled from an event.
const MaxURLLen = 2048

// ValidPort accepts an absent port (the scheme's) or 1 to 65535 written
// without leading zeros; url.Parse lets :0 and :99999 through, and
// neither can be dialed.
func ValidPort(port string) bool {
	if port == "" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && port[0] != '0'
}
