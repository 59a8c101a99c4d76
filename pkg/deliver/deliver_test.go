package deliver_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testreceiver"
)

type receiver struct{ *testreceiver.Receiver }

func newReceiver(t *testing.T, respond http.HandlerFunc) receiver {
	t.Helper()
	return receiver{testreceiver.New(t, respond)}
}

func (r receiver) requests() []testreceiver.Request { return r.Requests() }

// only returns the one request the receiver got.
func (r receiver) only(t *testing.T) testreceiver.Request {
	t.Helper()
	got := r.Requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	return got[0]
}

// client trusts the receiver's certificate and allowlists 127.0.0.1, as
// the tests and the local demo configure the sender.
func (r receiver) client(t *testing.T) *http.Client {
	t.Helper()
	return guardedClient(t, r.Cert, "127.0.0.1")
}

func guardedClient(t *testing.T, cert selfsigned.Cert, allow ...string) *http.Client {
	t.Helper()
	guard, err := ssrf.New(allow)
	if err != nil {
		t.Fatal(err)
	}
	c := deliver.NewClient(deliver.ClientOptions{Guard: guard, RootCAs: cert.Pool(), MaxConnsPerHost: 4})
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func newSecret(t *testing.T) signature.Secret {
	t.Helper()
	s, _, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// githubSignature computes X-Hub-Signature-256 independently of the
// signature package, keyed with the secret's whsec_ form as GitHub-webhook
// libraries take it.
func githubSignature(t *testing.T, s signature.Secret, body []byte) string {
	t.Helper()
	m := hmac.New(sha256.New, []byte(s.String()))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func send(t *testing.T, r receiver, req deliver.Request) deliver.Result {
	t.Helper()
	if req.URL == "" {
		req.URL = r.URL + "/hook"
	}
	if req.ID == "" {
		req.ID = "msg_test"
	}
	if req.Body == nil {
		req.Body = []byte(`{"id":"evt_1","type":"order.created","data":{"n":1}}`)
	}
	if req.Timeout == 0 {
		req.Timeout = 10 * time.Second
	}
	return deliver.Send(context.Background(), r.client(t), req, time.Now())
}

func TestRequestHeaders(t *testing.T) {
	oldKey, newKey := newSecret(t), newSecret(t)
	span := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	tests := []struct {
		name    string
		req     deliver.Request
		signers []signature.Secret // each must verify on its own
		want    map[string]string  // headers and their exact values; "" = absent
	}{
		{
			name:    "one secret",
			req:     deliver.Request{Secrets: []signature.Secret{newKey}},
			signers: []signature.Secret{newKey},
			want:    map[string]string{"Authorization": "", "Traceparent": ""},
		},
		{
			name:    "rotation signs with both secrets",
			req:     deliver.Request{Secrets: []signature.Secret{newKey, oldKey}},
			signers: []signature.Secret{newKey, oldKey},
		},
		{
			name: "custom headers cannot override the webhook headers",
			req: deliver.Request{Secrets: []signature.Secret{newKey}, Headers: map[string]string{
				"X-Tenant": "acme", "Content-Type": "text/plain", "webhook-id": "forged",
			}},
			signers: []signature.Secret{newKey},
			want:    map[string]string{"X-Tenant": "acme", "Content-Type": "application/json", "Webhook-Id": "msg_test"},
		},
		{
			// Stored by an ingest before names were normalized: a WSGI
			// receiver would read Webhook_Id as a second webhook-id.
			name: "custom headers spelt with underscores are not sent",
			req: deliver.Request{Secrets: []signature.Secret{newKey}, Headers: map[string]string{
				"X_Tenant": "acme", "Webhook_Id": "forged", "X-Hub-Signature_256": "sha256=forged",
			}},
			signers: []signature.Secret{newKey},
			want:    map[string]string{"X_Tenant": "acme", "Webhook_Id": ""},
		},
		{
			name:    "bearer token",
			req:     deliver.Request{Secrets: []signature.Secret{newKey}, AuthType: "bearer", Password: "tok_123"},
			signers: []signature.Secret{newKey},
			want:    map[string]string{"Authorization": "Bearer tok_123"},
		},
		{
			name:    "basic auth",
			req:     deliver.Request{Secrets: []signature.Secret{newKey}, AuthType: "basic", Username: "hook", Password: "s3cret:x"},
			signers: []signature.Secret{newKey},
			want:    map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("hook:s3cret:x"))},
		},
		{
			name:    "traceparent from the delivery's span",
			req:     deliver.Request{Secrets: []signature.Secret{newKey}, Span: span},
			signers: []signature.Secret{newKey},
			want:    map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, nil)
			res := send(t, r, tc.req)
			if res.Class != deliver.Delivered || res.Status != http.StatusNoContent {
				t.Fatalf("result %+v, want delivered 204", res)
			}
			got := r.only(t)
			h := got.Header
			if h.Get("Content-Type") != "application/json" || h.Get("User-Agent") == "" {
				t.Errorf("content-type %q, user-agent %q", h.Get("Content-Type"), h.Get("User-Agent"))
			}
			if ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
				t.Errorf("webhook-timestamp %q is not the current unix time", h.Get("webhook-timestamp"))
			}
			if sigs := strings.Fields(h.Get("webhook-signature")); len(sigs) != len(tc.signers) {
				t.Errorf("webhook-signature has %d entries, want %d: %q", len(sigs), len(tc.signers), sigs)
			}
			for i, s := range tc.signers {
				v := signature.Verifier{Secrets: []signature.Secret{s}}
				if err := v.Verify(h, got.Body); err != nil {
					t.Errorf("secret %d does not verify: %v", i, err)
				}
			}
			if want := githubSignature(t, tc.req.Secrets[0], got.Body); h.Get("X-Hub-Signature-256") != want {
				t.Errorf("X-Hub-Signature-256 = %q, want %q (first secret)", h.Get("X-Hub-Signature-256"), want)
			}
			for k, want := range tc.want {
				if h.Get(k) != want {
					t.Errorf("%s = %q, want %q", k, h.Get(k), want)
				}
			}
			for k, v := range h {
				if subscription.NormalHeader(k) != strings.ToLower(k) && subscription.ReservedHeader(k) {
					t.Errorf("reserved header sent under another spelling: %s: %q", k, v)
				}
			}
			if got.ProtoMajor != 2 {
				t.Errorf("request used HTTP/%d, want HTTP/2", got.ProtoMajor)
			}
		})
	}
}

