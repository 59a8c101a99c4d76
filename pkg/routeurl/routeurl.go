// Package routeurl defines route URLs that take parts from the event
// (https://{{data.shop}}.example.com/hooks) and the allowed_hosts rule the
// filled URL must pass: the ingest API checks both when a subscription is
// written, the matcher applies them to each event.
package routeurl

import (
	"regexp"
	"strconv"
	"strings"
)

// Placeholder is {{field.path}} in a route URL; its group is the path.
var Placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.\[\]-]+)\s*\}\}`)

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
