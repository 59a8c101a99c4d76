package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/selfsigned"
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

func buildServices(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "hookline-e2e-bin")
		if buildErr != nil {
			return
		}
		for _, s := range []string{"ingest", "matcher", "sender", "retry", "notify"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, s), ".")
			cmd.Dir = filepath.Join(repoRoot(), "services", s)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", s, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// stack is the four services (and notify, withAlerts) running as
// separate processes against the real broker and Redis, under a topic
// prefix of their own.
type stack struct {
	t        *testing.T
	API      string // http://host:port of ingest
	Key      string
	Kafka    kafka.Config
	procs    map[string]*exec.Cmd
	env      []string
	bin      string
	opsAddr  map[string]string
	services []string // what startStack starts
}

// stackOption changes the stack startStack starts.
type stackOption func(*stack)

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
	return func(s *stack) {
		s.services = append(s.services, "notify")
		s.env = append(s.env,
			"REDIS_DB="+alertsRedisDB,
			"HOOKLINE_SMTP_URL="+m.SMTPURL(),
			"HOOKLINE_ALERT_FROM=Hookline <alerts@hookline.example>",
			"HOOKLINE_CONSOLE_URL="+s.API+"/console/",
			"HOOKLINE_NOTIFY_GROUP="+s.Kafka.Topics.Prefix+"notify",
			"HOOKLINE_ALERT_DIGEST_WINDOW=2s",
			"HOOKLINE_ALERT_POLL=100ms",
		)
	}
}

func startStack(t *testing.T, receiverCA []byte, schedule string, opts ...stackOption) *stack {
	t.Helper()
	bin := buildServices(t)
	kcfg := testinfra.Kafka(t)
	testinfra.Redis(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, receiverCA, 0o600); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	httpAddr := testinfra.FreeAddr(t)
	s := &stack{t: t, API: "http://" + httpAddr, Key: "key-" + kcfg.Topics.Prefix, Kafka: kcfg, procs: map[string]*exec.Cmd{}, bin: bin, opsAddr: map[string]string{}}
	s.env = append(os.Environ(),
		"KAFKA_BROKERS="+strings.Join(kcfg.Brokers, ","),
		"HOOKLINE_TOPIC_PREFIX="+kcfg.Topics.Prefix,
		"HOOKLINE_TOPIC_PARTITIONS=3",
		"HOOKLINE_API_KEYS=acme="+s.Key+",globex=other-"+s.Key,
		"HOOKLINE_SECRET_KEY="+base64.StdEncoding.EncodeToString(key),
		"HOOKLINE_ALLOW_HOSTS=127.0.0.1",
		"HOOKLINE_SENDER_CA_FILE="+caFile,
		"HOOKLINE_HTTP_ADDR="+httpAddr,
		"HOOKLINE_RETRY_SCHEDULE="+schedule,
		"HOOKLINE_MATCHER_GROUP="+kcfg.Topics.Prefix+"matcher",
		"HOOKLINE_SENDER_GROUP="+kcfg.Topics.Prefix+"sender",
		"HOOKLINE_RETRY_GROUP="+kcfg.Topics.Prefix+"retry",
		"HOOKLINE_INGEST_GROUP="+kcfg.Topics.Prefix+"ingest",
		"HOOKLINE_TRANSACTIONAL_ID="+kcfg.Topics.Prefix+"matcher-1",
		"HOOKLINE_LOG_LEVEL=warn",
	)
	s.services = []string{"ingest", "matcher", "sender", "retry"}
	for _, opt := range opts {
		opt(s)
	}
	for _, name := range s.services {
		s.Start(name)
	}
	t.Cleanup(s.stopAll)
	for _, name := range s.services {
		if name != "retry" { // ready as soon as it runs
			s.waitReady(name)
		}
	}
	return s
}

// Start runs one service.
func (s *stack) Start(name string) {
	s.t.Helper()
	if s.opsAddr[name] == "" {
		s.opsAddr[name] = testinfra.FreeAddr(s.t)
	}
	cmd := exec.Command(filepath.Join(s.bin, name))
	cmd.Env = append(append([]string{}, s.env...), "HOOKLINE_OPS_ADDR="+s.opsAddr[name])
	logFile, err := os.Create(filepath.Join(s.t.TempDir(), name+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	s.procs[name] = cmd
	s.t.Cleanup(func() {
		if s.t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			s.t.Logf("%s log:\n%s", name, tail(b, 4000))
		}
	})
}

// Kill stops a service with SIGKILL: no graceful shutdown at all.
func (s *stack) Kill(name string) {
	cmd := s.procs[name]
	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
	delete(s.procs, name)
}

func (s *stack) stopAll() {
	for _, cmd := range s.procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	for name, cmd := range s.procs {
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			s.t.Errorf("%s did not stop within 20s of SIGTERM", name)
			_ = cmd.Process.Kill()
		}
	}
}

func (s *stack) waitReady(name string) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.opsAddr[name] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s not ready within 60s", name)
}

// call makes an API request and decodes a JSON answer into out.
func (s *stack) call(method, path, key, contentType string, body []byte, out any) (int, http.Header) {
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

func (s *stack) postJSON(path string, v any, out any) int {
	s.t.Helper()
	body, _ := json.Marshal(v)
	code, _ := s.call(http.MethodPost, path, s.Key, "application/json", body, out)
	return code
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
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
