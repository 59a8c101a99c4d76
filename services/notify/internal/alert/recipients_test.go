package alert

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/record"
)

func TestParseDefaults(t *testing.T) {
	d, err := ParseDefaults([]string{"acme=ops@acme.example", " acme = oncall@acme.example ", "*=noc@operator.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d["acme"], []string{"ops@acme.example", "oncall@acme.example"}) || !slices.Equal(d["*"], []string{"noc@operator.example"}) {
		t.Fatalf("defaults %v", d)
	}
	many := make([]string, MaxDefaults+1)
	for i := range many {
		many[i] = fmt.Sprintf("acme=a%d@acme.example", i)
	}
	for _, tc := range []struct {
		name    string
		entries []string
		want    string
	}{
		{"no tenant", []string{"=ops@acme.example"}, "not tenant=address"},
		{"no separator", []string{"ops@acme.example"}, "not tenant=address"},
		{"invalid address", []string{"acme=ops"}, "acme"},
		{"header injection", []string{"acme=ops@acme.example\r\nBcc: evil@example.net"}, "acme"},
		{"too many", many, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseDefaults(tc.entries); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseDefaults = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestRecipients(t *testing.T) {
	d := Defaults{"acme": {"ops@acme.example", "Owner@Shop.example"}, AllTenants: {"noc@operator.example"}, "other": {"x@other.example"}}
	sub := &record.Subscription{ID: "sub_1", Tenant: "acme", AlertEmails: []string{"owner@shop.example", "dev@shop.example", "bad\r\nBcc: evil@example.net"}}
	for _, tc := range []struct {
		name        string
		tenant      string
		sub         *record.Subscription
		want        []string
		wantInvalid int
	}{
		{"alert_emails, then the tenant's and everyone's defaults, each once", "acme", sub,
			[]string{"owner@shop.example", "dev@shop.example", "ops@acme.example", "noc@operator.example"}, 1},
		{"subscription gone", "acme", nil, []string{"ops@acme.example", "Owner@Shop.example", "noc@operator.example"}, 0},
		{"another tenant's subscription is ignored", "other", sub, []string{"x@other.example", "noc@operator.example"}, 0},
		{"nobody", "lonely", nil, []string{"noc@operator.example"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, invalid := d.recipients(tc.tenant, tc.sub)
			if !slices.Equal(got, tc.want) || invalid != tc.wantInvalid {
				t.Fatalf("recipients = %v (%d invalid), want %v (%d)", got, invalid, tc.want, tc.wantInvalid)
			}
		})
	}
	if got, _ := (Defaults{}).recipients("acme", nil); len(got) != 0 {
		t.Fatalf("no defaults, no subscription: %v", got)
	}
}
