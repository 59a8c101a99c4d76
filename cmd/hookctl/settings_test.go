package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/config"
)

// TestSettingsFromTheEnvFile: hookctl reads what `make run` wrote to
// .hookline/hookline.env when run from the repository, and the
// environment still wins over the file.
func TestSettingsFromTheEnvFile(t *testing.T) {
	calls := map[string]string{} // API key seen per server
	server := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls[name] = r.Header.Get("Authorization")
			_, _ = io.WriteString(w, `{"data":[]}`)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	fromFile, fromEnv := server("file"), server("env")
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".hookline"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := config.WriteEnvFile(filepath.Join(repo, DefaultEnvFile), "test", []config.Setting{
		{Name: "HOOKLINE_API_URL", Value: fromFile}, {Name: "HOOKLINE_API_KEY", Value: "key-from-file"},
		{Name: "KAFKA_BROKERS", Value: "127.0.0.1:29092"},
	}); err != nil {
		t.Fatal(err)
	}
	t.Chdir(repo)
	for _, k := range []string{"HOOKLINE_API_URL", "HOOKLINE_API_KEY", "KAFKA_BROKERS", "HOOKLINE_ENV_FILE"} {
		t.Setenv(k, "")
	}
	e, err := envFromOS()
	if err != nil {
		t.Fatal(err)
	}
	if e.APIURL != fromFile || e.APIKey != "key-from-file" || strings.Join(e.Brokers, ",") != "127.0.0.1:29092" || e.Prefix != "hookline." {
		t.Fatalf("settings %+v, want the file's and the defaults", e)
	}
	if err := run(context.Background(), []string{"subs", "list"}, io.Discard); err != nil || calls["file"] != "Bearer key-from-file" {
		t.Fatalf("subs list: %v, calls %v", err, calls)
	}
	t.Setenv("HOOKLINE_API_URL", fromEnv)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"subs", "list"}, &out); err != nil || calls["env"] != "Bearer key-from-file" {
		t.Fatalf("the environment's URL should win: %v, calls %v", err, calls)
	}
}
