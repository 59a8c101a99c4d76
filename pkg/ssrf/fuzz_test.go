package ssrf_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/ssrf"
)

// FuzzNew feeds New a comma-separated allowlist, as HOOKLINE_ALLOW_HOSTS
// holds: it must never panic, and an accepted IP or CIDR entry must be
// honoured by AllowsHost. Seeds: testdata/fuzz/FuzzNew.
func FuzzNew(f *testing.F) {
	f.Add("127.0.0.1,localhost")
	f.Fuzz(func(t *testing.T, list string) {
		entries := strings.Split(list, ",")
		g, err := ssrf.New(entries)
		if err != nil {
			return
		}
		for _, e := range entries {
			e = strings.TrimSpace(e)
			if ip, err := netip.ParseAddr(e); err == nil {
				if !g.AllowsHost(e) {
					t.Errorf("New(%q) accepted %q but AllowsHost(%q) = false", list, e, e)
				}
				if !g.AllowsHost(ip.Unmap().WithZone("").String()) {
					t.Errorf("New(%q) accepted %q but not its plain form %s", list, e, ip.Unmap().WithZone(""))
				}
			}
			if p, err := netip.ParsePrefix(e); err == nil {
				if !g.AllowsHost(p.Masked().Addr().String()) {
					t.Errorf("New(%q) accepted %q but does not allow its first address", list, e)
				}
			}
		}
	})
}

// FuzzIsPublicIP checks that IsPublicIP never panics and judges an IPv4
// address and its IPv4-mapped IPv6 form alike. Seeds:
// testdata/fuzz/FuzzIsPublicIP.
func FuzzIsPublicIP(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		public := ssrf.IsPublicIP(ip)
		if ip.Is4() {
			mapped := netip.AddrFrom16(ip.As16())
			if got := ssrf.IsPublicIP(mapped); got != public {
				t.Fatalf("IsPublicIP(%s) = %v but IsPublicIP(%s) = %v", ip, public, mapped, got)
			}
			var nat64 [16]byte
			copy(nat64[:], []byte{0, 0x64, 0xff, 0x9b})
			copy(nat64[12:], b)
			if got := ssrf.IsPublicIP(netip.AddrFrom16(nat64)); got != public {
				t.Fatalf("IsPublicIP(%s) = %v but its NAT64 form is %v", ip, public, got)
			}
		}
		if public && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified()) {
			t.Fatalf("IsPublicIP(%s) = true for a special address", ip)
		}
	})
}
