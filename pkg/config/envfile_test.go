package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnvFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookline.env")
	in := []Setting{{"KAFKA_BROKERS", "127.0.0.1:29092"}, {"HOOKLINE_API_KEY", "it's a key"}, {"EMPTY", ""}}
	if err := WriteEnvFile(path, "written by a test\nsecond line", in); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v: want 0600 (it may hold a key)", fi.Mode(), err)
	}
	lookup, err := EnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range in {
		if v, ok := lookup(s.Name); !ok || v != s.Value {
			t.Errorf("%s = %q, %v; want %q", s.Name, v, ok, s.Value)
		}
	}
	missing, err := EnvFile(filepath.Join(t.TempDir(), "none"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := missing("KAFKA_BROKERS"); ok {
		t.Error("a missing file has settings")
	}
	if err := os.WriteFile(path, []byte("A=\"x y\"\nexport B=1\nnot a setting\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnvFile(path); err == nil {
		t.Error("a line without = was accepted")
	}
}

func TestChain(t *testing.T) {
	first := func(k string) (string, bool) { return map[string]string{"A": "1", "E": ""}[k], k == "A" || k == "E" }
	second := func(k string) (string, bool) { return map[string]string{"A": "2", "B": "2", "E": "2"}[k], k != "C" }
	l := Chain(first, second)
	for k, want := range map[string]string{"A": "1", "B": "2", "E": "2", "C": ""} {
		if v, _ := l(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
}
