package index

import (
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/record"
)

func TestRouteURLFromEventFields(t *testing.T) {
	doc, err := condition.DecodeDocument([]byte(`{"type":"order.created","data":{"region":"eu","shop":"acme","n":7,"evil":"x.evil.example/","flag":true,"port":99999,"long":"` + strings.Repeat("x", 3000) + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, want, wantErr string
		allowed                  []string
	}{
		{"static route", "https://static.example/h", "https://static.example/h", "", nil},
		{"host from a field", "https://{{data.region}}.hooks.example/{{data.shop}}/{{data.n}}", "https://eu.hooks.example/acme/7", "", []string{"*.hooks.example"}},
		{"exact host allowed", "https://eu.example/{{data.shop}}", "https://eu.example/acme", "", []string{"eu.example"}},
		{"host not allowed", "https://{{data.shop}}.other.example/", "", "not in allowed_hosts", []string{"*.hooks.example"}},
		{"missing field next to the host", "https://hooks.example{{data.none}}/", "", "no string or number", []string{"*.hooks.example"}},
		{"a value cannot inject a path into the host", "https://{{data.evil}}hooks.example/", "", "", []string{"*.hooks.example"}},
		{"missing field", "https://{{data.nope}}.hooks.example/", "", "no string or number at data.nope", []string{"*.hooks.example"}},
		{"port from a field out of range", "https://eu.example:{{data.port}}/", "", "valid port", []string{"eu.example"}},
		{"filled URL too long", "https://eu.example/{{data.long}}", "", "more than 2048", []string{"eu.example"}},
		{"boolean is not a URL part", "https://{{data.flag}}.hooks.example/", "", "no string or number", []string{"*.hooks.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Entry{Sub: &record.Subscription{URL: "https://default.example", AllowedHosts: tc.allowed}, Routes: []Route{{URL: tc.url}}}
			got, err := e.URL(doc)
			if tc.name == "a value cannot inject a path into the host" {
				// x.evil.example/ is escaped into the host, which then fails to parse or match.
				if err == nil || strings.Contains(got, "evil.example/") {
					t.Fatalf("got %q, %v: want a refusal", got, err)
				}
				return
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("URL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNoRouteMatchesUsesTheSubscriptionURL(t *testing.T) {
	never, err := condition.Parse([]byte(`{"field":"type","op":"eq","value":"nope"}`))
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := condition.DecodeDocument([]byte(`{"type":"order.created"}`))
	e := &Entry{Sub: &record.Subscription{URL: "https://default.example"}, Routes: []Route{{Condition: never, URL: "https://route.example"}}}
	if got, err := e.URL(doc); err != nil || got != "https://default.example" {
		t.Fatalf("URL = %q, %v", got, err)
	}
}
