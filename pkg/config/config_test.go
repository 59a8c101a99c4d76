package config

import (
	"errors"
	"io"
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