func TestNoSecretsNoSignatureHeaders(t *testing.T) {
	r := newReceiver(t, nil)
	if res := send(t, r, deliver.Request{}); res.Class != deliver.Delivered {
		t.Fatalf("result %+v", res)
	}
	h := r.only(t).Header
	for _, k := range []string{"webhook-signature", "X-Hub-Signature-256"} {
		if _, ok := h[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("%s sent without a secret: %q", k, h.Get(k))
		}
	}
	if h.Get("webhook-id") != "msg_test" {
		t.Errorf("webhook-id = %q", h.Get("webhook-id"))
	}
}

func TestStatusClasses(t *testing.T) {
	tests := []struct {
		status int
		want   deliver.Class
	}{
		{200, deliver.Delivered},
		{201, deliver.Delivered},
		{202, deliver.Delivered},
		{204, deliver.Delivered},
		{408, deliver.Retryable},
		{425, deliver.Retryable},
		{429, deliver.Retryable},
		{500, deliver.Retryable},
		{502, deliver.Retryable},
		{503, deliver.Retryable},
		{504, deliver.Retryable},
		{400, deliver.Permanent},
		{401, deliver.Permanent},
		{403, deliver.Permanent},
		{404, deliver.Permanent},
		{413, deliver.Permanent},
		{422, deliver.Permanent},
		{410, deliver.Gone},
		{301, deliver.Permanent},
		{302, deliver.Permanent},
		{303, deliver.Permanent},
		{307, deliver.Permanent},
		{308, deliver.Permanent},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
				if req.URL.Path == "/elsewhere" {
					w.WriteHeader(http.StatusOK)
					return
				}
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tc.status)
			})
			res := send(t, r, deliver.Request{})
			if res.Class != tc.want || res.Status != tc.status {
				t.Fatalf("got %v %d, want %v %d", res.Class, res.Status, tc.want, tc.status)
			}
			if (res.Err == "") != (tc.want == deliver.Delivered) {
				t.Errorf("Err = %q for %v", res.Err, res.Class)
			}
			if len(r.requests()) != 1 {
				t.Errorf("receiver got %d requests: a redirect was followed", len(r.requests()))
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name   string
		status int
		header string
		want   time.Duration
	}{
		{"seconds", 503, "7", 7 * time.Second},
		{"seconds on 429", 429, "120", 2 * time.Minute},
		{"HTTP date", 503, now.Add(30 * time.Second).UTC().Format(http.TimeFormat), 30 * time.Second},
		{"date in the past", 503, now.Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
		{"negative", 503, "-5", 0},
		{"garbage", 503, "soon", 0},
		{"absent", 503, "", 0},
		{"capped at a day", 503, "9999999", 24 * time.Hour},
		{"ignored when permanent", 400, "7", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
			})
			res := deliver.Send(context.Background(), r.client(t), deliver.Request{URL: r.URL, ID: "msg_ra", Timeout: 10 * time.Second}, now)
			if res.RetryAfter != tc.want {
				t.Fatalf("RetryAfter = %v, want %v", res.RetryAfter, tc.want)
			}
		})
	}
}

