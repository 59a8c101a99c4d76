package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Default ports: submission (STARTTLS) for smtp://, implicit TLS for
// smtps://.
const (
	DefaultPort    = 587
	DefaultTLSPort = 465
)

// Config says how to reach the SMTP server (HOOKLINE_SMTP_URL).
type Config struct {
	Host string
	Port int
	// ImplicitTLS speaks TLS from the first byte (smtps://). Otherwise
	// STARTTLS is used when the server offers it, or always with
	// RequireTLS (smtp://...?starttls=required).
	ImplicitTLS bool
	RequireTLS  bool
	User        string
	Password    string
	// RootCAs verifies the server; nil is the system pool.
	RootCAs *x509.CertPool
	// Timeout bounds connecting and each command.
	Timeout time.Duration
}

// ParseURL reads smtp://user:pass@host:port or smtps://user:pass@host:port.
// User and password are optional and percent-encoded like any URL's; the
// only query parameter is starttls=required.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, errors.New("not a URL like smtp://user:pass@host:587")
	}
	c := Config{Host: u.Hostname(), Timeout: 15 * time.Second}
	switch u.Scheme {
	case "smtp":
		c.Port = DefaultPort
	case "smtps":
		c.Port, c.ImplicitTLS = DefaultTLSPort, true
	default:
		return Config{}, fmt.Errorf("scheme %q: want smtp:// (STARTTLS when offered) or smtps:// (implicit TLS)", u.Scheme)
	}
	if c.Host == "" {
		return Config{}, errors.New("no host: want smtp://host:port")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Config{}, fmt.Errorf("port %q is not 1 to 65535", p)
		}
		c.Port = n
	}
	if u.Path != "" && u.Path != "/" {
		return Config{}, errors.New("a path means nothing here: want smtp://user:pass@host:port")
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		if k != "starttls" {
			return Config{}, fmt.Errorf("unknown parameter %q (only starttls=required)", k)
		}
	}
	switch v := q.Get("starttls"); v {
	case "":
	case "required":
		if c.ImplicitTLS {
			return Config{}, errors.New("starttls=required is for smtp://; smtps:// is TLS already")
		}
		c.RequireTLS = true
	default:
		return Config{}, fmt.Errorf("starttls=%q: the only value is required", v)
	}
	return c, nil
}

// Redacted is the server's URL without its password, for logs.
func (c Config) Redacted() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	return u.String()
}

// SMTP sends through one SMTP server, over one connection per Send.
type SMTP struct {
	cfg Config
}

// NewSMTP returns a mailer for cfg.
func NewSMTP(cfg Config) *SMTP { return &SMTP{cfg: cfg} }

func (s *SMTP) client() (*gomail.Client, error) {
	tc := &tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12, RootCAs: s.cfg.RootCAs}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(tc),
	}
	switch {
	case s.cfg.ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case s.cfg.RequireTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.cfg.User != "" {
		// The strongest mechanism the server offers; without TLS only
		// those that never send the password in clear (SCRAM, CRAM-MD5).
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.cfg.User), gomail.WithPassword(s.cfg.Password))
	}
	return gomail.NewClient(s.cfg.Host, opts...)
}

// Send delivers msgs over one connection. A message that cannot be built
// (an invalid address) fails permanently without being sent; when the
// server cannot be reached every message fails temporarily.
func (s *SMTP) Send(ctx context.Context, msgs []Message) []error {
	errs := make([]error, len(msgs))
	built := make([]*gomail.Msg, 0, len(msgs))
	index := make([]int, 0, len(msgs))
	for i, m := range msgs {
		gm, err := compose(m)
		if err != nil {
			errs[i] = &Error{Permanent: true, Err: err}
			continue
		}
		built, index = append(built, gm), append(index, i)
	}
	if len(built) == 0 {
		return errs
	}
	fail := func(err error) []error {
		for _, i := range index {
			errs[i] = &Error{Err: err}
		}
		return errs
	}
	c, err := s.client()
	if err != nil {
		return fail(fmt.Errorf("SMTP client: %w", err))
	}
	conn, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fail(fmt.Errorf("SMTP %s: %w", s.cfg.Redacted(), err))
	}
	defer func() { _ = c.CloseWithSMTPClient(conn) }()
	_ = c.SendWithSMTPClient(conn, built...) // each message carries its own error
	for j, gm := range built {
		if !gm.IsDelivered() {
			errs[index[j]] = classify(gm.SendError())
		}
	}
	return errs
}

// classify tells a permanent refusal of this message (a 5xx reply to RCPT
// TO, DATA or the end of the data) from everything else.
func classify(err error) error {
	if err == nil {
		err = errors.New("not delivered")
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		switch se.Reason {
		case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
			if code >= 500 && code < 600 {
				return &Error{Permanent: true, Err: err}
			}
		}
	}
	return &Error{Err: err}
}
