package index

import (
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/routeurl"
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
			e := &Entry{Sub: &record.Subscription{URL: "https://default.example", AllowedHosts: tc.allowed}, Routes: []Route{{URL: tc.url, ID: "r0"}}}
			got, ref, err := e.Target(doc)
			if ref == nil || ref.Condition != "r0" {
				t.Fatalf("route %+v, want the matched route named even when its URL cannot be built", ref)
			}
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
	if got, ref, err := e.Target(doc); err != nil || got != "https://default.example" || ref != nil {
		t.Fatalf("Target = %q, %+v, %v", got, ref, err)
	}
}

// TestTargetRecordsTheRoute: a delivery names its route by its condition
// and keeps the values its URL was filled with, so the sender can fill the
// route as it is at each attempt; the scheme is the sender's to check,
// with the operator's allowlist the matcher does not have.
func TestTargetRecordsTheRoute(t *testing.T) {
	cond := `{"field":"data.region","op":"eq","value":"eu"}`
	e, err := Compile(&record.Subscription{ID: "sub_1", URL: "https://default.example", AllowedHosts: []string{"127.0.0.1"},
		Routes: []record.Route{{Condition: cond, URL: "http://127.0.0.1:9000/{{data.shop}}/{{data.n}}"}}})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := condition.DecodeDocument([]byte(`{"data":{"region":"eu","shop":"a b","n":7}}`))
	got, ref, err := e.Target(doc)
	if err != nil || got != "http://127.0.0.1:9000/a%20b/7" {
		t.Fatalf("Target = %q, %v", got, err)
	}
	if ref == nil || ref.Condition != routeurl.ConditionID(cond) || ref.Values["data.shop"] != "a b" || ref.Values["data.n"] != "7" {
		t.Fatalf("route %+v, want the condition's id and the raw values", ref)
	}
}
