package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/hookline/hookline/pkg/config"
)

// Where `make run` sends alert emails, when HOOKLINE_SMTP_URL does not name
// a server: mailpit when it is installed (in PATH, or built by `make test`
// into .cache/mailpit/), else a catcher in this process that prints each
// email. HOOKLINE_DEMO_MAIL=catcher or =mailpit picks one.
type mailSettings struct {
	mode                     string
	catcherAddr              string
	mailpitSMTP, mailpitHTTP int
}

func readMailSettings(r *config.Reader) mailSettings {
	m := mailSettings{
		mode:        r.String("HOOKLINE_DEMO_MAIL", "auto", "without HOOKLINE_SMTP_URL, where alert emails go: mailpit, catcher (printed here), or auto (mailpit when installed)"),
		catcherAddr: r.String("HOOKLINE_DEMO_SMTP_ADDR", "127.0.0.1:2525", "the catcher's SMTP address"),
		mailpitSMTP: r.Int("MAILPIT_SMTP_PORT", 1025, "mailpit's SMTP port"),
		mailpitHTTP: r.Int("MAILPIT_HTTP_PORT", 8025, "mailpit's web UI port"),
	}
	switch m.mode {
	case "auto", "mailpit", "catcher":
	default:
		r.Fail("HOOKLINE_DEMO_MAIL", fmt.Errorf("%q: want auto, mailpit or catcher", m.mode))
	}
	return m
}

// demoFrom is the sender of the demo's alert emails.
const demoFrom = "Hookline <alerts@hookline.localhost>"

// startMail returns the SMTP URL notify is to send to and a stop function.
func startMail(ctx context.Context, m mailSettings, dataDir string) (smtpURL string, stop func(), err error) {
	mode := m.mode
	if mode == "mailpit" || mode == "auto" {
		if bin := findMailpit(); bin != "" {
			url, stop, err := startMailpit(bin, m, dataDir)
			if err == nil || mode == "mailpit" {
				return url, stop, err
			}
			say("mailpit did not start (%v); printing emails here instead", err)
		} else if mode == "mailpit" {
			return "", nil, errors.New("HOOKLINE_DEMO_MAIL=mailpit: no mailpit in PATH or .cache/mailpit (make mailpit-up builds it)")
		}
	}
	stop, err = startCatcher(ctx, m.catcherAddr)
	if err != nil {
		return "", nil, err
	}
	say("alert emails: printed here as [mail] (an SMTP catcher on %s)", m.catcherAddr)
	return "smtp://" + m.catcherAddr, stop, nil
}

// findMailpit looks for mailpit in PATH, then where mailpit.sh builds it.
func findMailpit() string {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	found, _ := filepath.Glob(filepath.Join(".cache", "mailpit", "v*", "mailpit"))
	if len(found) > 0 {
		return found[len(found)-1]
	}
	return ""
}

// startMailpit runs mailpit on 127.0.0.1, or uses one already answering
// there (mailpit.sh up).
func startMailpit(bin string, m mailSettings, dataDir string) (string, func(), error) {
	smtpAddr, uiAddr := fmt.Sprintf("127.0.0.1:%d", m.mailpitSMTP), fmt.Sprintf("127.0.0.1:%d", m.mailpitHTTP)
	ui := "http://" + uiAddr
	if answers(ui + "/readyz") {
		say("alert emails: mailpit already running, see them at %s", ui)
		return "smtp://" + smtpAddr, func() {}, nil
	}
	cmd := exec.Command(bin, "--smtp", smtpAddr, "--listen", uiAddr,
		"--database", filepath.Join(dataDir, "mailpit.db"), "--disable-version-check", "--smtp-disable-rdns", "--quiet")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-done:
			return "", nil, errors.New("mailpit exited at start")
		default:
		}
		if answers(ui + "/readyz") {
			say("alert emails: mailpit (%s), see them at %s", bin, ui)
			return "smtp://" + smtpAddr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("mailpit did not answer on %s", ui)
}

func answers(url string) bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startCatcher serves SMTP on addr and prints every message it gets.
func startCatcher(ctx context.Context, addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("SMTP catcher: %w", err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &catch{}, nil }))
	srv.Domain = "localhost"
	srv.MaxMessageBytes = 1 << 20
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.ErrorLog = quietLog{}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return func() { _ = srv.Close() }, nil
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

// catch is one SMTP session of the catcher.
type catch struct{ to []string }

func (c *catch) Reset()        { c.to = nil }
func (c *catch) Logout() error { return nil }
func (c *catch) Mail(string, *smtp.MailOptions) error {
	return nil
}

func (c *catch) Rcpt(to string, _ *smtp.RcptOptions) error {
	c.to = append(c.to, to)
	return nil
}

func (c *catch) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	text := plainText(msg)
	fmt.Printf("[mail] %s to %s: %s\n%s\n", time.Now().Format("15:04:05"), strings.Join(c.to, ", "), subject, indent(text))
	return nil
}

// plainText is a message's text/plain part.
func plainText(msg *mail.Message) string {
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return "(unreadable message)"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return "(no text part)"
			}
			if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt == "text/plain" {
				return decodeBody(p, p.Header.Get("Content-Transfer-Encoding"))
			}
		}
	}
	return decodeBody(msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
}

func decodeBody(r io.Reader, encoding string) string {
	if strings.EqualFold(encoding, "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	return strings.TrimSpace(string(b))
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
