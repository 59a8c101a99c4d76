package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/stack"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestRun: hookstack runs the services asked for against the real Kafka
// and Redis, writes where they listen once they are ready, and on SIGTERM
// (its context ending) stops them and deletes their topics.
func TestRun(t *testing.T) {
	redis := testinfra.Redis(t).Options().Addr
	kcfg := testinfra.Kafka(t)
	bin := builtBinaries(t)
	envFile := filepath.Join(t.TempDir(), "stack.env")
	prefix := kcfg.Topics.Prefix + "hs."
	for k, v := range map[string]string{
		"KAFKA_BROKERS": strings.Join(kcfg.Brokers, ","), "REDIS_ADDR": redis, "HOOKLINE_BIN_DIR": bin,
		"HOOKLINE_STACK_SERVICES": "ingest", "HOOKLINE_STACK_ENV_FILE": envFile, "HOOKLINE_API_KEYS": "acme=key-acme",
		"HOOKLINE_TOPIC_PREFIX": prefix, "HOOKLINE_STACK_LOG_DIR": t.TempDir(), "HOOKLINE_LOG_LEVEL": "warn",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var said testinfra.SyncBuffer // hookstack's own lines
	go func() { done <- run(ctx, nil, io.Discard, &said) }()

	var lookup func(string) (string, bool)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(envFile); err == nil {
			if lookup, err = config.EnvFile(envFile); err != nil {
				t.Fatal(err)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("hookstack ended before it was ready: %v\n%s", err, said.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no env file within 2 minutes")
		}
	}
	api, _ := lookup("HOOKLINE_API_URL")
	ops, _ := lookup("HOOKLINE_INGEST_OPS_ADDR")
	if p, _ := lookup("HOOKLINE_TOPIC_PREFIX"); p != prefix || ops == "" {
		t.Fatalf("env file: prefix %q, ingest ops %q", p, ops)
	}
	if _, ok := lookup("HOOKLINE_MATCHER_OPS_ADDR"); ok {
		t.Error("the matcher was started though not asked for")
	}
	req, _ := http.NewRequest(http.MethodGet, api+"/v1/subscriptions", nil)
	req.Header.Set("Authorization", "Bearer key-acme")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/subscriptions with the key given: %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hookstack: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("hookstack did not stop within a minute")
	}
	cl, err := kafka.NewClient(kcfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The brokers learn of a deletion a moment after the controller (more
	// than a moment on a loaded machine).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		topics, err := kadm.NewClient(cl).ListTopics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, name := range topics.Names() {
			if strings.HasPrefix(name, prefix) {
				left = append(left, name)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topics left after hookstack stopped: %v; it said:\n%s", left, said.String())
		}
	}
	if _, err := http.Get("http://" + ops + "/healthz"); err == nil {
		t.Error("ingest still answers after hookstack stopped")
	}
}

// TestDefaultServicesAreNamed: without HOOKLINE_STACK_SERVICES hookstack
// names every service (logs only with a database) before it starts them,
// so that it builds them and writes each one's ops address; an empty list
// left to the stack built nothing and wrote no address.
func TestDefaultServicesAreNamed(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no database", nil, "ingest,matcher,sender,retry,notify"},
		{"with the history", map[string]string{"HOOKLINE_POSTGRES_URL": "postgres://h/db"}, "ingest,matcher,sender,retry,notify,logs"},
		{"asked for", map[string]string{"HOOKLINE_STACK_SERVICES": "ingest,sender"}, "ingest,sender"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := config.New(nil, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			s := readRunSettings(r)
			if err := r.Err(io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.cfg.Services, ","); got != tc.want {
				t.Errorf("services %s, want %s", got, tc.want)
			}
		})
	}
}

func TestReadySettingsNameEveryDefaultService(t *testing.T) {
	// No services asked for: the stack runs its defaults, and the env
	// file must say where each listens (deploy/tests scrape them all).
	st, err := stack.New(stack.Config{Prefix: "x.", Postgres: "postgres://db"})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range readySettings(st) {
		names[s.Name] = true
	}
	for _, svc := range stack.ServiceNames() {
		if want := "HOOKLINE_" + strings.ToUpper(svc) + "_OPS_ADDR"; !names[want] {
			t.Errorf("no %s among %v", want, names)
		}
	}
	if !names["HOOKLINE_API_URL"] || !names["HOOKLINE_TOPIC_PREFIX"] {
		t.Errorf("settings %v lack the API URL or the prefix", names)
	}
}
