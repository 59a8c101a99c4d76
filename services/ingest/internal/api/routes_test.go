package api

import (
	"strings"
	"testing"
)

// TestRouteURLTemplates: a route URL filled from the event is held to the
// rules of url for what it can become: https, or http only to a host the
// operator allowlists (which a host taken from the event never is), and
// its fixed host in allowed_hosts. A placeholder in the port stands for a
// port, not for text that cannot parse.
func TestRouteURLTemplates(t *testing.T) {
	s := offlineServer(t) // the operator allowlists allowed.test and 127.0.0.1
	route := func(url string, allowed ...string) string {
		hosts := `"` + strings.Join(allowed, `","`) + `"`
		return subBody(t, `{"allowed_hosts":[`+hosts+`],"routes":[{"condition":{"field":"data.r","op":"eq","value":"eu"},"url":"`+url+`"}]}`)
	}
	tests := []struct {
		name, body, wantDetail string // wantDetail "": accepted
	}{
		{"https host from the event", route("https://{{data.region}}.hooks.example/{{data.shop}}", "*.hooks.example"), ""},
		{"port from the event", route("https://hooks.example:{{data.port}}/{{data.shop}}", "hooks.example"), ""},
		{"http to an allowlisted host, path from the event", route("http://127.0.0.1:9443/{{data.shop}}", "127.0.0.1"), ""},
		{"http with a host from the event can only be refused", route("http://{{data.region}}.hooks.example/", "*.hooks.example"), "must use https"},
		{"http to a host the operator does not allowlist", route("http://hooks.example/{{data.shop}}", "hooks.example"), "must use https"},
		{"a scheme that is not http", route("ftp://hooks.example/{{data.shop}}", "hooks.example"), "must use https"},
		{"a fixed host outside allowed_hosts", route("https://other.example/{{data.shop}}", "hooks.example"), "not in allowed_hosts"},
		{"credentials", route("https://u:{{data.p}}@hooks.example/", "hooks.example"), "credentials"},
		{"a private address", route("https://10.0.0.1/{{data.shop}}", "10.0.0.1"), "private"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in subscriptionInput
			if errs := decodeStrict([]byte(tc.body), &in); errs != nil {
				t.Fatal(errs)
			}
			errs := s.apply(&in, newSubscription("sub_1", "acme", testNow), true)
			if tc.wantDetail == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %+v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != "routes[0].url" || !strings.Contains(errs[0].Detail, tc.wantDetail) {
				t.Fatalf("errors %+v, want routes[0].url: %q", errs, tc.wantDetail)
			}
		})
	}
}
