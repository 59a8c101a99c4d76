package config

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedence(t *testing.T) {
	r := New([]string{"-http-addr=:9000", "-kafka-brokers", "b:1"},
		env(map[string]string{"HOOKLINE_HTTP_ADDR": ":8000", "REDIS_ADDR": "r:1"}))
	tests := []struct{ name, got, want string }{
		{"flag beats env", r.String("HOOKLINE_HTTP_ADDR", ":8080", ""), ":9000"},
		{"flag with separate value", r.String("KAFKA_BROKERS", "", ""), "b:1"},
		{"env beats default", r.String("REDIS_ADDR", "", ""), "r:1"},
		{"default", r.String("HOOKLINE_OPS_ADDR", ":9090", ""), ":9090"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	if err := r.Err(io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsAreCollected(t *testing.T) {
	r := New([]string{"-bogus=1"}, env(map[string]string{"N": "x", "D": "soon", "B": "maybe"}))
	r.Int("N", 1, "")
	r.Duration("D", time.Second, "")
	r.Bool("B", false, "")
	r.Required("MISSING", "needed")
	err := r.Err(io.Discard)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"N=", "D=", "B=", "MISSING is required", "unknown flag -bogus"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestTypedValues(t *testing.T) {
	r := New(nil, env(map[string]string{"N": "42", "D": "250ms", "B": "true", "L": " a, ,b "}))
	if got := r.Int("N", 0, ""); got != 42 {
		t.Errorf("Int = %d", got)
	}
	if got := r.Duration("D", 0, ""); got != 250*time.Millisecond {
		t.Errorf("Duration = %v", got)
	}
	if got := r.Bool("B", false, ""); !got {
		t.Errorf("Bool = %v", got)
	}
	if got := r.List("L", "", ""); strings.Join(got, "|") != "a|b" {
		t.Errorf("List = %q", got)
	}
}

func TestHelp(t *testing.T) {
	r := New([]string{"-h"}, env(nil))
	r.String("HOOKLINE_HTTP_ADDR", ":8080", "where the API listens")
	var b strings.Builder
	if err := r.Err(&b); !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(b.String(), "-http-addr") || !strings.Contains(b.String(), "where the API listens") {
		t.Fatalf("usage = %q", b.String())
	}
}

// TestHelpReadsBack: what Usage writes, ParseHelp reads back, with and
// without flags, after a command's own text; required settings are marked
// as such, and a default made from the host name shows <hostname>.
func TestHelpReadsBack(t *testing.T) {
	host, _ := os.Hostname()
	if host == "" {
		t.Fatal("no host name")
	}
	read := func(r *Reader) {
		r.String("HOOKLINE_HTTP_ADDR", "127.0.0.1:8080", "where the API listens")
		r.Required("HOOKLINE_SECRET_KEY", "base64 of 32 bytes")
		r.String("HOOKLINE_TRANSACTIONAL_ID", "hookline-matcher-"+host, "stable per instance")
		r.List("HOOKLINE_ALLOW_HOSTS", "", `hosts, "quoted" too`)
		r.Duration("HOOKLINE_WINDOW", 120*time.Hour, "a day count")
		r.EnvOnly("OTEL_EXPORTER_OTLP_ENDPOINT", "", "the SDK's")
	}
	want := []Doc{
		{Env: "HOOKLINE_ALLOW_HOSTS", Flag: "allow-hosts", Doc: `hosts, "quoted" too`},
		{Env: "HOOKLINE_HTTP_ADDR", Flag: "http-addr", Default: "127.0.0.1:8080", Doc: "where the API listens"},
		{Env: "HOOKLINE_SECRET_KEY", Flag: "secret-key", Required: true, Doc: "base64 of 32 bytes"},
		{Env: "HOOKLINE_TRANSACTIONAL_ID", Flag: "transactional-id", Default: "hookline-matcher-<hostname>", Doc: "stable per instance"},
		{Env: "HOOKLINE_WINDOW", Flag: "window", Default: "120h", Doc: "a day count"},
		{Env: "OTEL_EXPORTER_OTLP_ENDPOINT", Doc: "the SDK's"},
	}
	tests := []struct {
		name  string
		r     *Reader
		flags bool
	}{
		{"flags", New([]string{"-h"}, env(nil)), true},
		{"environment only", FromEnv(env(nil)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			read(tc.r)
			var b strings.Builder
			b.WriteString("Usage: some command\n\nCommands:\n  one   does one thing\n\n")
			tc.r.Usage(&b)
			b.WriteString("\nMore text after the list.\n")
			got, err := ParseHelp(b.String())
			if err != nil {
				t.Fatalf("%v in\n%s", err, b.String())
			}
			for i := range want {
				w := want[i]
				if !tc.flags {
					w.Flag = ""
				}
				if i >= len(got) {
					break
				}
				if i >= len(got) || got[i] != w {
					t.Fatalf("setting %d: got %+v, want %+v\n%s", i, got, w, b.String())
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d settings read back, want %d", len(got), len(want))
			}
		})
	}
	if _, err := ParseHelp("Usage: no settings here\n"); err == nil {
		t.Error("ParseHelp accepted a help without settings")
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 10 * time.Minute: "10m", 90 * time.Minute: "1h30m", 10 * time.Second: "10s",
		time.Hour + time.Second: "1h0m1s", 250 * time.Millisecond: "250ms", 0: "0s",
	} {
		got := shortDuration(d)
		if back, err := time.ParseDuration(got); got != want || err != nil || back != d {
			t.Errorf("shortDuration(%v) = %q (%v), want %q", d, got, err, want)
		}
	}
}

// TestEnvOnly: a setting a library reads from the environment is listed
// but takes no flag.
func TestEnvOnly(t *testing.T) {
	r := New([]string{"-otel-exporter-otlp-endpoint=x"}, env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}))
	if got := r.EnvOnly("OTEL_EXPORTER_OTLP_ENDPOINT", "", "where traces go"); got != "http://collector:4318" {
		t.Errorf("EnvOnly = %q", got)
	}
	if err := r.Err(io.Discard); err == nil || !strings.Contains(err.Error(), "unknown flag -otel-exporter-otlp-endpoint") {
		t.Errorf("a flag for an environment-only setting: %v", err)
	}
}

// TestCheck: -check validates the settings and says so, or reports the
// problems as without it.
func TestCheck(t *testing.T) {
	r := New([]string{"-check", "-http-addr", ":1"}, env(map[string]string{"N": "1"}))
	r.String("HOOKLINE_HTTP_ADDR", "", "")
	r.Int("N", 0, "")
	if err := r.Err(io.Discard); !errors.Is(err, ErrChecked) {
		t.Errorf("valid settings with -check: %v", err)
	}
	r = New([]string{"--check"}, env(map[string]string{"N": "x"}))
	r.Int("N", 0, "")
	r.Required("K", "")
	if err := r.Err(io.Discard); err == nil || errors.Is(err, ErrChecked) || !strings.Contains(err.Error(), "K is required") {
		t.Errorf("invalid settings with -check: %v", err)
	}
}
