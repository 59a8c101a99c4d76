// Package email sends notify's messages: one email to one recipient each,
// a plain-text and an HTML part, over SMTP (go-mail does the MIME and the
// protocol), or to the log when no SMTP server is configured. It tells a
// temporary failure, worth retrying, from a recipient the server refuses
// for good.
package email

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/hookline/hookline/pkg/emailaddr"
)

// Message is one email to one recipient. Each recipient gets a message of
// its own, so that no recipient sees another's address (a tenant's
// alert_emails and the operator's default may be different companies).
type Message struct {
	// ID becomes the Message-ID (<ID>); the same alert to the same
	// recipient always has the same one, so a copy sent twice after a
	// crash is recognisable.
	ID      string
	From    *mail.Address
	To      string
	Subject string
	Text    string
	HTML    string
	Date    time.Time
	// Headers are extra X- headers (X-Hookline-Subscription...).
	Headers map[string]string
}

// Mailer sends messages. Send returns one error per message, nil for a
// message the server accepted.
type Mailer interface {
	Send(ctx context.Context, msgs []Message) []error
}

// Error is a failed message. Permanent means the server refused this
// recipient or content for good (a 5xx reply to RCPT TO or to the data):
// sending it again cannot help. Every other failure (no connection, a 4xx,
// a TLS or authentication problem that the operator will fix) is temporary.
type Error struct {
	Permanent bool
	Err       error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a permanent refusal.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// clean makes s safe and readable as one header line: control characters
// (CR and LF among them) become spaces and the length is bounded. go-mail
// would encode them anyway; cleaning keeps the subject readable too.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// compose builds the go-mail message of m. Every address is checked again
// here, whatever checked it before: nothing reaches a header unchecked.
func compose(m Message) (*gomail.Msg, error) {
	if m.From == nil {
		return nil, errors.New("no sender")
	}
	if err := emailaddr.Check(m.From.Address); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	if err := emailaddr.Check(m.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	msg := gomail.NewMsg()
	var err error
	if name := clean(m.From.Name, 100); name != "" {
		err = msg.FromFormat(name, m.From.Address)
	} else {
		err = msg.From(m.From.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(clean(m.Subject, 200))
	if m.ID != "" {
		msg.SetMessageIDWithValue(clean(m.ID, 200))
	}
	if m.Date.IsZero() {
		msg.SetDate()
	} else {
		msg.SetDateWithValue(m.Date)
	}
	// An alert is machine-made: out-of-office replies must not answer it
	// (RFC 3834).
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	for k, v := range m.Headers {
		if strings.HasPrefix(k, "X-") && !strings.ContainsAny(k, ": \r\n") {
			msg.SetGenHeader(gomail.Header(k), clean(v, 200))
		}
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}
