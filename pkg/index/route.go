package index

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/routeurl"
)

// Target is where the event goes for this entry: the first matching
// route, else the subscription's url. It returns the URL as of now and
// the route it came from (nil for the url), with the event's values of a
// route URL's placeholders: the sender resolves the target again from the
// subscription at each attempt (routeurl.Resolve). A route URL filled from
// the event ({{data.tenant_host}}) must have every value and a host in the
// subscription's allowed_hosts, or Target says why not; the route is
// returned then too, so a replay after the owner fixed the subscription
// can still be resolved. The scheme is checked by the sender, which knows
// the hosts the operator allows over http.
func (e *Entry) Target(doc condition.Document) (string, *record.RouteRef, error) {
	for _, r := range e.Routes {
		if !r.Condition.Match(doc) {
			continue
		}
		ref := &record.RouteRef{Condition: r.ID, Values: map[string]string{}}
		if !routeurl.IsTemplate(r.URL) {
			return r.URL, ref, nil
		}
		filled, values, missing := routeurl.Fill(r.URL, func(field string) (string, bool) { return lookup(doc, field) })
		ref.Values = values
		if len(missing) > 0 {
			return "", ref, fmt.Errorf("route URL %s: no string or number at %s", r.URL, strings.Join(missing, ", "))
		}
		if len(filled) > routeurl.MaxURLLen {
			return "", ref, fmt.Errorf("route URL %s became %d bytes, more than %d", r.URL, len(filled), routeurl.MaxURLLen)
		}
		u, err := url.Parse(filled)
		switch {
		case err != nil || u.Host == "" || u.User != nil || !routeurl.ValidPort(u.Port()):
			return "", ref, fmt.Errorf("route URL %s became %q, not a URL with a host and a valid port", r.URL, filled)
		case !routeurl.HostAllowed(u.Hostname(), e.Sub.AllowedHosts):
			return "", ref, fmt.Errorf("route URL %s became host %q, which is not in allowed_hosts", r.URL, u.Hostname())
		}
		return filled, ref, nil
	}
	return e.Sub.URL, nil, nil
}

// lookup is the event's value at field as URL text: a string, or a
// number written out; false for anything else.
func lookup(doc condition.Document, field string) (string, bool) {
	path, err := condition.ParsePath(field)
	if err != nil {
		return "", false
	}
	switch v, _ := doc.Lookup(path); v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}
