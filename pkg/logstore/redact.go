package logstore

import (
	"bytes"
	"net/http"
	"strings"
)

// Redacted replaces a credential's value in stored headers.
const Redacted = "[redacted]"

// Authorization, Proxy-Authorization, Cookie and Set-Cookie carry
// credentials whatever their value looks like (isCredential). So does a
// custom header with one of secretWords in its name (X-Api-Key,
// X-Client-Secret...), always, and one with one of credentialWords
// (X-Auth-Token...) unless its name says it is a signature: a signature is
// not a credential, and seeing it is how an endpoint owner debugs
// verification (X-Auth-Signature), while X-Signature-Secret is a secret.
var (
	secretWords     = []string{"secret", "password", "passwd", "api-key", "apikey", "credential", "private"}
	credentialWords = []string{"token", "session", "auth"}
)

// RedactHeaders returns a copy of h with the values of credential headers
// replaced: Authorization keeps its scheme ("Bearer [redacted]"), so that
// a user still sees which kind of credential was sent.
func RedactHeaders(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	n := 0
	for _, values := range h {
		n += len(values)
	}
	// One backing array for every value: the sender redacts two header
	// sets per attempt.
	all := make([]string, 0, n)
	out := make(http.Header, len(h))
	for name, values := range h {
		start := len(all)
		if !isCredential(name) {
			all = append(all, values...)
		} else {
			for _, v := range values {
				red := Redacted
				if scheme, _, ok := strings.Cut(strings.TrimSpace(v), " "); ok && strings.HasSuffix(strings.ToLower(name), "authorization") {
					red = scheme + " " + Redacted
				}
				all = append(all, red)
			}
		}
		out[name] = all[start:len(all):len(all)]
	}
	return out
}

// isCredential runs for every header of every attempt the sender makes,
// so a name of common length is lower-cased on the stack, not allocated.
func isCredential(name string) bool {
	var buf [64]byte
	lower := buf[:0]
	if len(name) > len(buf) {
		lower = make([]byte, 0, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c)
	}
	switch string(lower) {
	case "authorization", "proxy-authorization", "cookie", "set-cookie":
		return true
	}
	for _, w := range secretWords {
		if bytes.Contains(lower, []byte(w)) {
			return true
		}
	}
	if bytes.Contains(lower, []byte("signature")) {
		return false
	}
	for _, w := range credentialWords {
		if bytes.Contains(lower, []byte(w)) {
			return true
		}
	}
	return false
}
