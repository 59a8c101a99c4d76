package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
	if e.APIURL != fromFile || e.APIKey != "key-from-file" || strings.Join(e.Kafka.Brokers, ",") != "127.0.0.1:29092" || e.Kafka.Topics.Prefix != "hookline." {
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

// TestSettingsAreTheServices: hookctl reads the services' Kafka, Redis and
// registry settings, with their readers, from the environment and the env
// file alike, so a TLS or SASL cluster the services use is one hookctl
// reaches; a wrong setting is an error naming it.
func TestSettingsAreTheServices(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hookline.env")
	if err := config.WriteEnvFile(file, "test", []config.Setting{
		{Name: "KAFKA_SASL_USERNAME", Value: "ops"}, {Name: "KAFKA_SASL_PASSWORD", Value: "from-file"},
		{Name: "REDIS_PASSWORD", Value: "redis-secret"},
	}); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"HOOKLINE_ENV_FILE": file, "KAFKA_BROKERS": "b1:9093,b2:9093", "KAFKA_TLS": "true", "KAFKA_SASL_MECHANISM": "scram-sha-512",
		"HOOKLINE_TOPIC_PREFIX": "prod.", "REDIS_ADDR": "redis:6380", "REDIS_DB": "3", "REDIS_TLS": "true",
	} {
		t.Setenv(k, v)
	}
	e, err := envFromOS()
	if err != nil {
		t.Fatal(err)
	}
	k := e.Kafka
	if strings.Join(k.Brokers, ",") != "b1:9093,b2:9093" || !k.TLS || k.SASLMechanism != "SCRAM-SHA-512" || k.SASLUser != "ops" ||
		k.SASLPassword != "from-file" || k.Topics.DeliveryLog != "prod.delivery-log" {
		t.Errorf("Kafka settings %+v", k)
	}
	if e.Redis.Addr != "redis:6380" || e.Redis.DB != 3 || e.Redis.Password != "redis-secret" || e.Redis.TLSConfig == nil {
		t.Errorf("Redis settings %+v", e.Redis)
	}
	t.Setenv("KAFKA_SASL_MECHANISM", "GSSAPI")
	if _, err := envFromOS(); err == nil || !strings.Contains(err.Error(), "KAFKA_SASL_MECHANISM") {
		t.Errorf("an unknown mechanism: %v", err)
	}
}

// TestKafkaOverTLS: with KAFKA_TLS set, hookctl's first bytes to the
// broker are a TLS handshake, not a bare Kafka request (it used to build
// its clients from KAFKA_BROKERS alone).
func TestKafkaOverTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	first := make(chan byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err == nil {
			first <- b[0]
		}
	}()
	t.Setenv("HOOKLINE_ENV_FILE", filepath.Join(t.TempDir(), "none.env"))
	t.Setenv("KAFKA_BROKERS", ln.Addr().String())
	t.Setenv("KAFKA_TLS", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = run(ctx, []string{"lag"}, io.Discard) }()
	select {
	case b := <-first:
		if b != 0x16 { // a TLS handshake record
			t.Fatalf("first byte %#x, want a TLS handshake (0x16)", b)
		}
	case <-ctx.Done():
		t.Fatal("hookctl never connected")
	}
}

// TestHelpListsTheSettings: -h, --help and help print the commands and
// every setting, and succeed.
func TestHelpListsTheSettings(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), []string{arg}, &out); err != nil {
				t.Fatal(err)
			}
			docs, err := config.ParseHelp(out.String())
			if err != nil {
				t.Fatalf("%v:\n%s", err, out.String())
			}
			want := []string{"HOOKLINE_API_URL", "HOOKLINE_ENV_FILE", "KAFKA_TLS", "KAFKA_SASL_MECHANISM", "REDIS_PASSWORD", "HOOKLINE_SCHEMA_REGISTRY_URL"}
			for _, w := range want {
				if !slices.ContainsFunc(docs, func(d config.Doc) bool { return d.Env == w }) {
					t.Errorf("%s is not listed:\n%s", w, out.String())
				}
			}
			if !strings.Contains(out.String(), "tail [-f]") {
				t.Errorf("the commands are not listed:\n%s", out.String())
			}
		})
	}
}
