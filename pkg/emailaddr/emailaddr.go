// Package emailaddr decides which email addresses Hookline accepts for its
// alert emails: the subscriptions' alert_emails, the per-tenant defaults and
// the sender address. It accepts a bare address (user@example.com) and
// nothing that could smuggle a header or a second recipient into a message:
// no display name, no comments, no quoted local part, no control
// characters, one @ and a domain that is a host name.
package emailaddr

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
)

// MaxLen is the longest address accepted: RFC 5321 caps a path at 256
// octets, the address inside it at 254.
const MaxLen = 254

// domainPattern is a host name of at least two labels, each of letters,
// digits and hyphens (IDNs in their xn-- form).
var domainPattern = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// ErrInvalid is wrapped by every error of Check.
var ErrInvalid = errors.New("not an email address")

// Check returns nil when s is a bare address Hookline may send to.
func Check(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: it is empty", ErrInvalid)
	case len(s) > MaxLen:
		return fmt.Errorf("%w: longer than %d characters", ErrInvalid, MaxLen)
	case strings.IndexFunc(s, func(r rune) bool { return r < 0x21 || r == 0x7f }) >= 0:
		// Spaces, CR, LF, tabs and other controls: a CR/LF is how a header
		// is injected, and no bare address holds a space.
		return fmt.Errorf("%w: it holds spaces or control characters", ErrInvalid)
	case strings.Count(s, "@") != 1:
		return fmt.Errorf("%w: want one @, as in oncall@example.com", ErrInvalid)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return fmt.Errorf("%w: want a bare address such as oncall@example.com, without a name or <>", ErrInvalid)
	}
	local, domain, _ := strings.Cut(s, "@")
	if strings.HasPrefix(local, `"`) {
		return fmt.Errorf("%w: a quoted local part is not accepted", ErrInvalid)
	}
	if !domainPattern.MatchString(domain) {
		return fmt.Errorf("%w: %q is not a host name like example.com", ErrInvalid, domain)
	}
	return nil
}

// Normal is the form two addresses are compared in: the domain is case
// insensitive, and so, in practice, is the local part.
func Normal(s string) string { return strings.ToLower(s) }

// ParseSender reads the From address of alert emails ("Hookline
// <alerts@example.com>" or a bare address). The name may not hold control
// characters; the address must pass Check.
func ParseSender(s string) (*mail.Address, error) {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return nil, fmt.Errorf("%w: it holds control characters", ErrInvalid)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := Check(a.Address); err != nil {
		return nil, err
	}
	return a, nil
}