func TestTransportFailures(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "https://" + closed.Addr().String() + "/hook"
	closed.Close()

	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})

	// An endpoint stuck on TLS 1.1, with a certificate the client trusts.
	old := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	old.TLS = &tls.Config{Certificates: []tls.Certificate{slow.Cert.TLS}, MaxVersion: tls.VersionTLS11}
	old.Config.ErrorLog = log.New(io.Discard, "", 0)
	old.StartTLS()
	t.Cleanup(old.Close)
	// An endpoint whose certificate nobody vouches for.
	stranger := testreceiver.New(t, nil)

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		want    deliver.Class
		errHas  string
	}{
		{"timeout", slow.URL, 200 * time.Millisecond, deliver.Retryable, "timeout"},
		{"connection refused", refusedURL, 5 * time.Second, deliver.Retryable, "connection"},
		{"TLS older than 1.2", old.URL, 5 * time.Second, deliver.Retryable, "tls"},
		{"untrusted certificate", stranger.URL, 5 * time.Second, deliver.Retryable, "certificate"},
		{"not a URL", "https://127.0.0.1:bad/", 5 * time.Second, deliver.Permanent, "invalid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := deliver.Send(context.Background(), slow.client(t), deliver.Request{URL: tc.url, ID: "msg_x", Timeout: tc.timeout}, time.Now())
			if res.Class != tc.want || res.Status != 0 || !strings.Contains(res.Err, tc.errHas) {
				t.Fatalf("got %v status %d %q, want %v mentioning %q", res.Class, res.Status, res.Err, tc.want, tc.errHas)
			}
		})
	}
	if n := stranger.Count(); n != 0 {
		t.Errorf("the untrusted endpoint got %d requests", n)
	}
}

func TestSSRFGuardRefusesUnlistedAddresses(t *testing.T) {
	r := newReceiver(t, nil)
	tests := []struct {
		name  string
		allow []string
	}{
		{"no allowlist", nil},
		{"another host allowlisted", []string{"10.0.0.0/8", "hooks.example.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := guardedClient(t, r.Cert, tc.allow...)
			res := deliver.Send(context.Background(), c, deliver.Request{URL: r.URL, ID: "msg_ssrf", Timeout: 5 * time.Second}, time.Now())
			if res.Class != deliver.Permanent || !strings.Contains(res.Err, "refused") {
				t.Fatalf("got %v %q, want permanent and refused", res.Class, res.Err)
			}
		})
	}
	if n := len(r.requests()); n != 0 {
		t.Fatalf("receiver got %d requests through the guard", n)
	}
}

// TestResponseIsBounded: the answer's first 4 KiB are kept byte for byte
// (and 512 of them as text), marked truncated when there was more, and
// its headers with credentials redacted.
func TestResponseIsBounded(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"short", `{"error":"nope"}`},
		{"exactly the bound", strings.Repeat("y", record.MaxResponseBody)},
		{"long", strings.Repeat("x", 200<<10)},
		{"invalid UTF-8", strings.Repeat("\xff\xfe", 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Set-Cookie", "session=s3cr3t")
				w.Header().Set("X-Request-Id", "req_1")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, tc.body)
			})
			res := send(t, r, deliver.Request{})
			if len(res.Snippet) > 600 || !utf8.ValidString(res.Snippet) {
				t.Fatalf("snippet of %d bytes (valid UTF-8: %v)", len(res.Snippet), utf8.ValidString(res.Snippet))
			}
			if len(tc.body) <= 512 && res.Snippet != tc.body {
				t.Errorf("snippet %q, want the whole body", res.Snippet)
			}
			if want := tc.body[:min(len(tc.body), record.MaxResponseBody)]; string(res.Body) != want {
				t.Errorf("body of %d bytes kept, want the first %d byte for byte", len(res.Body), len(want))
			}
			if res.Truncated != (len(tc.body) > record.MaxResponseBody) {
				t.Errorf("truncated = %v for a %d-byte body", res.Truncated, len(tc.body))
			}
			if res.ResponseBytes <= 0 || res.ResponseBytes > record.MaxResponseBody+64<<10 || res.ResponseBytes > int64(len(tc.body)) {
				t.Errorf("ResponseBytes = %d for a %d-byte body", res.ResponseBytes, len(tc.body))
			}
			if got := res.ResponseHeaders.Get("Set-Cookie"); got != "[redacted]" {
				t.Errorf("Set-Cookie kept as %q, want it redacted", got)
			}
			if got := res.ResponseHeaders.Get("X-Request-Id"); got != "req_1" {
				t.Errorf("X-Request-Id kept as %q", got)
			}
		})
	}
}

