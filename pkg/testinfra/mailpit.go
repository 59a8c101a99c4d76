package testinfra

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Mailpit is the real SMTP server that `make test` starts
// (deploy/scripts/mailpit.sh): tests send to it and read what arrived
// through its HTTP API. Tests share it, so each one mails addresses of its
// own (Address) and searches by them.
type Mailpit struct {
	SMTPAddr string // host:port
	URL      string // its HTTP API

	args []string  // a test's own mailpit: its command line
	cmd  *exec.Cmd // and its process while it runs
}

// MailpitServer returns the test mailpit (MAILPIT_SMTP_ADDR, MAILPIT_URL),
// failing under `make test` and skipping otherwise when there is none.
func MailpitServer(t testing.TB) *Mailpit {
	t.Helper()
	m := &Mailpit{SMTPAddr: need(t, "MAILPIT_SMTP_ADDR"), URL: need(t, "MAILPIT_URL")}
	resp, err := http.Get(m.URL + "/readyz")
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
	}
	if err != nil {
		t.Fatalf("mailpit at %s: %v", m.URL, err)
	}
	return m
}

// SMTPURL is HOOKLINE_SMTP_URL for this server.
func (m *Mailpit) SMTPURL() string { return "smtp://" + m.SMTPAddr }

// Address is an address unique to this test run, name-<random>@example.com.
func Address(name string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return name + "-" + hex.EncodeToString(b) + "@example.com"
}

// MailAddress is a name and an address as mailpit shows them.
type MailAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// MailSummary is a message as mailpit lists it.
type MailSummary struct {
	ID        string        `json:"ID"`
	MessageID string        `json:"MessageID"`
	From      MailAddress   `json:"From"`
	To        []MailAddress `json:"To"`
	Cc        []MailAddress `json:"Cc"`
	Bcc       []MailAddress `json:"Bcc"`
	Subject   string        `json:"Subject"`
	Created   time.Time     `json:"Created"` // when mailpit received it
}

// Mail is one message with its bodies.
type Mail struct {
	MailSummary
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

// Search lists the messages matching a mailpit search query, e.g.
// `to:"oncall-1a2b3c4d@example.com"`, newest first.
func (m *Mailpit) Search(t testing.TB, query string) []MailSummary {
	t.Helper()
	var res struct {
		Messages []MailSummary `json:"messages"`
	}
	m.get(t, "/api/v1/search?limit=1000&query="+url.QueryEscape(query), &res)
	return res.Messages
}

// To lists the messages to addr, newest first.
func (m *Mailpit) To(t testing.TB, addr string) []MailSummary {
	t.Helper()
	return m.Search(t, fmt.Sprintf("to:%q", addr))
}

// WaitTo waits until n messages to addr arrived and returns them, newest
// first; it fails the test after timeout.
func (m *Mailpit) WaitTo(t testing.TB, addr string, n int, timeout time.Duration) []MailSummary {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := m.To(t, addr)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: %d messages to %s after %s, want %d", len(got), addr, timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Message reads one message with its text and HTML bodies.
func (m *Mailpit) Message(t testing.TB, id string) Mail {
	t.Helper()
	var msg Mail
	m.get(t, "/api/v1/message/"+url.PathEscape(id), &msg)
	return msg
}

// Headers reads one message's headers.
func (m *Mailpit) Headers(t testing.TB, id string) map[string][]string {
	t.Helper()
	h := map[string][]string{}
	m.get(t, "/api/v1/message/"+url.PathEscape(id)+"/headers", &h)
	return h
}

// Raw reads one message as it arrived.
func (m *Mailpit) Raw(t testing.TB, id string) string {
	t.Helper()
	resp, err := http.Get(m.URL + "/api/v1/message/" + url.PathEscape(id) + "/raw")
	if err != nil {
		t.Fatalf("mailpit raw %s: %v", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit raw %s: %s %v", id, resp.Status, err)
	}
	return string(b)
}

// Chaos makes mailpit answer RCPT TO with code for every recipient
// (probability 100), or turns that off with code 0. The setting is the
// server's: use it on a mailpit of the test's own (StartMailpit with
// --enable-chaos), not on the shared one.
func (m *Mailpit) Chaos(t testing.TB, code int) {
	t.Helper()
	prob := 100
	if code == 0 {
		code, prob = 451, 0
	}
	body, _ := json.Marshal(map[string]any{"Recipient": map[string]int{"ErrorCode": code, "Probability": prob}})
	req, _ := http.NewRequest(http.MethodPut, m.URL+"/api/v1/chaos", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("mailpit chaos: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit chaos: %s (start it with --enable-chaos, as mailpit.sh does)", resp.Status)
	}
}

func (m *Mailpit) get(t testing.TB, path string, v any) {
	t.Helper()
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(m.URL + path)
	if err != nil {
		t.Fatalf("mailpit GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("mailpit GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit GET %s: %v", path, err)
	}
}

// StartMailpit starts a mailpit of the test's own on free ports, with
// extra flags (TLS certificates, chaos), for a test that changes how the
// server behaves or stops it; it stops when the test ends. The binary is
// MAILPIT_BIN, which mailpit.sh prints.
func StartMailpit(t testing.TB, flags ...string) *Mailpit {
	t.Helper()
	bin := need(t, "MAILPIT_BIN")
	m := &Mailpit{SMTPAddr: FreeAddr(t), URL: "http://" + FreeAddr(t)}
	m.args = append([]string{bin, "--smtp", m.SMTPAddr, "--listen", strings.TrimPrefix(m.URL, "http://"),
		"--disable-version-check", "--smtp-disable-rdns"}, flags...)
	t.Cleanup(func() { m.Stop(t) })
	m.Start(t)
	return m
}

// Start starts a mailpit of StartMailpit again after Stop, on the same
// ports, and waits until it answers. Its mail is gone.
func (m *Mailpit) Start(t testing.TB) {
	t.Helper()
	if len(m.args) == 0 {
		t.Fatal("Start is for a mailpit of StartMailpit")
	}
	cmd := exec.Command(m.args[0], m.args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mailpit %s: %v", m.args[0], err)
	}
	m.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(m.URL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit %v did not answer in 10s: %v\n%s", m.args, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills a mailpit of StartMailpit: its SMTP port refuses connections
// until Start.
func (m *Mailpit) Stop(t testing.TB) {
	t.Helper()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}
