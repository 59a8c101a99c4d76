package testinfra

import (
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/stack"
)

// StackConfig is a stack of services (pkg/stack) on the test's topics and
// consumer groups (kcfg, from Kafka) and its Redis, logging at info into a
// temporary folder: quiet per delivery, but a failed test's log tails
// (Stack) then show when each service joined its group, got its
// partitions and caught up with the subscriptions. Callers add the
// binaries and what the test is about.
func StackConfig(t testing.TB, kcfg kafka.Config) stack.Config {
	t.Helper()
	return stack.Config{
		Brokers: strings.Join(kcfg.Brokers, ","), Redis: Redis(t).Options().Addr, Prefix: kcfg.Topics.Prefix,
		Partitions: int(kcfg.Partitions), LogLevel: "info", LogDir: t.TempDir(), AllowHosts: "127.0.0.1",
	}
}

// Stack prepares the services of cfg (stack.New) for the test: when it
// ends, every instance must stop cleanly on SIGTERM, and the end of each
// one's log is shown if the test failed.
func Stack(t testing.TB, cfg stack.Config) *stack.Stack {
	t.Helper()
	st, err := stack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			for _, name := range st.Names() {
				if tail := st.LogTail(name, 4000); tail != "" {
					t.Logf("%s log:\n%s", name, tail)
				}
			}
		}
	})
	return st
}
