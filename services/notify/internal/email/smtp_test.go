package email

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/testinfra"
)

func smtpTo(t *testing.T, rawURL string) *SMTP {
	t.Helper()
	cfg, err := ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 5 * time.Second
	return NewSMTP(cfg)
}

func TestSMTPDeliversToMailpit(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	to := testinfra.Address("oncall")
	m := smtpTo(t, mp.SMTPURL())
	errs := m.Send(context.Background(), []Message{{
		ID: "ntf_test." + strings.TrimSuffix(to, "@example.com") + "@hookline", From: from, To: to,
		Subject: "[Hookline] Webhook endpoint failing: shop", Text: "Deliveries failed 5 times in a row.",
		HTML: "<p>Deliveries failed <b>5</b> times in a row.</p>", Headers: map[string]string{"X-Hookline-Kind": "failing"},
	}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	got := mp.WaitTo(t, to, 1, 10*time.Second)
	msg := mp.Message(t, got[0].ID)
	if msg.Subject != "[Hookline] Webhook endpoint failing: shop" || msg.From.Address != from.Address || msg.From.Name != "Hookline" ||
		len(msg.To) != 1 || msg.To[0].Address != to {
		t.Errorf("arrived %+v", msg.MailSummary)
	}
	if !strings.Contains(msg.Text, "failed 5 times") || !strings.Contains(msg.HTML, "<b>5</b>") {
		t.Errorf("bodies: text %q html %q", msg.Text, msg.HTML)
	}
	h := mp.Headers(t, got[0].ID)
	if h["X-Hookline-Kind"][0] != "failing" || h["Auto-Submitted"][0] != "auto-generated" {
		t.Errorf("headers %v", h)
	}
}

// TestSMTPHeaderInjectionThroughMailpit sends a subject and a sender name
// carrying CR/LF and a Bcc: the injected recipient gets nothing and the
// message arrives with no Bcc.
func TestSMTPHeaderInjectionThroughMailpit(t *testing.T) {
	mp := testinfra.MailpitServer(t)
	to, evil := testinfra.Address("owner"), testinfra.Address("evil")
	m := smtpTo(t, mp.SMTPURL())
	errs := m.Send(context.Background(), []Message{
		{From: from, To: to, Subject: "failing: shop\r\nBcc: " + evil, Text: "body"},
		{From: from, To: to + "\r\nBcc: " + evil, Subject: "second", Text: "body"},
	})
	if errs[0] != nil || !IsPermanent(errs[1]) {
		t.Fatalf("errors %v; want the first sent and the second refused before sending", errs)
	}
	got := mp.WaitTo(t, to, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // anything else would have arrived with it
	if n := len(mp.To(t, to)); n != 1 {
		t.Errorf("%d messages to %s, want 1", n, to)
	}
	msg := mp.Message(t, got[0].ID)
	if len(msg.Bcc) != 0 || len(msg.Cc) != 0 || len(msg.To) != 1 {
		t.Errorf("recipients To %v Cc %v Bcc %v, want only %s", msg.To, msg.Cc, msg.Bcc, to)
	}
	if n := len(mp.To(t, evil)) + len(mp.Search(t, fmt.Sprintf("bcc:%q", evil))); n != 0 {
		t.Errorf("the injected address got %d messages", n)
	}
}

// TestSMTPPasswordNeverInClear: a server offering only PLAIN and LOGIN
// without TLS does not get the password; the email waits (a temporary
// failure) until the operator fixes the server or the URL.
func TestSMTPPasswordNeverInClear(t *testing.T) {
	mp := testinfra.StartMailpit(t, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
	to := testinfra.Address("auth")
	m := smtpTo(t, "smtp://hookline:s3cret@"+mp.SMTPAddr)
	err := m.Send(context.Background(), []Message{{From: from, To: to, Subject: "authenticated", Text: "x"}})[0]
	if err == nil || IsPermanent(err) {
		t.Fatalf("error %v, want a temporary one: no mechanism that keeps the password secret", err)
	}
	if n := len(mp.To(t, to)); n != 0 {
		t.Fatalf("%d messages arrived", n)
	}
}

func TestSMTPFailures(t *testing.T) {
	mp := testinfra.StartMailpit(t, "--enable-chaos")
	m := smtpTo(t, mp.SMTPURL())
	send := func() error {
		return m.Send(context.Background(), []Message{{From: from, To: testinfra.Address("x"), Subject: "s", Text: "t"}})[0]
	}
	t.Run("recipient refused for good", func(t *testing.T) {
		mp.Chaos(t, 550)
		defer mp.Chaos(t, 0)
		if err := send(); err == nil || !IsPermanent(err) {
			t.Fatalf("error %v, want a permanent one", err)
		}
	})
	t.Run("recipient refused for now", func(t *testing.T) {
		mp.Chaos(t, 451)
		defer mp.Chaos(t, 0)
		if err := send(); err == nil || IsPermanent(err) {
			t.Fatalf("error %v, want a temporary one", err)
		}
	})
	t.Run("server down", func(t *testing.T) {
		down := smtpTo(t, "smtp://"+testinfra.FreeAddr(t))
		errs := down.Send(context.Background(), []Message{{From: from, To: "a@example.com", Subject: "s", Text: "t"}, {From: from, To: "b@example.com", Subject: "s", Text: "t"}})
		for _, err := range errs {
			if err == nil || IsPermanent(err) {
				t.Fatalf("errors %v, want temporary ones", errs)
			}
		}
	})
	t.Run("STARTTLS required but not offered", func(t *testing.T) {
		if err := smtpTo(t, mp.SMTPURL()+"?starttls=required").Send(context.Background(),
			[]Message{{From: from, To: "a@example.com", Subject: "s", Text: "t"}})[0]; err == nil || IsPermanent(err) {
			t.Fatalf("error %v, want a temporary one (the operator fixes the server)", err)
		}
	})
}

// tlsFiles writes a throwaway certificate for 127.0.0.1 and its key.
func tlsFiles(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c, err := selfsigned.New()
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.TLS.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, c.Pool()
}

func TestSMTPOverTLS(t *testing.T) {
	certFile, keyFile, pool := tlsFiles(t)
	for _, tc := range []struct {
		name   string
		flags  []string
		scheme string
	}{
		// Mailpit accepts any user and password; it offers AUTH only over TLS.
		{"STARTTLS when offered, with a password", []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-auth-accept-any"}, "smtp://hookline:s3cret@%s"},
		{"STARTTLS required", []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-starttls"}, "smtp://%s?starttls=required"},
		{"implicit TLS, with a password", []string{"--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-tls", "--smtp-auth-accept-any"}, "smtps://hookline:s3cret@%s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp := testinfra.StartMailpit(t, tc.flags...)
			cfg, err := ParseURL(strings.Replace(tc.scheme, "%s", mp.SMTPAddr, 1))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Timeout = 5 * time.Second
			to := testinfra.Address("tls")
			msg := []Message{{From: from, To: to, Subject: "over TLS", Text: "x"}}
			// Not trusting the server's certificate fails, and may be
			// fixed by the operator: temporary.
			if err := NewSMTP(cfg).Send(context.Background(), msg)[0]; err == nil || IsPermanent(err) {
				t.Fatalf("an untrusted certificate gave %v, want a temporary error", err)
			}
			cfg.RootCAs = pool
			if err := NewSMTP(cfg).Send(context.Background(), msg)[0]; err != nil {
				t.Fatal(err)
			}
			mp.WaitTo(t, to, 1, 10*time.Second)
		})
	}
}
