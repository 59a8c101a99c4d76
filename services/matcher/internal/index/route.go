package index

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/hookline/hookline/pkg/condition"
)

// placeholder is {{field.path}} in a route URL.
var placeholder = regexp.MustCompile(`\{\{\s*([^{}\s]+)\s*\}\}`)

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
	filled := placeholder.ReplaceAllStringFunc(tmpl, func(m string) string {
		field := placeholder.FindStringSubmatch(m)[1]
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
	u, err := url.Parse(filled)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("route URL %s became %q, not an https URL", tmpl, filled)
	}
	if !hostAllowed(u.Hostname(), e.Sub.AllowedHosts) {
		return "", fmt.Errorf("route URL %s became host %q, which is not in allowed_hosts", tmpl, u.Hostname())
	}
	return filled, nil
}

// hostAllowed matches host against exact names and *.suffix patterns.
func hostAllowed(host string, allowed []string) bool {
	host = strings.ToLower(host)
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
