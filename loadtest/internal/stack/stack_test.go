package stack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeBin writes a stand-in for every service: it prints the settings the
// stack gives each instance, then runs script.
func fakeBin(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	body := "#!/bin/sh\necho \"instance=${HOOKLINE_INSTANCE_ID:-} txn=${HOOKLINE_TRANSACTIONAL_ID:-}\"\n" + script + "\n"
	for _, s := range Services {
		if err := os.WriteFile(filepath.Join(dir, s), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newTestStack(t *testing.T, cfg Config) *Stack {
	t.Helper()
	cfg.LogDir, cfg.Prefix = t.TempDir(), "t."
	s, err := newStack(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
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

func TestInstancesGetTheirOwnSettings(t *testing.T) {
	s := newTestStack(t, Config{Bin: fakeBin(t, "exec sleep 60"), StaticMembers: true})
	if err := s.Start("sender"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("sender-2", "sender", "HOOKLINE_TRANSACTIONAL_ID=t.sender-2"); err != nil {
		t.Fatal(err)
	}
	// The first instance is a static member; an added one is dynamic
	// unless its own settings say otherwise, and they win over the stack's.
	waitFor(t, "the first instance's settings", logged(s, "sender", "instance=sender txn=t.matcher-1"))
	waitFor(t, "the added instance's settings", logged(s, "sender-2", "instance= txn=t.sender-2"))
	if err := s.Add("sender-2", "sender"); err == nil {
		t.Error("a second instance named sender-2 was added")
	}
	if got := s.Names(); !slices.Equal(got, []string{"ingest", "matcher", "retry", "sender", "sender-2"}) {
		t.Errorf("Names() = %v", got)
	}
	cpu := s.CPU()
	if _, ok := cpu["sender-2"]; ok {
		t.Errorf("CPU() has an entry per instance, want one per service: %v", cpu)
	}
	if _, ok := cpu["sender"]; !ok {
		t.Errorf("CPU() has no entry for sender: %v", cpu)
	}

	s.Term("sender-2")
	s.Kill("sender")
	if gone := s.Exited(); len(gone) != 0 {
		t.Errorf("Exited() = %v after stopping on purpose, want none", gone)
	}
	if err := s.Start("sender-2"); err != nil {
		t.Errorf("start sender-2 again after Term: %v", err)
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
			s := newTestStack(t, Config{Bin: fakeBin(t, "sleep 0.2; exit 1"), Supervise: tc.supervise})
			if err := s.Start("retry"); err != nil {
				t.Fatal(err)
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
			s.Stop()
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
