package ssrf_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/ssrf"
)

func TestIsPublicIP(t *testing.T) {
	tests := []struct {
		addr   string
		public bool
	}{
		// Public.
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"93.184.215.14", true},
		{"100.63.255.255", true},  // just below CGNAT
		{"100.128.0.0", true},     // just above CGNAT
		{"172.15.255.255", true},  // just below 172.16/12
		{"172.32.0.0", true},      // just above
		{"192.0.1.1", true},       // between 192.0.0/24 and 192.0.2/24
		{"198.17.255.255", true},  // just below benchmarking
		{"198.20.0.0", true},      // just above
		{"223.255.255.255", true}, // last before multicast
		{"2606:4700:4700::1111", true},
		{"2001:4860:4860::8888", true},
		{"2a00:1450:4001:82b::200e", true},
		{"::ffff:8.8.8.8", true},
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},  // 6to4 of 8.8.8.8
		{"2600::1%eth0", true},     // zone ignored

		// IPv4 special purpose.
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"10.0.0.1", false},
		{"10.255.255.255", false},
		{"100.64.0.1", false},
		{"100.100.100.200", false}, // Alibaba metadata, in CGNAT space
		{"100.127.255.255", false},
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"169.254.0.1", false},
		{"169.254.169.254", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.0.0.8", false},
		{"192.0.0.170", false},
		{"192.0.2.1", false},
		{"192.88.99.1", false},
		{"192.168.1.1", false},
		{"198.18.0.1", false},
		{"198.19.255.255", false},
		{"198.51.100.7", false},
		{"203.0.113.9", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},

		// IPv6 special purpose.
		{"::", false},
		{"::1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"febf:ffff::1", false},
		{"fec0::1", false}, // deprecated site-local
		{"fc00::1", false},
		{"fd12:3456:789a::1", false},
		{"fd00:ec2::254", false},
		{"ff02::1", false},
		{"ff05::1:3", false},
		{"100::1", false},           // discard-only
		{"2001::1", false},          // Teredo
		{"2001:db8::1", false},      // documentation
		{"3fff::1", false},          // documentation (RFC 9637)
		{"::127.0.0.1", false},      // IPv4-compatible
		{"::8.8.8.8", false},        // IPv4-compatible, deprecated
		{"::ffff:0:8.8.8.8", false}, // IPv4-translated
		{"64:ff9b:1::1", false},     // local-use NAT64
		{"4000::1", false},          // unassigned

		// IPv4-mapped IPv6 forms.
		{"::ffff:127.0.0.1", false},
		{"::ffff:7f00:1", false},
		{"::ffff:10.1.2.3", false},
		{"::ffff:169.254.169.254", false},
		{"::ffff:100.64.0.1", false},
		{"::ffff:0.0.0.0", false},
		{"::ffff:255.255.255.255", false},
		{"::ffff:224.0.0.1", false},

		// NAT64 and 6to4 embedding blocked IPv4.
		{"64:ff9b::127.0.0.1", false},
		{"64:ff9b::a9fe:a9fe", false}, // 169.254.169.254
		{"64:ff9b::10.0.0.1", false},
		{"64:ff9b::192.168.0.1", false},
		{"2002:7f00:1::1", false},   // 127.0.0.1
		{"2002:a9fe:a9fe::", false}, // 169.254.169.254
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.addr)
			if got := ssrf.IsPublicIP(ip); got != tc.public {
				t.Errorf("IsPublicIP(%s) = %v, want %v", tc.addr, got, tc.public)
			}
		})
	}
	t.Run("zero Addr", func(t *testing.T) {
		if ssrf.IsPublicIP(netip.Addr{}) {
			t.Error("IsPublicIP(zero Addr) = true")
		}
	})
}

func mustGuard(t testing.TB, allow ...string) *ssrf.Guard {
	t.Helper()
	g, err := ssrf.New(allow)
	if err != nil {
		t.Fatalf("New(%q): %v", allow, err)
	}
	return g
}

