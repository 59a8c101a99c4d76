// Package ssrf keeps webhook deliveries from reaching private networks.
//
// A subscriber chooses the URL Hookline posts to, so without a guard a
// webhook could probe loopback services, the cluster network or a cloud
// metadata endpoint. The check runs at dial time, in net.Dialer's Control
// hook, on the IP the connection is actually about to use: a name that
// resolves to a public address when the subscription is validated and to a
// private one when the webhook is sent (DNS rebinding) is still refused.
//
// Operators may allowlist hosts (by name or IP) and CIDRs, as the local demo
// and the tests do for 127.0.0.1 and localhost.
package ssrf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrBlocked is wrapped by every error the guard returns for a refused
// destination; test for it with errors.Is.
var ErrBlocked = errors.New("ssrf: destination is not a public address")

// Guard refuses connections to non-public addresses unless they are
// allowlisted. It is immutable after New and safe for concurrent use; the
// zero Guard, like New(nil), allows public addresses only.
type Guard struct {
	hosts    map[string]struct{}     // lower-case names, no trailing dot
	ips      map[netip.Addr]struct{} // unmapped, no zone
	prefixes []netip.Prefix          // masked; IPv4 ones also match IPv4-mapped IPv6
}

// New builds a Guard from an allowlist. Each entry is a host name
// ("localhost", matched exactly and case-insensitively), an IP ("127.0.0.1",
// "::1") or a CIDR ("10.0.0.0/8"). Empty entries and surrounding spaces are
// ignored, so a split comma-separated setting can be passed as is. Entries
// with a port, a scheme or a wildcard are refused rather than silently never
// matching. A nil or empty list allows public addresses only.
func New(allow []string) (*Guard, error) {
	g := &Guard{hosts: map[string]struct{}{}, ips: map[netip.Addr]struct{}{}}
	for _, raw := range allow {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if strings.Contains(e, "://") {
			return nil, fmt.Errorf("ssrf: allowlist entry %q: want a host, IP or CIDR, not a URL", raw)
		}
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("ssrf: allowlist entry %q: not a CIDR: %w", raw, err)
			}
			if p.Addr().Is4In6() {
				// Written as ::ffff:a.b.c.d/n: keep the IPv4 prefix it means.
				if p.Bits() < 96 {
					return nil, fmt.Errorf("ssrf: allowlist entry %q: IPv4-mapped prefix shorter than /96", raw)
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			g.prefixes = append(g.prefixes, p.Masked())
			continue
		}
		if ip, ok := parseIP(e); ok {
			g.ips[ip] = struct{}{}
			continue
		}
		name, err := hostName(e)
		if err != nil {
			return nil, fmt.Errorf("ssrf: allowlist entry %q: %w", raw, err)
		}
		g.hosts[name] = struct{}{}
	}
	return g, nil
}

// parseIP parses an IP literal, with or without brackets or a zone, in the
// form the guard compares: unmapped and zoneless.
func parseIP(s string) (netip.Addr, bool) {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.WithZone("").Unmap(), true
}

// hostName validates a DNS name (letters, digits, '-', '_', dot-separated
// labels) and returns its comparison form.
func hostName(s string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if name == "" || len(name) > 253 {
		return "", errors.New("not a host name, IP or CIDR")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", errors.New("not a host name, IP or CIDR: empty or over-long label")
		}
		for _, c := range []byte(label) {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case c == ':':
				return "", errors.New("host names are allowed without a port")
			case c == '*':
				return "", errors.New("wildcards are not supported; list each host or use a CIDR")
			default:
				return "", fmt.Errorf("not a host name, IP or CIDR: unexpected %q", c)
			}
		}
	}
	return name, nil
}

// AllowsHost reports whether host, a name or an IP literal as found in a URL
// (brackets and trailing dot allowed), is allowlisted. Callers use it to
// permit plain http:// for allowlisted hosts.
func (g *Guard) AllowsHost(host string) bool {
	if ip, ok := parseIP(host); ok {
		return g.allowsIP(ip)
	}
	_, ok := g.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
	return ok
}

// allowsIP reports whether ip (unmapped, zoneless) is allowlisted.
func (g *Guard) allowsIP(ip netip.Addr) bool {
	if _, ok := g.ips[ip]; ok {
		return true
	}
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Control is a net.Dialer Control function. It runs after DNS resolution,
// on the address about to be connected to, and refuses it unless it is
// public (see IsPublicIP) or allowlisted. The error wraps ErrBlocked and
// names the address. Non-IP networks (unix sockets) are refused.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("ssrf: %s %q is not an IP address and port: %w", network, address, ErrBlocked)
	}
	ip := ap.Addr().WithZone("").Unmap()
	if g.allowsIP(ip) {
		return nil
	}
	if reason := classify(ip); reason != "" {
		return fmt.Errorf("ssrf: refusing to dial %s (%s): %w", address, reason, ErrBlocked)
	}
	return nil
}

