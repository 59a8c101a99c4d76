package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Verifier's zero fields.
const (
	// DefaultTolerance is how far webhook-timestamp may be from the
	// receiver's clock, either way: long enough for clock skew and a slow
	// network, short enough that a captured request cannot be replayed
	// later. It is the Standard Webhooks libraries' default.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBody is the largest body Middleware reads.
	DefaultMaxBody = 1 << 20
)

// The header names in textproto's canonical form, the keys of http.Header.
const (
	canonicalID        = "Webhook-Id"
	canonicalTimestamp = "Webhook-Timestamp"
	canonicalSignature = "Webhook-Signature"
)

// Errors Verify wraps, so that callers can tell them apart with errors.Is.
var (
	// ErrMissingHeaders means webhook-id, webhook-timestamp or
	// webhook-signature is absent or empty.
	ErrMissingHeaders = errors.New("signature: missing webhook headers")
	// ErrTimestamp means webhook-timestamp is not unix seconds or is
	// outside the tolerance.
	ErrTimestamp = errors.New("signature: bad webhook timestamp")
	// ErrNoMatch means no v1 signature matches any of the secrets.
	ErrNoMatch = errors.New("signature: no matching signature")
)

// Verifier checks signed webhook requests. Its fields are read-only once it
// is in use; it is then safe for concurrent use.
type Verifier struct {
	// Secrets are the keys a signature may match. During a rotation, list
	// both the old and the new one.
	Secrets []Secret
	// Tolerance bounds how old, or how far in the future, webhook-timestamp
	// may be. Zero or negative means DefaultTolerance.
	Tolerance time.Duration
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
	// MaxBody is the largest body Middleware reads, in bytes. Zero or
	// negative means DefaultMaxBody.
	MaxBody int64
}

// Verify checks the Standard Webhooks headers h against body: webhook-id is
// present, webhook-timestamp is within the tolerance of now, and at least one
// "v1," entry of webhook-signature matches one of the secrets. Entries with
// other version prefixes are ignored, as the spec asks. The error wraps
// ErrMissingHeaders, ErrTimestamp or ErrNoMatch.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	// Canonical keys: Get would otherwise allocate to canonicalise the
	// lower-case constants on every call.
	id, rawTS, sigs := h.Get(canonicalID), h.Get(canonicalTimestamp), h.Get(canonicalSignature)
	if id == "" || rawTS == "" || sigs == "" {
		var missing []string
		for _, kv := range [...][2]string{{HeaderID, id}, {HeaderTimestamp, rawTS}, {HeaderSignature, sigs}} {
			if kv[1] == "" {
				missing = append(missing, kv[0])
			}
		}
		return fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", "))
	}
	if err := v.checkTimestamp(rawTS); err != nil {
		return err
	}
	if len(v.Secrets) == 0 {
		return fmt.Errorf("%w: the verifier has no secrets", ErrNoMatch)
	}

	// One HMAC per secret, however many entries the header lists: the
	// entries cost a comparison each, so a long header cannot multiply the
	// hashing of a large body.
	var stack [4][sigLen]byte
	want := stack[:0]
	if len(v.Secrets) > len(stack) {
		want = make([][sigLen]byte, 0, len(v.Secrets))
	}
	m := getMacer()
	m.buf = appendPrefix(m.buf[:0], id, rawTS)
	for _, s := range v.Secrets {
		var enc [sigLen]byte
		base64.StdEncoding.Encode(enc[:], m.mac(s.std, m.buf, body))
		want = append(want, enc)
	}
	putMacer(m)

	for entry := range strings.FieldsSeq(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" || len(sig) != sigLen {
			continue
		}
		var got [sigLen]byte
		copy(got[:], sig)
		for i := range want {
			if hmac.Equal(got[:], want[i][:]) {
				return nil
			}
		}
	}
	return ErrNoMatch
}

// checkTimestamp parses webhook-timestamp and checks it against the
// tolerance.
func (v *Verifier) checkTimestamp(raw string) error {
	// ParseUint refuses signs, spaces and underscores; 63 bits keeps the
	// arithmetic below free of overflow.
	ts, err := strconv.ParseUint(raw, 10, 63)
	if err != nil || len(raw) > 19 {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrTimestamp, HeaderTimestamp, truncate(raw))
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	nowSec, tolSec := now().Unix(), int64(tol/time.Second)
	switch age := nowSec - int64(ts); {
	case age > tolSec:
		return fmt.Errorf("%w: %s is %ds old, tolerance %s", ErrTimestamp, HeaderTimestamp, age, tol)
	case age < -tolSec:
		return fmt.Errorf("%w: %s is %ds in the future, tolerance %s", ErrTimestamp, HeaderTimestamp, -age, tol)
	}
	return nil
}

// truncate keeps an attacker-chosen header value from bloating an error.
func truncate(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// Middleware verifies each request before next sees it. It reads the body
// (at most MaxBody bytes: larger requests get 413), answers 401 when Verify
// fails, and otherwise hands next the request with its body restored.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	limit := v.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			var err error
			body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			if err != nil {
				if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
					http.Error(w, "webhook body too large", http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "read webhook body", http.StatusBadRequest)
				return
			}
		}
		if err := v.Verify(r.Header, body); err != nil {
			// The reason (stale timestamp, no match) helps the sender fix its
			// clock or secret and reveals nothing about the key.
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// ErrGitHubSignature is returned by VerifyGitHub when X-Hub-Signature-256 is
// missing, malformed or matches none of the secrets.
var ErrGitHubSignature = errors.New("signature: X-Hub-Signature-256 does not match")

// VerifyGitHub checks a GitHub-style X-Hub-Signature-256 value
// ("sha256=<hex>") against body, keyed with each secret's text as
// SignGitHub keys it. It checks no timestamp: prefer Verifier, which also
// refuses replays.
func VerifyGitHub(header string, body []byte, secrets ...Secret) error {
	hexSig, ok := strings.CutPrefix(header, githubPrefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return fmt.Errorf("%w: want %s<64 hex digits>", ErrGitHubSignature, githubPrefix)
	}
	for _, s := range secrets {
		if hmac.Equal([]byte(SignGitHub(body, s)[len(githubPrefix):]), []byte(strings.ToLower(hexSig))) {
			return nil
		}
	}
	return ErrGitHubSignature
}
