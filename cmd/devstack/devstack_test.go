package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/stack"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestMakeRunStory builds the services and devstack, runs them on the
// embedded Kafka and Redis, sends an event with the README's curl request
// and waits for the demo receiver to print it as verified. Then it follows
// the welcome text's alert demo: five events to the receiver's /fail make
// the endpoint failing, and the SMTP catcher prints the email notify sends;
// fixing the endpoint as the text says brings the "recovered" email.
// A second start on the same data dir must find the persisted subscription
// and deliver again, through one subscription only.
func TestMakeRunStory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole stack")
	}
	bin := t.TempDir()
	root, _ := filepath.Abs("../..")
	if err := stack.Build(context.Background(), root, bin, append(stack.ServiceNames(), "devstack", "hookctl")...); err != nil {
		t.Fatal(err)
	}
	// The data dir is .hookline of a directory hookctl then runs in, as
	// `make run` and hookctl do from the repository.
	repo := t.TempDir()
	if os.Geteuid() == 0 {
		// As root, the embedded PostgreSQL runs as another user, which must
		// reach its data folder; TempDir makes it and its parent private.
		for _, d := range []string{repo, filepath.Dir(repo)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	cache := os.Getenv("HOOKLINE_CACHE")
	if cache == "" {
		cache = filepath.Join(root, ".cache") // where embeddedpg's own test keeps the binaries
	}
	data := filepath.Join(repo, ".hookline")
	api, recv := testinfra.FreeAddr(t), testinfra.FreeAddr(t)
	env := []string{
		"HOOKLINE_BIN_DIR=" + bin, "HOOKLINE_DATA_DIR=" + data, "HOOKLINE_HTTP_ADDR=" + api,
		"HOOKLINE_DEMO_RECEIVER_ADDR=" + recv,
		"HOOKLINE_EMBEDDED_KAFKA_PORT=" + strings.Split(testinfra.FreeAddr(t), ":")[1],
		"HOOKLINE_EMBEDDED_REDIS_ADDR=" + testinfra.FreeAddr(t),
		"HOOKLINE_EMBEDDED_POSTGRES_PORT=" + strings.Split(testinfra.FreeAddr(t), ":")[1], "HOOKLINE_CACHE=" + cache,
		"HOOKLINE_OPS_BASE_PORT=" + strconv.Itoa(freeBlock(t, len(stack.Services))),
		// The catcher, whatever is installed: its output is what is checked.
		"HOOKLINE_DEMO_MAIL=catcher", "HOOKLINE_DEMO_SMTP_ADDR=" + testinfra.FreeAddr(t),
	}
	for round := 1; round <= 2; round++ {
		out := startDevstack(t, filepath.Join(bin, "devstack"), env)
		out.waitLine(t, "[devstack] ready", 90*time.Second)
		req, _ := http.NewRequest(http.MethodPost, "http://"+api+"/v1/events",
			strings.NewReader(`{"type":"order.created","subject":"ord_1","data":{"id":"ord_1","total":42}}`))
		req.Header.Set("Authorization", "Bearer dev")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out.fail(t, "round %d: %v", round, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("round %d: POST /v1/events answered %d", round, resp.StatusCode)
		}
		if line := out.find("PostgreSQL: embedded on"); line == "" {
			out.fail(t, "round %d: devstack did not start the embedded PostgreSQL", round)
		}
		line := out.waitFor(t, "type=order.created", 60*time.Second)
		if !strings.HasPrefix(line, "[receiver]") || !strings.Contains(line, "signature verified") || !strings.Contains(line, "HTTP/2.0") {
			t.Fatalf("round %d: receiver printed %q", round, line)
		}
		time.Sleep(2 * time.Second) // a second subscription would deliver a second copy by now
		if n := out.count("type=order.created"); n != 1 {
			t.Fatalf("round %d: %d deliveries of one event, want 1", round, n)
		}
		if round == 1 {
			hookctlFindsTheStack(t, out, filepath.Join(bin, "hookctl"), repo)
			consoleLinkWorks(t, out, api)
			alertDemo(t, out, api, recv)
		}
		out.stop(t)
	}
}

// consoleLinkWorks: devstack prints the console's link, which serves the
// console under its security headers, and the dev key signs in to it.
func consoleLinkWorks(t *testing.T, out *output, api string) {
	t.Helper()
	link := "http://" + api + "/console/"
	if !strings.Contains(out.find("The web console:"), link) {
		out.fail(t, "devstack does not print the console link %s", link)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("GET %s: %d, CSP %q", link, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+api+"/v1/session", nil)
	req.Header.Set("Authorization", "Bearer dev")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/session with the dev key: %d", resp.StatusCode)
	}
}

// hookctlFindsTheStack: devstack prints the export lines of its
// addresses and writes them to .hookline/hookline.env, where hookctl run
// from the repository finds them with nothing in its environment.
func hookctlFindsTheStack(t *testing.T, out *output, hookctl, repo string) {
	t.Helper()
	out.waitLine(t, "  export KAFKA_BROKERS=127.0.0.1:", 5*time.Second)
	out.waitLine(t, "  export HOOKLINE_API_URL=http://", 5*time.Second)
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(hookctl, args...)
		cmd.Dir = repo
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "KAFKA_") && !strings.HasPrefix(kv, "REDIS_") && !strings.HasPrefix(kv, "HOOKLINE_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		b, err := cmd.Output()
		if err != nil {
			out.fail(t, "hookctl %s: %v %s", strings.Join(args, " "), err, b)
		}
		return b
	}
	if subs := run("-o", "json", "subs", "list"); !strings.Contains(string(subs), "demo receiver") {
		t.Errorf("hookctl subs list: %s, want the demo subscription", subs)
	}
	var attempts []map[string]any
	dec := json.NewDecoder(bytes.NewReader(run("-o", "json", "tail", "-n", "5")))
	for dec.More() {
		var a map[string]any
		if err := dec.Decode(&a); err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, a)
	}
	if len(attempts) != 1 || attempts[0]["outcome"] != "delivered" {
		t.Errorf("hookctl tail: %v, want the one delivered attempt", attempts)
	}
	// The delivery history, on the embedded PostgreSQL, has it too.
	subID, _ := attempts[0]["subscription_id"].(string)
	var logged []map[string]any
	for deadline := time.Now().Add(30 * time.Second); len(logged) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			out.fail(t, "hookctl logs %s: nothing within 30s", subID)
		}
		if err := json.Unmarshal(run("-o", "json", "logs", subID), &logged); err != nil {
			t.Fatal(err)
		}
	}
	if len(logged) != 1 || logged[0]["outcome"] != "delivered" || logged[0]["delivery_id"] != attempts[0]["delivery_id"] {
		t.Errorf("hookctl logs: %v, want the delivered attempt", logged)
	}
}

