package routeurl

import (
	"errors"
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/record"
)

func TestHostAllowed(t *testing.T) {
	allowed := []string{"hooks.example.com", "*.Tenants.example.net"}
	for host, want := range map[string]bool{
		"hooks.example.com":         true,
		"HOOKS.example.com.":        true,
		"a.tenants.example.net":     true,
		"a.b.tenants.example.net":   true,
		"tenants.example.net":       false, // the wildcard needs a subdomain
		"evil-tenants.example.net":  false,
		"hooks.example.com.evil.io": false,
		"example.com":               false,
	} {
		if got := HostAllowed(host, allowed); got != want {
			t.Errorf("HostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestPlaceholder(t *testing.T) {
	m := Placeholder.FindAllStringSubmatch("https://{{ data.shop }}.example.com/{{data.items[0].id}}/{{bad field}}", -1)
	if len(m) != 2 || m[0][1] != "data.shop" || m[1][1] != "data.items[0].id" {
		t.Errorf("placeholders %q, want data.shop and data.items[0].id only", m)
	}
}

func TestFill(t *testing.T) {
	event := map[string]string{"data.shop": "acme/eu", "data.n": "7"}
	lookup := func(p string) (string, bool) { v, ok := event[p]; return v, ok }
	got, values, missing := Fill("https://{{data.n}}.hooks.example/{{ data.shop }}/{{data.none}}", lookup)
	if got != "https://7.hooks.example/acme%2Feu/" || len(missing) != 1 || missing[0] != "data.none" {
		t.Errorf("Fill = %q, missing %v", got, missing)
	}
	if len(values) != 2 || values["data.shop"] != "acme/eu" || values["data.n"] != "7" {
		t.Errorf("values %v, want the raw values by path", values)
	}
}

func TestConditionIDIgnoresSpacingAndKeyOrder(t *testing.T) {
	a := ConditionID(`{"field":"data.region","op":"eq","value":"eu"}`)
	b := ConditionID("{ \"value\": \"eu\",\n  \"op\": \"eq\", \"field\": \"data.region\" }")
	c := ConditionID(`{"field":"data.region","op":"eq","value":"us"}`)
	if a != b || a == c || len(a) != 32 {
		t.Errorf("ids %s %s %s: want the first two equal, the third different, 32 hex digits", a, b, c)
	}
}

func TestCheck(t *testing.T) {
	allowHTTP := func(h string) bool { return h == "127.0.0.1" }
	tests := []struct {
		url     string
		allowed []string
		wantErr string
	}{
		{"https://hooks.example/x", nil, ""},
		{"http://127.0.0.1:9000/x", nil, ""},
		{"http://hooks.example/x", nil, "uses http"},
		{"ftp://hooks.example/x", nil, "not an https URL"},
		{"https://user:pw@hooks.example/x", nil, "credentials"},
		{"/relative", nil, "not an absolute URL"},
		{"https://a.hooks.example/", []string{"*.hooks.example"}, ""},
		{"https://evil.example/", []string{"*.hooks.example"}, "not in allowed_hosts"},
		// A route filled from the event at send time obeys the same
		// rules as one written through the API: a dialable port, a
		// bounded length.
		{"https://hooks.example:0/x", nil, "not one from 1 to 65535"},
		{"https://a.hooks.example:99999/x", []string{"*.hooks.example"}, "not one from 1 to 65535"},
		{"https://hooks.example:65535/x", nil, ""},
		{"https://hooks.example/" + strings.Repeat("x", MaxURLLen), nil, "more than 2048"},
	}
	for _, tc := range tests {
		err := Check(tc.url, allowHTTP, tc.allowed)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrRefused)) {
			t.Errorf("Check(%q) = %v, want %q", tc.url, err, tc.wantErr)
		}
	}
}

// TestResolve: each attempt goes where the subscription says now.
func TestResolve(t *testing.T) {
	eu := `{"field":"data.region","op":"eq","value":"eu"}`
	us := `{"field":"data.region","op":"eq","value":"us"}`
	sub := func(url string, routes ...record.Route) *record.Subscription {
		return &record.Subscription{URL: url, Routes: routes, AllowedHosts: []string{"*.hooks.example"}}
	}
	euRef := &record.RouteRef{Condition: ConditionID(eu), Values: map[string]string{"data.shop": "acme"}}
	tests := []struct {
		name    string
		sub     *record.Subscription
		d       record.Delivery
		want    string
		wantErr string
	}{
		{"the url as it is now", sub("https://new.example/h"), record.Delivery{URL: "https://old.example/h", ResolveURL: true}, "https://new.example/h", ""},
		{"the route as it is now, found by its condition wherever it moved",
			sub("https://main.example", record.Route{Condition: us, URL: "https://us.example"}, record.Route{Condition: eu, URL: "https://eu2.hooks.example/{{data.shop}}"}),
			record.Delivery{URL: "https://eu.hooks.example/acme", ResolveURL: true, Route: euRef}, "https://eu2.hooks.example/acme", ""},
		{"a static route", sub("https://main.example", record.Route{Condition: eu, URL: "https://eu.example/static"}),
			record.Delivery{ResolveURL: true, Route: euRef}, "https://eu.example/static", ""},
		{"route removed, none left: the url", sub("https://main.example"), record.Delivery{ResolveURL: true, Route: euRef}, "https://main.example", ""},
		{"route removed, others left: refused", sub("https://main.example", record.Route{Condition: us, URL: "https://us.example"}),
			record.Delivery{ResolveURL: true, Route: euRef}, "", "no longer on the subscription"},
		{"route now needs a value the event did not have", sub("https://main.example", record.Route{Condition: eu, URL: "https://{{data.region}}.hooks.example/"}),
			record.Delivery{ResolveURL: true, Route: euRef}, "", "needs data.region"},
		{"filled host no longer allowed", &record.Subscription{URL: "https://main.example", Routes: []record.Route{{Condition: eu, URL: "https://{{data.shop}}.hooks.example/"}}, AllowedHosts: []string{"other.example"}},
			record.Delivery{ResolveURL: true, Route: euRef}, "", "not in allowed_hosts"},
		{"url moved to http of a host not allowlisted", sub("http://main.example"), record.Delivery{ResolveURL: true}, "", "uses http"},
		{"written before Delivery v2: as matched", sub("https://new.example", record.Route{Condition: eu, URL: "https://eu.example"}),
			record.Delivery{URL: "https://old-route.example"}, "https://old-route.example", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.sub, &tc.d, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve = %q, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestExample(t *testing.T) {
	for tmpl, want := range map[string]string{
		"https://{{data.region}}.hooks.example/{{data.shop}}": "https://x.hooks.example/x",
		"https://hooks.example:{{data.port}}/{{data.shop}}":   "https://hooks.example:443/x",
		"http://127.0.0.1:9443/a?b={{data.c}}":                "http://127.0.0.1:9443/a?b=x",
		"https://[::1]:{{data.port}}/":                        "https://[::1]:443/",
		"{{data.url}}":                                        "x",
	} {
		if got := Example(tmpl); got != want {
			t.Errorf("Example(%q) = %q, want %q", tmpl, got, want)
		}
	}
}
