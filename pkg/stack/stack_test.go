package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeEnv makes the test binary act as a service (TestMain): it prints
// the settings under test, serves /readyz on HOOKLINE_OPS_ADDR, and
// behaves as FAKE_MODE says.
const fakeEnv = "HOOKLINE_STACK_TEST_FAKE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		fakeService()
		return
	}
	os.Exit(m.Run())
}

// fakeService modes: "" serves until SIGTERM; "exit" exits 1 after 200 ms;
// "stubborn" ignores SIGTERM; "failing" exits 3 on SIGTERM.
func fakeService() {
	// Listen for SIGTERM before saying it started: the tests signal it as
	// soon as they read that line.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Printf("service=%s instance=%s txn=%s retrytxn=%s group=%s ops=%s\n", os.Getenv("FAKE_SERVICE"),
		os.Getenv("HOOKLINE_INSTANCE_ID"), os.Getenv("HOOKLINE_TRANSACTIONAL_ID"), os.Getenv("HOOKLINE_RETRY_TRANSACTIONAL_ID"),
		os.Getenv("HOOKLINE_SENDER_GROUP"), os.Getenv("HOOKLINE_OPS_ADDR"))
	switch os.Getenv("FAKE_MODE") {
	case "exit":
		time.Sleep(200 * time.Millisecond)
		os.Exit(1)
	case "stubborn":
		for range term {
			fmt.Println("ignoring SIGTERM")
		}
	case "failing":
		<-term
		os.Exit(3)
	}
	srv := &http.Server{Addr: os.Getenv("HOOKLINE_OPS_ADDR"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			w.WriteHeader(http.StatusNotFound)
		}
	})}
	go func() { <-term; _ = srv.Close() }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("stopped")
}

// fakeConfig runs every service as the test binary in mode.
func fakeConfig(t *testing.T, mode string) Config {
	t.Helper()
	programs := map[string]string{}
	for _, s := range Services {
		programs[s.Name] = os.Args[0]
	}
	return Config{
		Programs: programs, LogDir: t.TempDir(), Prefix: "t.",
		Env:          []string{fakeEnv + "=1", "FAKE_MODE=" + mode},
		ReadyTimeout: 20 * time.Second, StopTimeout: 2 * time.Second,
	}
}

func newStack(t *testing.T, cfg Config) *Stack {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func logged(s *Stack, name, want string) func() bool {
	return func() bool { return strings.Contains(s.LogTail(name, 1000), want) }
}

func TestSettings(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    []string
		wantNot []string
	}{
		{
			name: "a prefix names the groups too",
			cfg:  Config{Prefix: "p.", Brokers: "k:1", Keys: map[string]string{"globex": "g", "acme": "a"}, HTTPAddr: "127.0.0.1:7000"},
			want: []string{
				"KAFKA_BROKERS=k:1", "HOOKLINE_TOPIC_PREFIX=p.", "HOOKLINE_INGEST_GROUP=p.ingest", "HOOKLINE_MATCHER_GROUP=p.matcher",
				"HOOKLINE_SENDER_GROUP=p.sender", "HOOKLINE_RETRY_GROUP=p.retry", "HOOKLINE_NOTIFY_GROUP=p.notify", "HOOKLINE_LOGS_GROUP=p.logs",
				"HOOKLINE_API_KEYS=acme=a,globex=g", "HOOKLINE_HTTP_ADDR=127.0.0.1:7000",
				"HOOKLINE_CONSOLE_URL=http://127.0.0.1:7000/console/",
			},
		},
		{
			name:    "without a prefix, the services' own names",
			cfg:     Config{Brokers: "k:1", Partitions: 3},
			want:    []string{"KAFKA_BROKERS=k:1", "HOOKLINE_TOPIC_PARTITIONS=3"},
			wantNot: []string{"HOOKLINE_TOPIC_PREFIX", "GROUP=", "HOOKLINE_API_KEYS", "REDIS_ADDR"},
		},
		{
			name: "no history: an empty database, not the environment's",
			cfg:  Config{Brokers: "k:1"},
			want: []string{"HOOKLINE_POSTGRES_URL="},
		},
		{
			name: "the history's database",
			cfg:  Config{Brokers: "k:1", Postgres: "postgres://h/db"},
			want: []string{"HOOKLINE_POSTGRES_URL=postgres://h/db"},
		},
		{
			name: "Env comes last, so it wins",
			cfg:  Config{LogLevel: "warn", Env: []string{"HOOKLINE_LOG_LEVEL=debug"}},
			want: []string{"HOOKLINE_LOG_LEVEL=warn", "HOOKLINE_LOG_LEVEL=debug"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.Settings()
			last := -1
			for _, w := range tc.want {
				i := slices.Index(got, w)
				if i < 0 {
					t.Fatalf("no %s in %v", w, got)
				}
				if strings.HasPrefix(w, "HOOKLINE_LOG_LEVEL") && i < last {
					t.Fatalf("%s comes before the field's setting: %v", w, got)
				}
				last = i
			}
			for _, w := range tc.wantNot {
				for _, kv := range got {
					if strings.Contains(kv, w) {
						t.Errorf("%s set: %v", kv, got)
					}
				}
			}
		})
	}
}

