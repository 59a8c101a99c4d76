package signature_test

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/signature"
)

var now = time.Unix(1700000000, 0)

func fixedNow() time.Time { return now }

// signed returns the Standard Webhooks headers for a message.
func signed(id string, ts time.Time, body []byte, secrets ...signature.Secret) http.Header {
	h := http.Header{}
	h.Set(signature.HeaderID, id)
	h.Set(signature.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(signature.HeaderSignature, signature.Sign(id, ts, body, secrets...))
	return h
}

func TestVerifyKnownAnswer(t *testing.T) {
	h := http.Header{}
	h.Set(signature.HeaderID, vectorID)
	h.Set(signature.HeaderTimestamp, strconv.Itoa(vectorTS))
	h.Set(signature.HeaderSignature, vectorSig)
	v := signature.Verifier{
		Secrets: []signature.Secret{mustSecret(t, vectorSecret)},
		Now:     func() time.Time { return time.Unix(vectorTS+10, 0) },
	}
	if err := v.Verify(h, []byte(vectorBody)); err != nil {
		t.Fatalf("Verify(spec vector): %v", err)
	}
}

func TestVerifyRotation(t *testing.T) {
	oldKey, newKey, other := newSecret(t), newSecret(t), newSecret(t)
	body := []byte(`{"id":"evt_1"}`)
	h := signed("msg_1", now, body, oldKey, newKey)
	tests := []struct {
		name    string
		secrets []signature.Secret
		wantErr error
	}{
		{"old secret", []signature.Secret{oldKey}, nil},
		{"new secret", []signature.Secret{newKey}, nil},
		{"both", []signature.Secret{newKey, oldKey}, nil},
		{"other and new", []signature.Secret{other, newKey}, nil},
		{"other only", []signature.Secret{other}, signature.ErrNoMatch},
		{"no secrets", nil, signature.ErrNoMatch},
		{"five secrets, last matches", []signature.Secret{other, other, other, other, oldKey}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := signature.Verifier{Secrets: tc.secrets, Now: fixedNow}
			if err := v.Verify(h, body); !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	sec := newSecret(t)
	body := []byte(`{"type":"invoice.paid","data":{"amount":42}}`)
	good := signed("msg_1", now, body, sec)
	goodSig := good.Get(signature.HeaderSignature)
	goodB64 := strings.TrimPrefix(goodSig, "v1,")

	tests := []struct {
		name    string
		header  func(h http.Header)
		body    []byte
		v       signature.Verifier
		wantErr error
	}{
		{name: "valid"},
		{name: "tampered body", body: []byte(`{"type":"invoice.paid","data":{"amount":43}}`), wantErr: signature.ErrNoMatch},
		{name: "empty body", body: []byte{}, wantErr: signature.ErrNoMatch},
		{name: "tampered id", header: set(signature.HeaderID, "msg_2"), wantErr: signature.ErrNoMatch},
		{name: "tampered timestamp", header: set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix()-1, 10)), wantErr: signature.ErrNoMatch},
		{name: "timestamp with leading zero", header: set(signature.HeaderTimestamp, "0"+strconv.FormatInt(now.Unix(), 10)), wantErr: signature.ErrNoMatch},
		{name: "tampered signature", header: set(signature.HeaderSignature, "v1,"+flip(goodB64)), wantErr: signature.ErrNoMatch},

		{name: "missing id", header: del(signature.HeaderID), wantErr: signature.ErrMissingHeaders},
		{name: "missing timestamp", header: del(signature.HeaderTimestamp), wantErr: signature.ErrMissingHeaders},
		{name: "missing signature", header: del(signature.HeaderSignature), wantErr: signature.ErrMissingHeaders},
		{name: "empty id", header: set(signature.HeaderID, ""), wantErr: signature.ErrMissingHeaders},
		{name: "no headers", header: func(h http.Header) { clear(h) }, wantErr: signature.ErrMissingHeaders},

		{name: "timestamp not a number", header: set(signature.HeaderTimestamp, "yesterday"), wantErr: signature.ErrTimestamp},
		{name: "timestamp with sign", header: set(signature.HeaderTimestamp, "+"+strconv.FormatInt(now.Unix(), 10)), wantErr: signature.ErrTimestamp},
		{name: "timestamp negative", header: set(signature.HeaderTimestamp, "-1"), wantErr: signature.ErrTimestamp},
		{name: "timestamp fractional", header: set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10)+".5"), wantErr: signature.ErrTimestamp},
		{name: "timestamp milliseconds", header: set(signature.HeaderTimestamp, strconv.FormatInt(now.UnixMilli(), 10)), wantErr: signature.ErrTimestamp},
		{name: "timestamp overflow", header: set(signature.HeaderTimestamp, "99999999999999999999999"), wantErr: signature.ErrTimestamp},
		{name: "timestamp max int64", header: set(signature.HeaderTimestamp, "9223372036854775807"), wantErr: signature.ErrTimestamp},
		{name: "timestamp zero", header: set(signature.HeaderTimestamp, "0"), wantErr: signature.ErrTimestamp},

		{name: "signature without comma", header: set(signature.HeaderSignature, "v1"+goodB64), wantErr: signature.ErrNoMatch},
		{name: "signature without version", header: set(signature.HeaderSignature, goodB64), wantErr: signature.ErrNoMatch},
		{name: "unknown version v1a ignored", header: set(signature.HeaderSignature, "v1a,"+goodB64), wantErr: signature.ErrNoMatch},
		{name: "unknown version v2 ignored", header: set(signature.HeaderSignature, "v2,"+goodB64), wantErr: signature.ErrNoMatch},
		{name: "upper-case version", header: set(signature.HeaderSignature, "V1,"+goodB64), wantErr: signature.ErrNoMatch},
		{name: "truncated signature", header: set(signature.HeaderSignature, goodSig[:len(goodSig)-1]), wantErr: signature.ErrNoMatch},
		{name: "signature with extra byte", header: set(signature.HeaderSignature, goodSig+"A"), wantErr: signature.ErrNoMatch},
		{name: "only spaces", header: set(signature.HeaderSignature, "   "), wantErr: signature.ErrNoMatch},
		{name: "only commas", header: set(signature.HeaderSignature, ",,,"), wantErr: signature.ErrNoMatch},
		{name: "valid among unknown versions", header: set(signature.HeaderSignature, "v1a,"+goodB64+" v2,abc "+goodSig+" v1,junk")},
		{name: "valid after extra spaces", header: set(signature.HeaderSignature, "  v1,AAAA   "+goodSig+"  ")},
		{name: "valid in second header line", header: func(h http.Header) {
			// Only the first line counts, as with every Standard Webhooks
			// library: a proxy that splits the header is not supported.
			h.Set(signature.HeaderSignature, "v1,AAAA")
			h.Add(signature.HeaderSignature, goodSig)
		}, wantErr: signature.ErrNoMatch},

		{name: "at past tolerance", v: at(now.Add(5 * time.Minute))},
		{name: "beyond past tolerance", v: at(now.Add(5*time.Minute + time.Second)), wantErr: signature.ErrTimestamp},
		{name: "at future tolerance", v: at(now.Add(-5 * time.Minute))},
		{name: "beyond future tolerance", v: at(now.Add(-5*time.Minute - time.Second)), wantErr: signature.ErrTimestamp},
		{name: "a day old", v: at(now.Add(24 * time.Hour)), wantErr: signature.ErrTimestamp},
		{name: "custom tolerance passes", v: signature.Verifier{Tolerance: time.Hour, Now: func() time.Time { return now.Add(59 * time.Minute) }}},
		{name: "custom tolerance fails", v: signature.Verifier{Tolerance: 10 * time.Second, Now: func() time.Time { return now.Add(11 * time.Second) }}, wantErr: signature.ErrTimestamp},
		{name: "negative tolerance means default", v: signature.Verifier{Tolerance: -time.Second, Now: func() time.Time { return now.Add(time.Minute) }}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := good.Clone()
			if tc.header != nil {
				tc.header(h)
			}
			b := body
			if tc.body != nil {
				b = tc.body
			}
			v := tc.v
			v.Secrets = []signature.Secret{sec}
			if v.Now == nil {
				v.Now = fixedNow
			}
			err := v.Verify(h, b)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func set(k, v string) func(http.Header) { return func(h http.Header) { h.Set(k, v) } }
func del(k string) func(http.Header)    { return func(h http.Header) { h.Del(k) } }
func at(t time.Time) signature.Verifier {
	return signature.Verifier{Now: func() time.Time { return t }}
}

// flip changes the first character of a base64 string to another valid one.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestVerifyDefaultClock(t *testing.T) {
	sec := newSecret(t)
	body := []byte("{}")
	v := signature.Verifier{Secrets: []signature.Secret{sec}}
	if err := v.Verify(signed("msg_1", time.Now(), body, sec), body); err != nil {
		t.Fatalf("Verify with the real clock: %v", err)
	}
	if err := v.Verify(signed("msg_1", time.Now().Add(-time.Hour), body, sec), body); !errors.Is(err, signature.ErrTimestamp) {
		t.Fatalf("Verify of an hour-old message = %v, want ErrTimestamp", err)
	}
}

func TestMiddleware(t *testing.T) {
	sec := newSecret(t)
	body := []byte(`{"type":"user.created"}`)
	big := make([]byte, 2048)
	rand.Read(big)

	tests := []struct {
		name       string
		body       []byte
		header     http.Header
		maxBody    int64
		wantStatus int
	}{
		{"valid", body, signed("msg_1", now, body, sec), 0, http.StatusNoContent},
		{"bad signature", body, signed("msg_1", now, []byte("other"), sec), 0, http.StatusUnauthorized},
		{"missing headers", body, http.Header{}, 0, http.StatusUnauthorized},
		{"stale", body, signed("msg_1", now.Add(-time.Hour), body, sec), 0, http.StatusUnauthorized},
		{"empty body", nil, signed("msg_1", now, nil, sec), 0, http.StatusNoContent},
		{"at the cap", big, signed("msg_1", now, big, sec), int64(len(big)), http.StatusNoContent},
		{"over the cap", big, signed("msg_1", now, big, sec), int64(len(big)) - 1, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var called bool
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				got, err := io.ReadAll(r.Body)
				if err != nil || string(got) != string(tc.body) {
					t.Errorf("next read body %q (err %v), want %q", got, err, tc.body)
				}
				if r.ContentLength != int64(len(tc.body)) {
					t.Errorf("next saw ContentLength %d, want %d", r.ContentLength, len(tc.body))
				}
				w.WriteHeader(http.StatusNoContent)
			})
			v := &signature.Verifier{Secrets: []signature.Secret{sec}, Now: fixedNow, MaxBody: tc.maxBody}
			req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(string(tc.body)))
			for k, vs := range tc.header {
				req.Header[k] = vs
			}
			rec := httptest.NewRecorder()
			v.Middleware(next).ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tc.wantStatus)
			}
			if wantCalled := tc.wantStatus == http.StatusNoContent; called != wantCalled {
				t.Errorf("next called = %v, want %v", called, wantCalled)
			}
		})
	}
}

