package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/stack"
	"github.com/hookline/hookline/pkg/testinfra"
)

// binaries are built once per test run.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestMain removes the binaries buildServices made: some 250 MB a run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func buildServices(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "hookline-e2e-bin")
		if buildErr == nil {
			buildErr = stack.Build(context.Background(), repoRoot(), binDir, stack.ServiceNames()...)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// pipeline is ingest, matcher, sender and retry (and notify, withAlerts)
// running as separate processes against the real broker and Redis, under
// a topic prefix of their own (pkg/stack).
type pipeline struct {
	t     *testing.T
	API   string // http://host:port of ingest
	Key   string // tenant acme's API key
	Kafka kafka.Config
	// Postgres is the delivery history's database, withHistory.
	Postgres string
}

// stackOption changes the stack startStack starts.
type stackOption func(*stack.Config)

// alertsRedisDB is the Redis database of a stack withAlerts. notify's
// queue has fixed key names shared by every notify instance on a Redis, so
// a notify of another test (services/notify's, on database 0) would take
// this stack's notifications and settle them without knowing their
// subscriptions.
const alertsRedisDB = "9"

// withAlerts adds notify, emailing through m with a digest window of 2 s
// and a queue polled every 100 ms, in a Redis database of its own
// (alertsRedisDB).
func withAlerts(m *testinfra.Mailpit) stackOption {
	return func(c *stack.Config) {
		c.Services = append(c.Services, "notify")
		c.SMTPURL, c.AlertFrom = m.SMTPURL(), "Hookline <alerts@hookline.example>"
		c.Env = append(c.Env, "REDIS_DB="+alertsRedisDB, "HOOKLINE_ALERT_DIGEST_WINDOW=2s", "HOOKLINE_ALERT_POLL=100ms")
	}
}

// withHistory adds the logs service, writing the delivery history to a
// database of its own on the test PostgreSQL, and the history API.
func withHistory(t *testing.T) stackOption {
	url := testinfra.Postgres(t)
	return func(c *stack.Config) {
		c.Services = append(c.Services, "logs")
		c.Postgres = url
	}
}

// startStack runs the services with the receivers' CA and a retry
// schedule until the test ends; tenants acme (Key) and globex ("other-"
// Key) have API keys.
func startStack(t *testing.T, receiverCA []byte, schedule string, opts ...stackOption) *pipeline {
	t.Helper()
	kcfg := testinfra.Kafka(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, receiverCA, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &pipeline{t: t, Key: "key-" + kcfg.Topics.Prefix, Kafka: kcfg}
	cfg := testinfra.StackConfig(t, kcfg)
	cfg.Bin, cfg.Services = buildServices(t), []string{"ingest", "matcher", "sender", "retry"}
	cfg.Schedule, cfg.CAFile = schedule, caFile
	cfg.Keys = map[string]string{"acme": p.Key, "globex": "other-" + p.Key}
	for _, opt := range opts {
		opt(&cfg)
	}
	st := testinfra.Stack(t, cfg)
	if err := st.StartAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.API, p.Postgres = st.API, cfg.Postgres
	return p
}

// call makes an API request and decodes a JSON answer into out.
func (s *pipeline) call(method, path, key, contentType string, body []byte, out any) (int, http.Header) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.API+path, bytes.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, resp.Header
}

func (s *pipeline) postJSON(path string, v any, out any) int {
	s.t.Helper()
	body, _ := json.Marshal(v)
	code, _ := s.call(http.MethodPost, path, s.Key, "application/json", body, out)
	return code
}

// receiver is an HTTPS (HTTP/2) endpoint that records what it gets and
// answers with the status its script says.
type receiver struct {
	URL  string
	Cert selfsigned.Cert
	mu   sync.Mutex
	got  []*http.Request
	body [][]byte
	at   []time.Time // arrival of each request
	// respond picks the status for a request (default 204).
	respond func(r *http.Request, body []byte, n int) (int, http.Header)
	// answer, when set, is the body written after the status.
	answer func(r *http.Request) []byte
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	cert, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{Cert: cert}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rc, TLSConfig: cert.ServerConfig()}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	rc.URL = "https://" + ln.Addr().String()
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, r)
	rc.body = append(rc.body, body)
	rc.at = append(rc.at, time.Now())
	n := len(rc.got)
	respond, answer := rc.respond, rc.answer
	rc.mu.Unlock()
	status := http.StatusNoContent
	if respond != nil {
		var h http.Header
		status, h = respond(r, body, n)
		for k, v := range h {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(status)
	if answer != nil {
		_, _ = w.Write(answer(r))
	}
}

// waitFor polls until cond holds for the received requests.
func (rc *receiver) waitFor(t *testing.T, timeout time.Duration, what string, cond func(reqs []*http.Request, bodies [][]byte) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rc.mu.Lock()
		ok := cond(rc.got, rc.body)
		n := len(rc.got)
		rc.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver: %s not seen within %v (%d requests received)", what, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