// alertDemo runs the alert demo of the welcome text and waits for the
// failing email, fixes the endpoint and waits for the recovered one, then
// deletes the subscription.
func alertDemo(t *testing.T, out *output, api, receiver string) {
	t.Helper()
	call := func(method, path, body string, want int) []byte {
		req, _ := http.NewRequest(method, "http://"+api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer dev")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out.fail(t, "%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			out.fail(t, "%s %s answered %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	var sub struct {
		ID string `json:"id"`
	}
	body := call(http.MethodPost, "/v1/subscriptions", `{"url":"https://`+receiver+`/fail","event_types":["alert.demo"],"alert_emails":["you@example.com"]}`, http.StatusCreated)
	if err := json.Unmarshal(body, &sub); err != nil || sub.ID == "" {
		out.fail(t, "create: %s", body)
	}
	for i := range 5 {
		call(http.MethodPost, "/v1/events", fmt.Sprintf(`{"type":"alert.demo","data":{"n":%d}}`, i), http.StatusAccepted)
	}
	line := out.waitLine(t, "[mail]", 90*time.Second)
	if !strings.Contains(line, "to you@example.com") || !strings.Contains(line, "[Hookline] Webhook endpoint failing") {
		out.fail(t, "the catcher printed %q", line)
	}
	out.waitFor(t, "#/subscriptions/"+sub.ID+"/logs", 5*time.Second)

	// The welcome text's fix: the next retry is delivered and the owner
	// hears that the endpoint recovered, once.
	fix := "https://" + receiver + "/fail/fix"
	if out.find("curl -sk "+fix) == "" {
		out.fail(t, "the welcome text does not show how to fix the endpoint (%s)", fix)
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the demo receiver's own certificate
	resp, err := insecure.Get(fix)
	if err != nil {
		out.fail(t, "GET %s: %v", fix, err)
	}
	resp.Body.Close()
	line = out.waitFor(t, "[Hookline] Webhook endpoint recovered", 90*time.Second)
	if !strings.HasPrefix(line, "[mail]") || !strings.Contains(line, "to you@example.com") {
		out.fail(t, "the catcher printed %q", line)
	}
	if n := out.count("[Hookline] Webhook endpoint recovered"); n != 1 {
		out.fail(t, "%d recovered emails, want 1", n)
	}
	call(http.MethodDelete, "/v1/subscriptions/"+sub.ID, "", http.StatusNoContent)
}

// freeBlock is the first of n consecutive 127.0.0.1 ports that were all
// free a moment ago: the services' ops ports are HOOKLINE_OPS_BASE_PORT+i.
func freeBlock(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		addr := testinfra.FreeAddr(t)
		base, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
		free := base+n <= 65535
		for i := 1; i < n && free; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if free = err == nil; free {
				ln.Close()
			}
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

type output struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr strings.Builder // the services' logs, shown when a wait fails
	done   chan struct{}
}

func startDevstack(t *testing.T, path string, env []string) *output {
	t.Helper()
	cmd := exec.Command(path)
	// The embedded stack is the point: drop any real servers from the env.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KAFKA_BROKERS=") && !strings.HasPrefix(kv, "REDIS_ADDR=") && !strings.HasPrefix(kv, "HOOKLINE_POSTGRES_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	o := &output{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = lockedWriter{o}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(o.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			o.mu.Lock()
			o.lines = append(o.lines, sc.Text())
			o.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		// SIGINT first: devstack then stops its services; a bare kill
		// would leave them running.
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-o.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	return o
}

func (o *output) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		for _, l := range o.lines {
			if strings.HasPrefix(l, prefix) {
				o.mu.Unlock()
				return l
			}
		}
		o.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	o.fail(t, "no line starting %q within %v", prefix, timeout)
	return ""
}

// fail ends the test with devstack's output and the services' logs.
func (o *output) fail(t *testing.T, format string, args ...any) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	t.Fatalf(format+"; output:\n%s\nstderr:\n%s", append(args, strings.Join(o.lines, "\n"), o.stderr.String())...)
}

// waitFor waits for a line holding sub and returns it.
func (o *output) waitFor(t *testing.T, sub string, timeout time.Duration) string {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if l := o.find(sub); l != "" {
			return l
		}
	}
	o.fail(t, "no line holding %q within %v", sub, timeout)
	return ""
}

func (o *output) find(sub string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range o.lines {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// count is how many lines hold sub.
func (o *output) count(sub string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, l := range o.lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func (o *output) stop(t *testing.T) {
	t.Helper()
	_ = o.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-o.done:
		_ = o.cmd.Wait()
	case <-time.After(30 * time.Second):
		t.Fatal("devstack did not stop within 30s of SIGINT")
	}
}

// lockedWriter appends the child's stderr to the output under its lock.
type lockedWriter struct{ o *output }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	return w.o.stderr.Write(p)
}
