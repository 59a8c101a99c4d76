package emailaddr

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", "oncall@example.com", true},
		{"plus and dots", "ops.team+hookline@mail.example.co.uk", true},
		{"punycode domain", "ops@xn--bcher-kva.example", true},
		{"empty", "", false},
		{"no at", "oncall.example.com", false},
		{"two ats", "a@b@example.com", false},
		{"no domain dot", "oncall@localhost", false},
		{"display name", "Oncall <oncall@example.com>", false},
		{"angle brackets", "<oncall@example.com>", false},
		{"CRLF header injection", "oncall@example.com\r\nBcc: evil@example.net", false},
		{"LF alone", "oncall@example.com\nBcc:evil@example.net", false},
		{"CR alone", "oncall@example.com\rX", false},
		{"space", "on call@example.com", false},
		{"tab", "oncall@example.com\t", false},
		{"NUL", "oncall@exa\x00mple.com", false},
		{"comma list", "a@example.com,b@example.com", false},
		{"quoted local part", `"a b"@example.com`, false},
		{"domain literal", "a@[127.0.0.1]", false},
		{"trailing dot", "a@example.com.", false},
		{"leading hyphen label", "a@-x.example.com", false},
		{"too long", strings.Repeat("a", 250) + "@example.com", false},
		{"comment", "a(comment)@example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestParseSender(t *testing.T) {
	a, err := ParseSender("Hookline Alerts <alerts@example.com>")
	if err != nil || a.Name != "Hookline Alerts" || a.Address != "alerts@example.com" {
		t.Fatalf("ParseSender = %+v, %v", a, err)
	}
	for _, bad := range []string{
		"Hookline\r\nBcc: evil@example.net <alerts@example.com>",
		"Hookline <alerts@example.com>\r\nBcc: evil@example.net",
		"Hookline <alerts@localhost>",
		"not an address",
	} {
		if _, err := ParseSender(bad); err == nil {
			t.Errorf("ParseSender(%q) accepted it", bad)
		}
	}
}
