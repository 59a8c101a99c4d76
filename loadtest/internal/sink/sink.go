// Package sink is the load test's webhook receiver: an HTTPS server on
// 127.0.0.1 speaking HTTP/2 and HTTP/1.1 that verifies every signature,
// counts unique webhook-ids and duplicates, measures end-to-end latency
// from the event's timestamp in the body, and misbehaves on request
// (Faults, Down) the way real endpoints do.
package sink

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/signature"
)

// maxBody bounds what the sink reads of one request.
const maxBody = 1 << 20

// Sink is the HTTPS receiver. Register endpoints with Endpoint, then Begin
// a Tally per scenario; requests are counted into the current Tally.
type Sink struct {
	// URL is https://127.0.0.1:<port>, without a path.
	URL  string
	Cert selfsigned.Cert

	addr      string
	endpoints sync.Map // path -> *endpoint
	tally     atomic.Pointer[Tally]
	down      atomic.Bool

	rngMu sync.Mutex
	rng   *rand.Rand

	srvMu sync.Mutex
	srv   *http.Server
	timer *time.Timer // brings the sink back up after Down
}

type endpoint struct {
	secret   signature.Secret
	verifier *signature.Verifier
	// barrier endpoints are answered 204 and counted apart: their pings
	// prove the pipeline is ready and must not count in any scenario.
	barrier bool
	pings   atomic.Int64
	// faults, when set, replace the scenario's for this endpoint: one
	// slow or dead endpoint among healthy ones.
	faults atomic.Pointer[Faults]
}

// Start listens on a free port of 127.0.0.1. seed makes the fault dice
// reproducible.
func Start(seed uint64) (*Sink, error) {
	cert, err := selfsigned.New()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{Cert: cert, addr: ln.Addr().String(), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s.URL = "https://" + s.addr
	s.serve(ln)
	return s, nil
}

func (s *Sink) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         s.Cert.ServerConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		// Resets and Down make the server log handshake and stream errors
		// by design; they are counted, not printed.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.srvMu.Lock()
	s.srv = srv
	s.srvMu.Unlock()
	go func() { _ = srv.ServeTLS(ln, "", "") }()
}

// Close stops the sink.
func (s *Sink) Close() error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	return s.srv.Close()
}

// Endpoint registers path (such as /throughput/t0/e0) and the secret its
// subscriptions sign with. Requests to other paths are answered 404.
func (s *Sink) Endpoint(path string, secret signature.Secret) {
	s.endpoints.Store(path, &endpoint{secret: secret, verifier: &signature.Verifier{Secrets: []signature.Secret{secret}}})
}

// Behave makes the endpoint at path answer with faults instead of the
// scenario's (Begin's); it must be registered first.
func (s *Sink) Behave(path string, faults Faults) error {
	e, ok := s.endpoints.Load(path)
	if !ok {
		return fmt.Errorf("sink: no endpoint %s", path)
	}
	e.(*endpoint).faults.Store(&faults)
	return nil
}

// Behaving reports whether the endpoint at path answers with faults of its
// own (Behave): the ceiling leaves its bodies out, it measures what the
// sink allows, not what a slow endpoint does.
func (s *Sink) Behaving(path string) bool {
	e, ok := s.endpoints.Load(path)
	return ok && e.(*endpoint).faults.Load() != nil
}

// Barrier registers path as a barrier endpoint: its verified requests are
// answered 204 and counted only by Pings.
func (s *Sink) Barrier(path string, secret signature.Secret) {
	s.endpoints.Store(path, &endpoint{secret: secret, verifier: &signature.Verifier{Secrets: []signature.Secret{secret}}, barrier: true})
}

// Pings is how many verified requests the barrier endpoint path received.
func (s *Sink) Pings(path string) int {
	e, ok := s.endpoints.Load(path)
	if !ok {
		return 0
	}
	return int(e.(*endpoint).pings.Load())
}

