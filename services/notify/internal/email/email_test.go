package email

import (
	"bytes"
	"context"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    Config
		wantErr string
	}{
		{name: "plain with STARTTLS when offered", in: "smtp://mail.example.com",
			want: Config{Host: "mail.example.com", Port: 587}},
		{name: "user, password and port", in: "smtp://ops%40example.com:p%3Ass@mail.example.com:2525",
			want: Config{Host: "mail.example.com", Port: 2525, User: "ops@example.com", Password: "p:ss"}},
		{name: "implicit TLS", in: "smtps://u:p@mail.example.com",
			want: Config{Host: "mail.example.com", Port: 465, ImplicitTLS: true, User: "u", Password: "p"}},
		{name: "STARTTLS required", in: "smtp://mail.example.com:25?starttls=required",
			want: Config{Host: "mail.example.com", Port: 25, RequireTLS: true}},
		{name: "IPv6 host", in: "smtp://[::1]:1025", want: Config{Host: "::1", Port: 1025}},
		{name: "wrong scheme", in: "http://mail.example.com", wantErr: "scheme"},
		{name: "no host", in: "smtp://:25", wantErr: "no host"},
		{name: "bad port", in: "smtp://mail.example.com:70000", wantErr: "port"},
		{name: "path", in: "smtp://mail.example.com/inbox", wantErr: "path"},
		{name: "unknown parameter", in: "smtp://mail.example.com?tls=1", wantErr: "unknown parameter"},
		{name: "starttls on smtps", in: "smtps://mail.example.com?starttls=required", wantErr: "smtps"},
		{name: "starttls value", in: "smtp://mail.example.com?starttls=maybe", wantErr: "starttls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURL(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseURL(%q) = %+v, %v; want an error about %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Timeout = got.Timeout
			if got.Host != tc.want.Host || got.Port != tc.want.Port || got.ImplicitTLS != tc.want.ImplicitTLS ||
				got.RequireTLS != tc.want.RequireTLS || got.User != tc.want.User || got.Password != tc.want.Password {
				t.Fatalf("ParseURL(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if tc.want.Password != "" && strings.Contains(got.Redacted(), ":"+tc.want.Password+"@") {
				t.Errorf("Redacted() = %s shows the password", got.Redacted())
			}
		})
	}
}

var from = &mail.Address{Name: "Hookline", Address: "alerts@hookline.example"}

// written is the message as it goes on the wire.
func written(t *testing.T, m Message) string {
	t.Helper()
	msg, err := compose(m)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := msg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// headerLines are the message's header lines (the part before the first
// empty line), unfolded.
func headerLines(raw string) []string {
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	return strings.Split(strings.ReplaceAll(head, "\r\n ", " "), "\r\n")
}

func TestHeaderInjectionIsImpossible(t *testing.T) {
	t.Run("CR/LF in the recipient", func(t *testing.T) {
		for _, to := range []string{"oncall@example.com\r\nBcc: evil@example.net", "oncall@example.com\nBcc: evil@example.net", "oncall@example.com\rX: y"} {
			if _, err := compose(Message{From: from, To: to, Subject: "s", Text: "t"}); err == nil {
				t.Errorf("compose accepted recipient %q", to)
			}
		}
	})
	t.Run("CR/LF in the sender", func(t *testing.T) {
		bad := &mail.Address{Name: "x", Address: "alerts@hookline.example\r\nBcc: evil@example.net"}
		if _, err := compose(Message{From: bad, To: "oncall@example.com", Subject: "s", Text: "t"}); err == nil {
			t.Error("compose accepted a sender address with CR/LF")
		}
	})
	t.Run("CR/LF in the subject, the sender's name and extra headers", func(t *testing.T) {
		raw := written(t, Message{
			From:    &mail.Address{Name: "Hook\r\nBcc: evil@example.net", Address: "alerts@hookline.example"},
			To:      "oncall@example.com",
			Subject: "endpoint \"shop\"\r\nBcc: evil@example.net\r\nX-Evil: 1\nContent-Type: text/html",
			Text:    "body",
			Headers: map[string]string{"X-Hookline-Subscription": "sub_1\r\nBcc: evil@example.net", "Bcc": "evil@example.net", "X-Bad\r\nBcc": "evil@example.net"},
		})
		for _, line := range headerLines(raw) {
			name, _, _ := strings.Cut(line, ":")
			switch strings.ToLower(name) {
			case "bcc", "cc", "x-evil", "x-bad":
				t.Errorf("an injected header made it: %q\n%s", line, raw)
			}
			if strings.Contains(line, "evil@example.net") && !strings.HasPrefix(line, "Subject:") && !strings.HasPrefix(line, "From:") && !strings.HasPrefix(line, "X-Hookline-Subscription:") {
				t.Errorf("the injected address appears in %q", line)
			}
		}
		if n := strings.Count(raw, "\r\nContent-Type: text/html"); n != 0 {
			t.Errorf("an injected Content-Type made it into the headers:\n%s", raw)
		}
	})
}

func TestComposeWritesBothParts(t *testing.T) {
	raw := written(t, Message{ID: "ntf_1.abc@hookline", From: from, To: "oncall@example.com", Subject: "Endpoint failing: ünïcode",
		Text: "plain body", HTML: "<p>html body</p>", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	for _, want := range []string{"multipart/alternative", "text/plain", "text/html", "plain body", "<p>html body</p>",
		"Message-ID: <ntf_1.abc@hookline>", "Auto-Submitted: auto-generated", "To: <oncall@example.com>", "=?UTF-8?"} {
		if !strings.Contains(raw, want) {
			t.Errorf("message lacks %q:\n%s", want, raw)
		}
	}
}

func TestCleanBoundsAndStripsControls(t *testing.T) {
	if got := clean("a\r\nb\tc\u2028d", 100); got != "a  b c d" {
		t.Errorf("clean = %q", got)
	}
	got := clean(strings.Repeat("é", 200), 101)
	if len(got) > 101+len("…") || !strings.HasSuffix(got, "…") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("clean cut a long subject badly: %q", got)
	}
}

func TestLogMailer(t *testing.T) {
	var buf bytes.Buffer
	l := &Log{Log: zerolog.New(&buf)}
	errs := l.Send(context.Background(), []Message{
		{From: from, To: "oncall@example.com", Subject: "Endpoint failing", Text: "body"},
		{From: from, To: "bad\r\nBcc: evil@example.net", Subject: "x", Text: "y"},
	})
	if errs[0] != nil || !IsPermanent(errs[1]) {
		t.Fatalf("errors = %v, want nil and a permanent one", errs)
	}
	if !strings.Contains(buf.String(), `"to":"oncall@example.com"`) || !strings.Contains(buf.String(), "Endpoint failing") {
		t.Errorf("the log lacks the message: %s", buf.String())
	}
}