func TestControl(t *testing.T) {
	tests := []struct {
		name    string
		allow   []string
		network string
		address string
		allowed bool
	}{
		{"public v4", nil, "tcp4", "8.8.8.8:443", true},
		{"public v6", nil, "tcp6", "[2606:4700:4700::1111]:443", true},
		{"loopback", nil, "tcp4", "127.0.0.1:8080", false},
		{"loopback v6", nil, "tcp6", "[::1]:8080", false},
		{"metadata", nil, "tcp4", "169.254.169.254:80", false},
		{"metadata v6", nil, "tcp6", "[fd00:ec2::254]:80", false},
		{"mapped loopback", nil, "tcp6", "[::ffff:127.0.0.1]:80", false},
		{"nat64 metadata", nil, "tcp6", "[64:ff9b::a9fe:a9fe]:80", false},
		{"private", nil, "tcp4", "192.168.0.10:443", false},
		{"link-local with zone", nil, "tcp6", "[fe80::1%eth0]:443", false},
		{"udp loopback", nil, "udp4", "127.0.0.1:53", false},
		{"unix socket", nil, "unix", "/var/run/docker.sock", false},
		{"no port", nil, "tcp4", "8.8.8.8", false},
		{"empty", nil, "tcp", "", false},

		{"allowlisted ip", []string{"127.0.0.1"}, "tcp4", "127.0.0.1:8080", true},
		{"allowlisted ip, other loopback", []string{"127.0.0.1"}, "tcp4", "127.0.0.2:8080", false},
		{"allowlisted ip, mapped form", []string{"127.0.0.1"}, "tcp6", "[::ffff:127.0.0.1]:8080", true},
		{"allowlisted v6 ip", []string{"::1"}, "tcp6", "[::1]:8080", true},
		{"allowlisted cidr", []string{"10.0.0.0/8"}, "tcp4", "10.20.30.40:443", true},
		{"allowlisted cidr, outside", []string{"10.0.0.0/8"}, "tcp4", "172.16.0.1:443", false},
		{"allowlisted mapped cidr", []string{"::ffff:192.168.0.0/112"}, "tcp4", "192.168.3.4:443", true},
		{"allowlisted v6 cidr", []string{"fd00::/8"}, "tcp6", "[fd00:ec2::254]:80", true},
		{"host name does not allow its ip", []string{"localhost"}, "tcp4", "127.0.0.1:8080", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mustGuard(t, tc.allow...).Control(tc.network, tc.address, nil)
			if tc.allowed {
				if err != nil {
					t.Fatalf("Control(%s, %s) = %v, want nil", tc.network, tc.address, err)
				}
				return
			}
			if !errors.Is(err, ssrf.ErrBlocked) {
				t.Fatalf("Control(%s, %s) = %v, want an error wrapping ErrBlocked", tc.network, tc.address, err)
			}
			if !strings.Contains(err.Error(), tc.address) {
				t.Errorf("error %q does not name the address %q", err, tc.address)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		allow   []string
		wantErr string // substring; "" means valid
	}{
		{"nil", nil, ""},
		{"empty entries", []string{"", " ", "\t"}, ""},
		{"make run default", strings.Split("127.0.0.1,localhost", ","), ""},
		{"spaces around entries", []string{" 127.0.0.1 ", " localhost"}, ""},
		{"v6 literal", []string{"::1"}, ""},
		{"bracketed v6", []string{"[::1]"}, ""},
		{"v6 with zone", []string{"fe80::1%eth0"}, ""},
		{"cidrs", []string{"10.0.0.0/8", "fd00::/8", "192.168.1.7/24"}, ""},
		{"mapped cidr", []string{"::ffff:10.0.0.0/104"}, ""},
		{"names", []string{"LocalHost", "sink.internal.", "my_host-1.example.com"}, ""},

		{"bad cidr", []string{"10.0.0.0/33"}, "not a CIDR"},
		{"cidr of a name", []string{"example.com/24"}, "not a CIDR"},
		{"short mapped cidr", []string{"::ffff:0:0/95"}, "shorter than /96"},
		{"url", []string{"http://localhost"}, "not a URL"},
		{"name with port", []string{"localhost:8080"}, "without a port"},
		{"ip with port", []string{"127.0.0.1:8080"}, "without a port"},
		{"bracketed with port", []string{"[::1]:8080"}, "not a host name"},
		{"wildcard", []string{"*.example.com"}, "wildcards"},
		{"empty label", []string{"a..b"}, "label"},
		{"long label", []string{strings.Repeat("a", 64) + ".com"}, "label"},
		{"long name", []string{strings.Repeat("a.", 127) + "com"}, "not a host name"},
		{"space inside", []string{"local host"}, "unexpected"},
		{"only a dot", []string{"."}, "not a host name"},
		{"second entry bad", []string{"localhost", "bad host"}, `"bad host"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ssrf.New(tc.allow)
			if tc.wantErr == "" {
				if err != nil || g == nil {
					t.Fatalf("New(%q) = %v, %v", tc.allow, g, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New(%q) succeeded, want error containing %q", tc.allow, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%q) error %q does not contain %q", tc.allow, err, tc.wantErr)
			}
		})
	}
}

func TestAllowsHost(t *testing.T) {
	g := mustGuard(t, "127.0.0.1", "LocalHost", "sink.internal.", "10.0.0.0/8", "::1", "fe80::1%eth0")
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"localhost", true},
		{"LOCALHOST", true},
		{"localhost.", true},
		{"sink.internal", true},
		{"sink.internal.", true},
		{"10.9.8.7", true},
		{"::1", true},
		{"[::1]", true},
		{"::ffff:127.0.0.1", true},
		{"fe80::1", true},
		{"fe80::1%lo", true},

		{"", false},
		{"127.0.0.2", false},
		{"localhost.localdomain", false},
		{"evil-localhost", false},
		{"sub.sink.internal", false},
		{"11.0.0.1", false},
		{"example.com", false},
		{"localhost:8080", false},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			if got := g.AllowsHost(tc.host); got != tc.want {
				t.Errorf("AllowsHost(%q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
	t.Run("empty guard", func(t *testing.T) {
		if mustGuard(t).AllowsHost("localhost") {
			t.Error("a guard with no allowlist allows localhost")
		}
	})
}

// loopbackServer starts an HTTP server on 127.0.0.1 and returns its port.
func loopbackServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// get fetches http://host:port/ through dial and returns the body.
func get(t *testing.T, dial func(ctx context.Context, network, addr string) (net.Conn, error), host, port string) (string, error) {
	t.Helper()
	client := &http.Client{
		Transport: &http.Transport{DialContext: dial, Proxy: nil, DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestDialerControl(t *testing.T) {
	port := loopbackServer(t)
	tests := []struct {
		name    string
		allow   []string
		allowed bool
	}{
		{"no allowlist", nil, false},
		{"ip allowlisted", []string{"127.0.0.1"}, true},
		{"cidr allowlisted", []string{"127.0.0.0/8"}, true},
		{"other ip allowlisted", []string{"127.0.0.2"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &net.Dialer{Control: mustGuard(t, tc.allow...).Control, Timeout: 5 * time.Second}
			body, err := get(t, d.DialContext, "127.0.0.1", port)
			if tc.allowed {
				if err != nil || body != "ok" {
					t.Fatalf("GET = %q, %v; want ok", body, err)
				}
				return
			}
			if !errors.Is(err, ssrf.ErrBlocked) {
				t.Fatalf("GET = %q, %v; want an error wrapping ErrBlocked", body, err)
			}
		})
	}
}

func TestDialContext(t *testing.T) {
	port := loopbackServer(t)
	tests := []struct {
		name    string
		allow   []string
		host    string
		allowed bool
	}{
		// localhost resolves to loopback: refused after DNS, the way a
		// rebinding name would be.
		{"name resolving to loopback", nil, "localhost", false},
		{"name allowlisted", []string{"localhost"}, "localhost", true},
		{"name allowlisted, upper case", []string{"localhost"}, "LOCALHOST", true},
		{"name allowlisted, ip not", []string{"localhost"}, "127.0.0.1", false},
		{"ip allowlisted", []string{"127.0.0.1"}, "127.0.0.1", true},
		{"ip allowlisted, name resolves to it", []string{"127.0.0.1"}, "localhost", true},
		{"ip literal refused", nil, "127.0.0.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dial := mustGuard(t, tc.allow...).DialContext(&net.Dialer{Timeout: 5 * time.Second})
			body, err := get(t, dial, tc.host, port)
			if tc.allowed {
				if err != nil || body != "ok" {
					t.Fatalf("GET = %q, %v; want ok", body, err)
				}
				return
			}
			if !errors.Is(err, ssrf.ErrBlocked) {
				t.Fatalf("GET = %q, %v; want an error wrapping ErrBlocked", body, err)
			}
		})
	}
}

func TestDialContextKeepsDialerControl(t *testing.T) {
	port := loopbackServer(t)
	var calls int
	mine := errors.New("refused by the dialer's own Control")
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, c syscall.RawConn) error {
		calls++
		return mine
	}}
	dial := mustGuard(t, "127.0.0.0/8").DialContext(d)
	// An allowlisted IP (by CIDR) goes the unguarded way, which keeps the
	// dialer as it is: its Control runs and refuses.
	if _, err := get(t, dial, "127.0.0.1", port); !errors.Is(err, mine) {
		t.Fatalf("GET = %v, want the dialer's own error", err)
	}
	// A name is guarded; the guard allows 127.0.0.1 by CIDR, then the
	// dialer's Control runs too.
	if _, err := get(t, dial, "localhost", port); !errors.Is(err, mine) {
		t.Fatalf("GET via name = %v, want the dialer's own error", err)
	}
	if calls < 2 {
		t.Errorf("dialer's Control ran %d times, want at least 2", calls)
	}
	if d.Control == nil || d.ControlContext != nil {
		t.Error("DialContext modified the caller's dialer")
	}
}
