package routeurl

import "testing"

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
