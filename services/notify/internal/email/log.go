package email

import (
	"context"

	"github.com/rs/zerolog"
)

// Log is the mailer without an SMTP server: it writes each message to the
// log instead, so that an installation without HOOKLINE_SMTP_URL still
// shows what it would have sent. Messages are built as for SMTP, so an
// address SMTP would refuse is refused here too.
type Log struct {
	Log zerolog.Logger
}

// Send logs msgs.
func (l *Log) Send(_ context.Context, msgs []Message) []error {
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		if _, err := compose(m); err != nil {
			errs[i] = &Error{Permanent: true, Err: err}
			continue
		}
		l.Log.Info().Str("to", m.To).Str("subject", m.Subject).Str("message_id", m.ID).
			Str("text", m.Text).Msg("email not sent (no HOOKLINE_SMTP_URL)")
	}
	return errs
}
