// Package console serves Hookline's web console: a small hand-written
// front end (HTML, CSS and JavaScript modules embedded in the binary, no
// third-party code, nothing fetched from elsewhere) that works over the
// public JSON API with the signed-in API key or portal token.
//
// Every answer carries a strict Content-Security-Policy: scripts and
// styles only from the console itself, no inline script, no eval, Trusted
// Types required (so no HTML string can reach the DOM), connections only
// to this origin, and framing only by the operator's allowed origins.
package console

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
)

//go:embed static
var files embed.FS

// Options configure the console.
type Options struct {
	// FrameAncestors are the origins allowed to embed the console in an
	// iframe (HOOKLINE_PORTAL_FRAME_ANCESTORS), e.g.
	// https://app.example.com; empty: no framing at all.
	FrameAncestors []string
}

// origin is what a frame-ancestors source may be: a scheme and host
// (with *. for subdomains) and an optional port, or 'self'.
var origin = regexp.MustCompile(`^(https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?|'self')$`)

// CheckFrameAncestors refuses what would weaken or break the policy: a
// wildcard, a path, or anything that could add another directive.
func CheckFrameAncestors(list []string) error {
	for _, a := range list {
		if !origin.MatchString(a) {
			return fmt.Errorf("frame ancestor %q is not an origin like https://app.example.com (or 'self')", a)
		}
	}
	return nil
}

// Policy is the Content-Security-Policy of every console answer.
func Policy(o Options) string {
	ancestors := "'none'"
	if len(o.FrameAncestors) > 0 {
		ancestors = strings.Join(o.FrameAncestors, " ")
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self'",
		"connect-src 'self'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors " + ancestors,
		"require-trusted-types-for 'script'",
		"trusted-types 'none'",
	}, "; ")
}

// Handler serves the console under /console/.
func Handler(o Options) (http.Handler, error) {
	if err := CheckFrameAncestors(o.FrameAncestors); err != nil {
		return nil, err
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	csp := Policy(o)
	files := http.StripPrefix("/console/", http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		if len(o.FrameAncestors) == 0 {
			h.Set("X-Frame-Options", "DENY") // for browsers without frame-ancestors
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		// Revalidated on every load, so an upgraded ingest serves its own
		// console at once; the files are small.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}), nil
}