// TestRequestHeadersAsSent: the headers recorded are those the endpoint
// got, with the credentials redacted (the scheme of Authorization kept)
// and the signatures kept; a refused request records none.
func TestRequestHeadersAsSent(t *testing.T) {
	got := make(chan http.Header, 1)
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		got <- req.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	})
	key := newSecret(t)
	res := send(t, r, deliver.Request{Secrets: []signature.Secret{key}, AuthType: "bearer", Password: "t0ken",
		Headers: map[string]string{"X-Tenant": "acme", "X-Api-Key": "k3y"}})
	sent := <-got
	if sent.Get("Authorization") != "Bearer t0ken" {
		t.Fatalf("endpoint got Authorization %q", sent.Get("Authorization"))
	}
	checks := []struct {
		header, want string
	}{
		{"Authorization", "Bearer [redacted]"},
		{"X-Api-Key", "[redacted]"},
		{"X-Tenant", "acme"},
		{signature.HeaderSignature, sent.Get(signature.HeaderSignature)},
		{signature.HeaderID, sent.Get(signature.HeaderID)},
		{"Content-Type", "application/json"},
	}
	for _, c := range checks {
		if v := res.RequestHeaders.Get(c.header); v != c.want || v == "" {
			t.Errorf("recorded %s = %q, want %q", c.header, v, c.want)
		}
	}
	refused := deliver.Send(context.Background(), http.DefaultClient, deliver.Request{URL: r.URL, Refused: "no route"}, time.Now())
	if refused.RequestHeaders != nil {
		t.Errorf("a refused request recorded headers %v", refused.RequestHeaders)
	}
}

// TestGzip: with compression on, a body of GzipMinBytes or more goes
// gzipped with Content-Encoding, a smaller one as it is. The signatures
// cover the bytes as sent, and for a compressed body also the JSON it
// decodes to: a receiver may verify either, before or after decompressing.
func TestGzip(t *testing.T) {
	key := newSecret(t)
	large := []byte(`{"id":"evt_1","data":"` + strings.Repeat("compressible ", 200) + `"}`)
	small := []byte(`{"id":"evt_1","data":"` + strings.Repeat("x", deliver.GzipMinBytes-40) + `"}`)
	tests := []struct {
		name     string
		body     []byte
		gzip     bool
		encoding string
	}{
		{"plain", large, false, ""},
		{"gzip", large, true, "gzip"},
		{"gzip on, body below the threshold", small, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, nil)
			res := send(t, r, deliver.Request{Body: tc.body, Gzip: tc.gzip, Secrets: []signature.Secret{key}})
			if res.Class != deliver.Delivered {
				t.Fatalf("result %+v", res)
			}
			got := r.only(t)
			if got.Header.Get("Content-Encoding") != tc.encoding {
				t.Errorf("Content-Encoding = %q, want %q", got.Header.Get("Content-Encoding"), tc.encoding)
			}
			if !bytes.Equal(got.Body, tc.body) {
				t.Fatalf("receiver decoded %d bytes, want the %d sent", len(got.Body), len(tc.body))
			}
			v := &signature.Verifier{Secrets: []signature.Secret{key}}
			if err := v.Verify(got.Header, got.Wire); err != nil {
				t.Errorf("signature over the bytes as sent: %v", err)
			}
			if err := v.Verify(got.Header, got.Body); err != nil {
				t.Errorf("signature over the decoded body: %v", err)
			}
			if err := signature.VerifyGitHub(got.Header.Get(signature.HeaderGitHub), got.Wire, key); err != nil {
				t.Errorf("X-Hub-Signature-256 over the bytes as sent: %v", err)
			}
			if n, want := len(strings.Fields(got.Header.Get(signature.HeaderSignature))), map[bool]int{true: 2, false: 1}[tc.encoding != ""]; n != want {
				t.Errorf("%d signatures, want %d", n, want)
			}
			if res.RequestBytes != int64(got.WireBytes) {
				t.Errorf("RequestBytes = %d, receiver read %d", res.RequestBytes, got.WireBytes)
			}
			if tc.encoding != "" && got.WireBytes >= len(tc.body) {
				t.Errorf("gzip sent %d bytes for a %d-byte body", got.WireBytes, len(tc.body))
			}
		})
	}
}
