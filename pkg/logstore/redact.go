package logstore

import (
	"net/http"
	"strings"
)

// Redacted replaces a credential's value in stored headers.
const Redacted = "[redacted]"

// credentialHeaders carry credentials whatever their value looks like.
var credentialHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Set-Cookie":          true,
}

// credentialWords in a header's name mark a custom credential header
// (X-Api-Key, X-Auth-Token, X-Client-Secret...). Signature headers are
// kept: a signature is not a credential, and seeing it is how an endpoint
// owner debugs verification.
var credentialWords = []string{"token", "secret", "password", "passwd", "api-key", "apikey", "credential", "session", "auth"}

// RedactHeaders returns a copy of h with the values of credential headers
// replaced: Authorization keeps its scheme ("Bearer [redacted]"), so that
// a user still sees which kind of credential was sent.
func RedactHeaders(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for name, values := range h {
		if !isCredential(name) {
			out[name] = append([]string(nil), values...)
			continue
		}
		red := make([]string, len(values))
		for i, v := range values {
			red[i] = Redacted
			if scheme, _, ok := strings.Cut(strings.TrimSpace(v), " "); ok && strings.HasSuffix(strings.ToLower(name), "authorization") {
				red[i] = scheme + " " + Redacted
			}
		}
		out[name] = red
	}
	return out
}

func isCredential(name string) bool {
	if credentialHeaders[http.CanonicalHeaderKey(name)] {
		return true
	}
	lower := strings.ToLower(name)
	if strings.Contains(lower, "signature") {
		return false
	}
	for _, w := range credentialWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}
