package api

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/ingest/internal/catalog"
	"github.com/hookline/hookline/services/ingest/internal/console"
)

// testNow is the clock of unit tests.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// offlineServer is a Server without Kafka or Redis: enough for everything
// that is refused before a write.
func offlineServer(t testing.TB) *Server {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := ssrf.New([]string{"allowed.test", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeys([]string{"acme=key-acme", "globex=key-globex", "pager=key-pager"})
	if err != nil {
		t.Fatal(err)
	}
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := console.Handler(console.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &Server{
		View:    subscription.NewView(wire.NewTopics("offline."), codecs, testinfra.Logger()),
		Catalog: catalog.New(wire.NewTopics("offline."), codecs, testinfra.Logger()),
		Box:     box, Guard: guard, Keys: keys, Codecs: codecs, MaxBody: 1 << 20,
		Log: testinfra.Logger(), Now: func() time.Time { return testNow },
		Console: pages,
	}
}

// subBody is a valid create body with the members of override (a JSON
// object) replacing or adding to it; an override member set to null
// removes that member.
func subBody(t *testing.T, override string) string {
	t.Helper()
	m := map[string]any{"url": "https://example.com/hook", "event_types": []string{"order.*"}}
	if override != "" {
		var o map[string]any
		if err := json.Unmarshal([]byte(override), &o); err != nil {
			t.Fatalf("override %s: %v", override, err)
		}
		for k, v := range o {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// do sends one request to h with key's credentials and JSON content.
func do(t *testing.T, h http.Handler, method, path, key, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// problemOf decodes a problem+json answer.
func problemOf(t *testing.T, status int, header http.Header, body []byte) problem.Details {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d content type %q, want problem+json; body %s", status, ct, body)
	}
	var p problem.Details
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Status != status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v does not match status %d", p, status)
	}
	return p
}

// fieldsOf lists the fields named by errs.
func fieldsOf(errs []problem.FieldError) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Field
	}
	return out
}

// hasField reports whether errs name field with a detail.
func hasField(errs []problem.FieldError, field string) bool {
	for _, e := range errs {
		if e.Field == field && e.Detail != "" {
			return true
		}
	}
	return false
}

func jsonBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}