func TestMiddlewareDefaultCap(t *testing.T) {
	sec := newSecret(t)
	body := make([]byte, signature.DefaultMaxBody+1)
	v := &signature.Verifier{Secrets: []signature.Secret{sec}, Now: fixedNow}
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(string(body)))
	for k, vs := range signed("msg_1", now, body, sec) {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	v.Middleware(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d for a body of DefaultMaxBody+1, want 413", rec.Code)
	}
}

func BenchmarkVerify(b *testing.B) {
	body := make([]byte, 1024)
	rand.Read(body)
	a, c := newSecret(b), newSecret(b)
	h := signed("msg_2ZfQ8mYkR3dLw0vXcT1pHn", now, body, a, c)
	v := signature.Verifier{Secrets: []signature.Secret{c}, Now: fixedNow}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := v.Verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCanonicalHeaderNames(t *testing.T) {
	// Verify reads the canonical spellings; a request whose headers arrive
	// in any case must still verify.
	sec := newSecret(t)
	body := []byte("{}")
	good := signed("msg_1", now, body, sec)
	h := http.Header{}
	for _, k := range []string{signature.HeaderID, signature.HeaderTimestamp, signature.HeaderSignature} {
		h[http.CanonicalHeaderKey(strings.ToUpper(k))] = []string{good.Get(k)}
	}
	v := signature.Verifier{Secrets: []signature.Secret{sec}, Now: fixedNow}
	if err := v.Verify(h, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}