// Secret is the secret registered for path.
func (s *Sink) Secret(path string) (signature.Secret, bool) {
	e, ok := s.endpoints.Load(path)
	if !ok {
		return signature.Secret{}, false
	}
	return e.(*endpoint).secret, true
}

// Begin starts counting into a new Tally that answers with faults, and
// returns it. The previous Tally stops counting.
func (s *Sink) Begin(faults Faults) *Tally {
	t := newTally(faults)
	s.tally.Store(t)
	return t
}

// Down takes the sink off the network for d: the listener and every open
// connection are closed, so clients see connection refused; then it
// listens again on the same address.
func (s *Sink) Down(d time.Duration) error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.down.Load() {
		return errors.New("sink is already down")
	}
	s.down.Store(true)
	_ = s.srv.Close()
	s.timer = time.AfterFunc(d, func() {
		ln, err := net.Listen("tcp", s.addr)
		for i := 0; err != nil && i < 50; i++ { // the port is ours; give the kernel a moment
			time.Sleep(100 * time.Millisecond)
			ln, err = net.Listen("tcp", s.addr)
		}
		if err == nil {
			s.serve(ln)
		}
		s.down.Store(false)
	})
	return nil
}

// IsDown reports whether the sink is down.
func (s *Sink) IsDown() bool { return s.down.Load() }

func (s *Sink) roll() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

// ServeHTTP verifies the request, rolls the fault dice and counts it.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, known := s.endpoints.Load(r.URL.Path)
	if known && e.(*endpoint).barrier {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil || e.(*endpoint).verifier.Verify(r.Header, body) != nil {
			http.Error(w, "bad barrier ping", http.StatusUnauthorized)
			return
		}
		e.(*endpoint).pings.Add(1)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	t := s.tally.Load()
	if t == nil {
		http.Error(w, "no scenario running", http.StatusServiceUnavailable)
		return
	}
	t.enter()
	defer t.leave()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		t.fault()
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if !known {
		t.badSignature()
		http.NotFound(w, r)
		return
	}
	if err := e.(*endpoint).verifier.Verify(r.Header, body); err != nil {
		t.badSignature()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}

	faults := t.faults
	if own := e.(*endpoint).faults.Load(); own != nil {
		faults = *own
	}
	switch f := faults.pick(s.roll()); f {
	case faultReset:
		t.fault()
		reset(w)
		return
	case faultTimeout:
		t.fault()
		hang := faults.Hang
		if hang <= 0 {
			hang = 30 * time.Second
		}
		select { // until the client gives up
		case <-r.Context().Done():
		case <-time.After(hang):
		}
		return
	case faultError:
		t.fault()
		http.Error(w, "injected failure", http.StatusServiceUnavailable)
		return
	case faultThrottle:
		t.fault()
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(faults.RetryAfter/time.Second))))
		http.Error(w, "injected throttle", http.StatusTooManyRequests)
		return
	case faultSlow:
		select { // as a slow endpoint would, unless the client gives up
		case <-r.Context().Done():
			return
		case <-time.After(faults.Slow):
		}
	}
	var env struct {
		Timestamp time.Time `json:"timestamp"`
	}
	_ = json.Unmarshal(body, &env) // a body without a timestamp counts without latency
	t.delivered(r.Header.Get(signature.HeaderID), env.Timestamp, time.Now(), r.URL.Path, body)
	w.WriteHeader(http.StatusNoContent)
}

// reset drops the connection under the request: with HTTP/1.1 the TCP
// connection is closed with a RST; HTTP/2 cannot be hijacked, so only the
// stream is reset.
func reset(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*tls.Conn); ok {
				if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
				}
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// Describe is a one-line summary of f for logs.
func (f Faults) Describe() string {
	if f == (Faults{}) {
		return "none"
	}
	return fmt.Sprintf("error %.0f%%, 429 %.0f%%, slow %.0f%%(%s), timeout %.0f%%, reset %.0f%%",
		100*f.ErrorRate, 100*f.ThrottleRate, 100*f.SlowRate, f.Slow, 100*f.TimeoutRate, 100*f.ResetRate)
}
