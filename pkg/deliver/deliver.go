// Package deliver makes one webhook request: it builds the signed request
// as Standard Webhooks describes it, sends it with a shared HTTP client
// tuned for many endpoints, and classifies what came back.
package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/telemetry"
)

// Limits of one attempt.
const (
	snippetBytes  = 512
	bodyBytes     = record.MaxResponseBody // kept for the delivery log
	drainBytes    = 64 << 10               // read at most this much of a body, so the connection can be reused
	userAgent     = "Hookline-Webhooks/1.0"
	maxRetryAfter = 24 * time.Hour
)

// ClientOptions tune the shared client.
type ClientOptions struct {
	Guard           *ssrf.Guard
	RootCAs         *x509.CertPool // nil: the system pool
	MaxConnsPerHost int
}

// NewClient returns the one client all deliveries share: HTTP/2 through
// ALPN where the endpoint offers it, HTTP/1.1 keep-alive pools otherwise,
// TLS 1.2+, the SSRF guard on every dial (after DNS), no proxy, and no
// redirects followed.
func NewClient(o ClientOptions) *http.Client {
	return newClient(o, nil)
}

// newClient is NewClient presenting cert, when not nil, to servers that
// ask for a client certificate (mutual TLS).
func newClient(o ClientOptions, cert *tls.Certificate) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	if cert != nil {
		// Always present it: Certificates alone would be left out when the
		// server's list of acceptable CAs does not name its issuer, and the
		// endpoint's owner configured this certificate for it.
		tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	t := &http.Transport{
		DialContext:           o.Guard.DialContext(dialer),
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   max(o.MaxConnsPerHost, 1),
		MaxConnsPerHost:       o.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Request is one attempt to make.
type Request struct {
	URL      string
	ID       string // webhook-id: the delivery id
	Body     []byte
	Secrets  []signature.Secret // newest first; one signature each
	Headers  map[string]string
	AuthType string // "", bearer or basic
	Username string
	Password string // bearer token or basic password
	Timeout  time.Duration
	Gzip     bool              // compress bodies of GzipMinBytes or more
	Span     trace.SpanContext // leaves as traceparent when valid
	// Client makes the request instead of the one passed to Send: the
	// client of the subscription's certificate (Clients.For).
	Client *http.Client
	// Refused, when set, is why no request may be made (the target was
	// refused): Send fails the attempt as permanent without calling.
	Refused string
}

// Class is how an attempt ended.
type Class int

// Attempt classes.
const (
	Delivered Class = iota // 2xx
	Retryable              // 408, 425, 429, 5xx, timeouts, connection errors
	Permanent              // other 4xx, 3xx, refused by the SSRF guard, bad URL
	Gone                   // 410: permanent, and the subscription is disabled
)

// Result is what an attempt produced.
type Result struct {
	URL           string // where it went: the request's URL
	Class         Class
	Status        int
	Err           string // why it failed, for the delivery log
	RetryAfter    time.Duration
	Snippet       string // the first bytes of Body as text
	RequestBytes  int64
	ResponseBytes int64
	Duration      time.Duration

	// RequestHeaders are the headers sent, credentials redacted
	// (logstore.RedactHeaders): the delivery log is read by analysts, who
	// must not see an endpoint's token. Nil when no request was made.
	RequestHeaders http.Header
	// ResponseHeaders are the answer's headers, redacted likewise.
	ResponseHeaders http.Header
	// Body is the first record.MaxResponseBody bytes of the answer;
	// Truncated says there was more.
	Body      []byte
	Truncated bool
}

// Send makes the attempt. It never returns an error: every failure is a
// classified Result.
func Send(ctx context.Context, client *http.Client, req Request, now time.Time) Result {
	start := time.Now()
	res := send(ctx, client, req, now)
	res.Duration, res.URL = time.Since(start), req.URL
	return res
}

func send(ctx context.Context, client *http.Client, req Request, now time.Time) Result {
	if req.Refused != "" {
		return Result{Class: Permanent, Err: "refused: " + req.Refused}
	}
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	body, decoded := req.Body, []byte(nil)
	if req.Gzip && len(body) >= GzipMinBytes {
		if z := gzipped(body); z != nil {
			body, decoded = z, body
		}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(body))
	if err != nil {
		return Result{Class: Permanent, Err: "invalid URL: " + err.Error()}
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h := hreq.Header
	for k, v := range req.Headers {
		if !subscription.ReservedHeader(k) { // refused by ingest; skipped if an older ingest let one through
			h.Set(k, v)
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	h.Set(signature.HeaderID, req.ID)
	h.Set(signature.HeaderTimestamp, ts)
	if len(req.Secrets) > 0 {
		// The signatures cover the bytes as sent. A compressed body is also
		// signed as the JSON it decodes to, after those: Standard Webhooks
		// libraries take the payload as text, so a receiver using one
		// verifies what it decompressed, while one that verifies the bytes
		// as received can do so before decompressing anything. A verifier
		// accepts a request when any v1 entry matches.
		sig := signature.Sign(req.ID, now, body, req.Secrets...)
		if decoded != nil {
			sig += " " + signature.Sign(req.ID, now, decoded, req.Secrets...)
		}
		h.Set(signature.HeaderSignature, sig)
		h.Set(signature.HeaderGitHub, signature.SignGitHub(body, req.Secrets[0]))
	}
	switch req.AuthType {
	case "bearer":
		h.Set("Authorization", "Bearer "+req.Password)
	case "basic":
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(req.Username+":"+req.Password)))
	}
	if req.Span.IsValid() {
		telemetry.Propagator.Inject(trace.ContextWithSpanContext(ctx, req.Span), propagation.HeaderCarrier(h))
	}
	if decoded != nil {
		h.Set("Content-Encoding", "gzip")
	}
	// Recorded before the client adds its own (Host, Content-Length).
	res := Result{RequestBytes: int64(len(body)), RequestHeaders: logstore.RedactHeaders(h)}

	if req.Client != nil {
		client = req.Client
	}
	resp, err := client.Do(hreq)
	if err != nil {
		res.Class, res.Err = classifyError(err)
		return res
	}
	defer resp.Body.Close()
	buf := bodyBuffers.Get().(*[]byte)
	n, _ := io.ReadFull(resp.Body, *buf)
	rest, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	if n > 0 {
		res.Body = bytes.Clone((*buf)[:n])
	}
	bodyBuffers.Put(buf)
	res.Snippet = strings.ToValidUTF8(string(res.Body[:min(n, snippetBytes)]), string(utf8.RuneError))
	res.ResponseBytes, res.Truncated = int64(n)+rest, rest > 0
	res.ResponseHeaders = logstore.RedactHeaders(resp.Header)
	res.Status = resp.StatusCode
	res.Class = classifyStatus(resp.StatusCode)
	if res.Class != Delivered {
		res.Err = "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	if res.Class == Retryable {
		res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return res
}

// bodyBuffers hold the first bodyBytes of an answer while it is read: a
// pool, since most answers are a few bytes and a fresh 4 KiB each would
// be most of an attempt's garbage.
var bodyBuffers = sync.Pool{New: func() any {
	b := make([]byte, bodyBytes)
	return &b
}}

func classifyStatus(code int) Class {
	switch {
	case code >= 200 && code < 300:
		return Delivered
	case code == http.StatusGone:
		return Gone
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		return Retryable
	default: // 1xx, 3xx (redirects are not followed), other 4xx
		return Permanent
	}
}

func classifyError(err error) (Class, string) {
	var netErr net.Error
	switch {
	case errors.Is(err, ssrf.ErrBlocked):
		return Permanent, "refused: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return Retryable, "timeout: " + err.Error()
	default:
		return Retryable, "connection: " + err.Error()
	}
}

// parseRetryAfter reads seconds or an HTTP date; 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return min(max(time.Duration(secs)*time.Second, 0), maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

func (c Class) String() string {
	return [...]string{"delivered", "retryable", "permanent", "gone"}[c]
}
