package index

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/routeurl"
)

// URL is the target for this event: the first matching route's, else the
// subscription's. A route URL may take parts from the event
// ({{data.tenant_host}}); the result must be https and its host one of
// the subscription's allowed_hosts, or URL returns why not.
func (e *Entry) URL(doc condition.Document) (string, error) {
	for _, r := range e.Routes {
		if r.Condition.Match(doc) {
			if !strings.Contains(r.URL, "{{") {
				return r.URL, nil
			}
			return e.fill(r.URL, doc)
		}
	}
	return e.Sub.URL, nil
}

func (e *Entry) fill(tmpl string, doc condition.Document) (string, error) {
	var missing []string
	filled := routeurl.Placeholder.ReplaceAllStringFunc(tmpl, func(m string) string {
		field := routeurl.Placeholder.FindStringSubmatch(m)[1]
		path, err := condition.ParsePath(field)
		if err != nil {
			missing = append(missing, field)
			return ""
		}
		switch v, _ := doc.Lookup(path); v := v.(type) {
		case string:
			return url.PathEscape(v)
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		default:
			missing = append(missing, field)
			return ""
		}
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("route URL %s: no string or number at %s", tmpl, strings.Join(missing, ", "))
	}
	if len(filled) > routeurl.MaxURLLen {
		return "", fmt.Errorf("route URL %s became %d bytes, more than %d", tmpl, len(filled), routeurl.MaxURLLen)
	}
	u, err := url.Parse(filled)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || !routeurl.ValidPort(u.Port()) {
		return "", fmt.Errorf("route URL %s became %q, not an https URL with a valid port", tmpl, filled)
	}
	if !routeurl.HostAllowed(u.Hostname(), e.Sub.AllowedHosts) {
		return "", fmt.Errorf("route URL %s became host %q, which is not in allowed_hosts", tmpl, u.Hostname())
	}
	return filled, nil
}
