package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestServesTheConsoleWithItsHeaders(t *testing.T) {
	h, err := Handler(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, contentType string
		status            int
	}{
		{"/console/", "text/html", 200},
		{"/console/js/main.js", "text/javascript", 200},
		{"/console/console.css", "text/css", 200},
		{"/console/favicon.svg", "image/svg+xml", 200},
		{"/console/nothing.js", "", 404},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), tc.contentType) {
				t.Fatalf("%s: %d %q, want %d %q", tc.path, rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.contentType)
			}
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
				"Content-Security-Policy": Policy(Options{}),
			} {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestPolicyIsStrict(t *testing.T) {
	p := Policy(Options{})
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'", "base-uri 'none'"} {
		if !strings.Contains(p, want) {
			t.Errorf("policy %q lacks %q", p, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "data:"} {
		if strings.Contains(p, bad) {
			t.Errorf("policy %q allows %q", p, bad)
		}
	}
	framed := Policy(Options{FrameAncestors: []string{"https://app.example.com", "'self'"}})
	if !strings.Contains(framed, "frame-ancestors https://app.example.com 'self'") {
		t.Errorf("framed policy %q", framed)
	}
}

func TestFrameAncestorsAreOrigins(t *testing.T) {
	for _, ok := range [][]string{nil, {"https://app.example.com"}, {"https://*.example.com:8443", "'self'"}, {"http://localhost:3000"}} {
		if err := CheckFrameAncestors(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"*", "https://a.example.com/path", "https://a.example.com; script-src *", "'unsafe-inline'", "javascript:", "https://a b"} {
		if _, err := Handler(Options{FrameAncestors: []string{bad}}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	h, _ := Handler(Options{FrameAncestors: []string{"https://app.example.com"}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/console/", nil))
	if rec.Header().Get("X-Frame-Options") != "" {
		t.Error("X-Frame-Options sent with allowed frame ancestors: it would forbid what they allow")
	}
}

// TestNoHTMLSinksInTheFrontEnd: the console builds its DOM from text
// nodes only. Trusted Types enforce it in the browser; this catches it
// before, in every browser.
func TestNoHTMLSinksInTheFrontEnd(t *testing.T) {
	sinks := regexp.MustCompile(`\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setTimeout\(\s*["'\x60]|createContextualFragment|DOMParser`)
	err := fs.WalkDir(files, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".js") || strings.HasSuffix(path, ".html")) {
			return err
		}
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if sinks.MatchString(line) {
				t.Errorf("%s:%d uses an HTML or code sink: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		if strings.HasSuffix(path, ".html") && regexp.MustCompile(`<script(?:\s[^>]*)?>[^<\s]`).Match(b) {
			t.Errorf("%s has an inline script", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