// DialContext returns a dial function for http.Transport.DialContext that
// dials with a copy of d guarded by Control, except for hosts allowlisted by
// name or IP, which it dials unguarded so that "localhost" may reach whatever
// it resolves to. d's own Control or ControlContext, if any, still runs after
// the guard's check. Do not also set d.Control to g.Control: an allowlisted
// name would then be refused on its IP. Leave the transport's Proxy nil, or
// the guard would check the proxy's address instead of the endpoint's.
func (g *Guard) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	open := *d
	guarded := *d
	userControl, userControlContext := d.Control, d.ControlContext
	guarded.Control = nil
	guarded.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := g.Control(network, address, c); err != nil {
			return err
		}
		switch {
		case userControlContext != nil:
			return userControlContext(ctx, network, address, c)
		case userControl != nil:
			return userControl(network, address, c)
		}
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(addr); err == nil && g.AllowsHost(host) {
			return open.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
}

// IsPublicIP reports whether ip is a globally routable unicast address, the
// only kind a webhook may reach unless allowlisted. It refuses loopback,
// RFC 1918 private, shared CGNAT (100.64.0.0/10), link-local (including the
// 169.254.169.254 metadata endpoint), unique-local IPv6 (including
// fd00:ec2::254), multicast, unspecified, broadcast, reserved and
// documentation ranges, and the IPv4-mapped, NAT64 (64:ff9b::/96) and 6to4
// forms of any refused IPv4 address. Ingest uses it to validate IP literals
// in subscription URLs; the dial-time check is Control.
func IsPublicIP(ip netip.Addr) bool {
	return classify(ip.WithZone("")) == ""
}

// A blockedRange is a range of non-public addresses and why.
type blockedRange struct {
	prefix netip.Prefix
	reason string
}

func rangeOf(cidr, reason string) blockedRange {
	return blockedRange{netip.MustParsePrefix(cidr), reason}
}

// blocked4 lists the IPv4 ranges that are not globally reachable unicast,
// after the IANA IPv4 Special-Purpose Address Registry.
var blocked4 = []blockedRange{
	rangeOf("0.0.0.0/8", "this network"),
	rangeOf("10.0.0.0/8", "private"),
	rangeOf("100.64.0.0/10", "shared address space (CGNAT)"),
	rangeOf("127.0.0.0/8", "loopback"),
	rangeOf("169.254.169.254/32", "cloud metadata"),
	rangeOf("169.254.0.0/16", "link-local"),
	rangeOf("172.16.0.0/12", "private"),
	rangeOf("192.0.0.0/24", "IETF protocol assignments"),
	rangeOf("192.0.2.0/24", "documentation"),
	rangeOf("192.88.99.0/24", "6to4 relay anycast"),
	rangeOf("192.168.0.0/16", "private"),
	rangeOf("198.18.0.0/15", "benchmarking"),
	rangeOf("198.51.100.0/24", "documentation"),
	rangeOf("203.0.113.0/24", "documentation"),
	rangeOf("224.0.0.0/4", "multicast"),
	rangeOf("255.255.255.255/32", "broadcast"),
	rangeOf("240.0.0.0/4", "reserved"),
}

// blocked6 lists the IPv6 ranges inside global unicast (2000::/3) that are
// not globally reachable; everything outside 2000::/3 is refused except the
// NAT64 prefix, handled in classify.
var blocked6 = []blockedRange{
	rangeOf("2001::/23", "IETF protocol assignments (incl. Teredo)"),
	rangeOf("2001:db8::/32", "documentation"),
	rangeOf("3fff::/20", "documentation"),
}

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	metadata6      = netip.MustParseAddr("fd00:ec2::254")
)

// classify returns why ip is not public, or "" when it is.
func classify(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "invalid address"
	case ip.Is4In6():
		if reason := classify(ip.Unmap()); reason != "" {
			return "IPv4-mapped " + reason
		}
		return ""
	case ip.Is4():
		for _, b := range blocked4 {
			if b.prefix.Contains(ip) {
				return b.reason
			}
		}
		return ""
	}
	switch {
	case ip == metadata6:
		return "cloud metadata"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsMulticast():
		return "multicast"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsPrivate():
		return "unique-local"
	case nat64.Contains(ip):
		// The NAT64 gateway would forward to the embedded IPv4 address.
		b := ip.As16()
		if reason := classify(netip.AddrFrom4([4]byte(b[12:16]))); reason != "" {
			return "NAT64 " + reason
		}
		return ""
	case sixToFour.Contains(ip):
		// 2002:aabb:ccdd::/48 belongs to the 6to4 site at a.b.c.d.
		b := ip.As16()
		if reason := classify(netip.AddrFrom4([4]byte(b[2:6]))); reason != "" {
			return "6to4 " + reason
		}
		return ""
	case !globalUnicast6.Contains(ip):
		// IPv4-compatible, IPv4-translated, discard-only, site-local,
		// local-use NAT64 and unassigned space.
		return "reserved"
	}
	for _, b := range blocked6 {
		if b.prefix.Contains(ip) {
			return b.reason
		}
	}
	return ""
}
