// Package testreceiver is the webhook endpoint of the sender's tests and
// benchmark: an HTTPS server on 127.0.0.1 offering HTTP/2 with a throwaway
// certificate, recording every request it gets.
package testreceiver

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/ssrf"
)

// Request is what the receiver saw of one request.
type Request struct {
	Header     http.Header
	Body       []byte // decoded when the request was gzipped
	Wire       []byte // the body as sent
	WireBytes  int    // len(Wire)
	ProtoMajor int
	Path       string
	Query      string
	At         time.Time
	ClientCN   string // common name of the client certificate presented, if any
}

// Receiver is a running test endpoint.
type Receiver struct {
	URL  string // https://127.0.0.1:port
	Cert selfsigned.Cert

	respond http.HandlerFunc
	record  bool
	count   atomic.Int64
	conns   atomic.Int64
	mu      sync.Mutex
	got     []Request
	arrived chan struct{} // signalled (without blocking) on every request
}

// New starts a receiver that records requests and answers with respond,
// or 204 when respond is nil. It stops when the test ends.
func New(t testing.TB, respond http.HandlerFunc) *Receiver {
	t.Helper()
	return start(t, respond, true)
}

// NewSink starts a receiver that only reads each body and answers 204,
// recording nothing: the benchmark's endpoint.
func NewSink(t testing.TB) *Receiver {
	t.Helper()
	return start(t, nil, false)
}

// NewMutualTLS starts a receiver like New that requires a client
// certificate issued by ca: a client without one cannot connect.
func NewMutualTLS(t testing.TB, ca *selfsigned.CA, respond http.HandlerFunc) *Receiver {
	t.Helper()
	return start(t, respond, true, func(c *tls.Config) {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool()
	})
}

func start(t testing.TB, respond http.HandlerFunc, record bool, tune ...func(*tls.Config)) *Receiver {
	t.Helper()
	cert, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Cert: cert, respond: respond, record: record, arrived: make(chan struct{}, 1)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	srv.TLS = cert.ServerConfig()
	for _, f := range tune {
		f(srv.TLS)
	}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests want
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	wire, _ := io.ReadAll(req.Body)
	r.count.Add(1)
	if !r.record {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body := wire
	if req.Header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(wire)); err == nil {
			body, _ = io.ReadAll(zr)
		}
	}
	r.mu.Lock()
	got := Request{Header: req.Header.Clone(), Body: body, Wire: wire, WireBytes: len(wire),
		ProtoMajor: req.ProtoMajor, Path: req.URL.Path, Query: req.URL.RawQuery, At: time.Now()}
	if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
		got.ClientCN = req.TLS.PeerCertificates[0].Subject.CommonName
	}
	r.got = append(r.got, got)
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	if r.respond != nil {
		r.respond(w, req)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Conns is how many connections were opened to the receiver.
func (r *Receiver) Conns() int64 { return r.conns.Load() }

// Count is how many requests arrived.
func (r *Receiver) Count() int64 { return r.count.Load() }

// Requests returns what arrived so far, in arrival order.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.got...)
}

// WaitFor waits until n requests have arrived and returns them, failing
// the test after timeout.
func (r *Receiver) WaitFor(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if got := r.Requests(); len(got) >= n {
			return got
		}
		select {
		case <-r.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("receiver got %d requests within %v, want %d", len(r.Requests()), timeout, n)
		}
	}
}

// Guard is an SSRF guard that allowlists 127.0.0.1 and nothing else, as
// the tests and the local demo configure the sender.
func Guard(t testing.TB) *ssrf.Guard {
	t.Helper()
	g, err := ssrf.New([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return g
}