func TestNewFillsWhatEveryStackNeeds(t *testing.T) {
	s := newStack(t, Config{})
	cfg := s.Config()
	if len(cfg.SecretKey) != 44 || !strings.HasPrefix(cfg.HTTPAddr, "127.0.0.1:") || s.API != "http://"+cfg.HTTPAddr {
		t.Fatalf("secret key %q, HTTP address %q, API %q", cfg.SecretKey, cfg.HTTPAddr, s.API)
	}
	if want := []string{"ingest", "matcher", "sender", "retry", "notify"}; !slices.Equal(cfg.Services, want) {
		t.Errorf("services %v, want %v: all but logs, which needs a PostgreSQL", cfg.Services, want)
	}
	if got := newStack(t, Config{Postgres: "postgres://h/db"}).Config().Services; !slices.Equal(got, ServiceNames()) {
		t.Errorf("services with a PostgreSQL %v, want all", got)
	}
	if other := newStack(t, Config{}).Config(); other.SecretKey == cfg.SecretKey {
		t.Error("two stacks got the same secret key")
	}
	if _, err := New(Config{Services: []string{"ingest", "mailer"}}); err == nil || !strings.Contains(err.Error(), "mailer") {
		t.Errorf("an unknown service: %v", err)
	}
}

func TestStartWaitsForEveryServiceAndStops(t *testing.T) {
	cfg := fakeConfig(t, "")
	cfg.Services = []string{"ingest", "sender"}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range cfg.Services {
		resp, err := http.Get("http://" + s.OpsAddr(name) + "/readyz")
		if err != nil {
			t.Fatalf("%s is not ready after Start: %v", name, err)
		}
		resp.Body.Close()
	}
	if s.OpsAddr("matcher") != "" {
		t.Error("matcher was started though not asked for")
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a clean stop", logged(s, "sender", "stopped"))
}

func TestInstancesGetTheirOwnSettings(t *testing.T) {
	cfg := fakeConfig(t, "")
	cfg.StaticMembers = true
	s := newStack(t, cfg)
	for _, name := range []string{"sender", "matcher", "retry"} {
		if err := s.Start(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add("matcher-2", "matcher", "FAKE_SERVICE=second"); err != nil {
		t.Fatal(err)
	}
	// The first instance is a static member; an added one is dynamic.
	// Each transactional id is the instance's, under the prefix.
	waitFor(t, "the sender's settings", logged(s, "sender", "instance=t.sender txn= retrytxn= group=t.sender"))
	waitFor(t, "the matcher's settings", logged(s, "matcher", "instance=t.matcher txn=t.matcher "))
	waitFor(t, "the retry's settings", logged(s, "retry", "instance=t.retry txn= retrytxn=t.retry "))
	waitFor(t, "the added instance's settings", logged(s, "matcher-2", "service=second instance= txn=t.matcher-2 "))
	if err := s.Add("matcher-2", "matcher"); err == nil {
		t.Error("a second instance named matcher-2 was added")
	}
	if err := s.Add("x", "mailer"); err == nil {
		t.Error("an instance of an unknown service was added")
	}
	if got := s.Names(); !slices.Equal(got, []string{"ingest", "logs", "matcher", "matcher-2", "notify", "retry", "sender"}) {
		t.Errorf("Names() = %v", got)
	}
	cpu := s.CPU()
	if _, ok := cpu["matcher-2"]; ok {
		t.Errorf("CPU() has an entry per instance, want one per service: %v", cpu)
	}
	if _, ok := cpu["matcher"]; !ok {
		t.Errorf("CPU() has no entry for the matcher: %v", cpu)
	}

	if err := s.Term("matcher-2"); err != nil {
		t.Errorf("Term(matcher-2) = %v", err)
	}
	s.Kill("sender")
	if gone := s.Exited(); len(gone) != 0 {
		t.Errorf("Exited() = %v after stopping on purpose, want none", gone)
	}
	select {
	case x := <-s.Exits():
		t.Errorf("Exits() reported %s, stopped on purpose", x.Name)
	default:
	}
	if err := s.Start("matcher-2"); err != nil {
		t.Errorf("start matcher-2 again after Term: %v", err)
	}
}

func TestOpsBasePort(t *testing.T) {
	cfg := fakeConfig(t, "")
	cfg.OpsBasePort = 40100
	s := newStack(t, cfg)
	for _, name := range []string{"sender", "ingest"} {
		if err := s.Start(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Add("sender-2", "sender"); err != nil {
		t.Fatal(err)
	}
	if s.OpsAddr("ingest") != "127.0.0.1:40100" || s.OpsAddr("sender") != "127.0.0.1:40102" {
		t.Errorf("ops addresses ingest %s, sender %s, want the base port plus the place in Services", s.OpsAddr("ingest"), s.OpsAddr("sender"))
	}
	if a := s.OpsAddr("sender-2"); a == "" || a == s.OpsAddr("sender") {
		t.Errorf("an added instance's ops address is %q", a)
	}
}

// TestStopNamesWhatDidNotStopCleanly: an instance that has to be killed
// after SIGTERM, or exits with an error, is named by Stop; one that stops
// cleanly is not.
func TestStopNamesWhatDidNotStopCleanly(t *testing.T) {
	tests := []struct {
		mode, want string
	}{
		{"stubborn", "retry still ran 300ms after SIGTERM: killed"},
		{"failing", "retry: exit status 3"},
		{"", ""},
	}
	for _, tc := range tests {
		t.Run("mode "+tc.mode, func(t *testing.T) {
			cfg := fakeConfig(t, tc.mode)
			if tc.mode == "stubborn" {
				cfg.StopTimeout = 300 * time.Millisecond
			}
			s := newStack(t, cfg)
			for _, name := range []string{"retry", "ingest"} {
				if err := s.Start(name); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the fake to start", logged(s, name, "service="))
			}
			if err := s.Term("ingest"); (err == nil) != (tc.want == "") {
				t.Errorf("Term(ingest) = %v", err)
			}
			err := s.Stop()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Stop() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Stop() = %v, want %q", err, tc.want)
			}
			if tc.mode == "stubborn" && !strings.Contains(s.LogTail("retry", 1000), "ignoring SIGTERM") {
				t.Error("retry got no SIGTERM before it was killed")
			}
		})
	}
}

// TestStartAfterAnExit: an instance that exited by itself, unsupervised,
// is reported with how it ended and may be started again by hand.
func TestStartAfterAnExit(t *testing.T) {
	s := newStack(t, fakeConfig(t, "exit"))
	if err := s.Start("matcher"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		select {
		case x := <-s.Exits():
			if x.Name != "matcher" || x.Err == nil || !strings.Contains(x.Err.Error(), "exit status 1") {
				t.Fatalf("Exits() reported %+v", x)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("exit %d was not reported", i+1)
		}
		if i == 0 {
			if err := s.Start("matcher"); err != nil {
				t.Fatalf("start again: %v", err)
			}
		}
	}
}

func TestSuperviseRestartsWhatExitsByItself(t *testing.T) {
	tests := []struct {
		name      string
		supervise bool
	}{
		{"supervised", true},
		{"unsupervised", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fakeConfig(t, "exit")
			cfg.Supervise = tc.supervise
			s := newStack(t, cfg)
			if err := s.Start("retry"); err != nil {
				t.Fatal(err)
			}
			select {
			case x := <-s.Exits():
				if x.Name != "retry" {
					t.Errorf("Exits() reported %s", x.Name)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the exit was not reported")
			}
			if !tc.supervise {
				waitFor(t, "retry to be reported as exited", func() bool { return slices.Equal(s.Exited(), []string{"retry"}) })
				if n := s.Restarts()["retry"]; n != 0 {
					t.Errorf("restarted %d times without Supervise", n)
				}
				return
			}
			waitFor(t, "two restarts", func() bool { return s.Restarts()["retry"] >= 2 })
			if gone := s.Exited(); len(gone) != 0 {
				t.Errorf("Exited() = %v under Supervise, want none", gone)
			}
			// Stopped on purpose, it stays stopped.
			_ = s.Stop()
			n := s.Restarts()["retry"]
			time.Sleep(1500 * time.Millisecond) // longer than the restart delay
			if got := s.Restarts()["retry"]; got != n {
				t.Errorf("restarted after Stop: %d restarts, was %d", got, n)
			}
			if err := s.Start("retry"); err == nil {
				t.Error("Start after Stop succeeded")
			}
		})
	}
}
