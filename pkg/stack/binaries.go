// Package stack runs Hookline's services as processes, the one way every
// tool and test does: which binaries there are and where their code is
// (Build), the settings that make the services one installation
// (Config), their ops ports and readiness, their logs, and stopping them.
// devstack (`make run`), hookstack (the deploy tests), hookload (the
// benchmarks and the fault suite) and the end-to-end tests all start the
// services through it; adding a service is a line in Services.
package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// Service is one of Hookline's services as a stack runs it.
type Service struct {
	// Name is its binary's name and its folder under services/.
	Name string
	// GroupEnv is the setting that names its consumer group. A stack
	// with a topic prefix sets it to <prefix><Name>, so that stacks
	// sharing a cluster never share a group.
	GroupEnv string
	// TransactionEnv, when the service produces in Kafka transactions,
	// is the setting of its transactional id, which must be unique per
	// running instance: a stack with a topic prefix sets it to
	// <prefix><instance name>.
	TransactionEnv string
}

// Services are Hookline's services in start order. Each one's ops port
// under devstack is 9101 plus its place in this list, as its own default.
var Services = []Service{
	{Name: "ingest", GroupEnv: "HOOKLINE_INGEST_GROUP"},
	{Name: "matcher", GroupEnv: "HOOKLINE_MATCHER_GROUP", TransactionEnv: "HOOKLINE_TRANSACTIONAL_ID"},
	{Name: "sender", GroupEnv: "HOOKLINE_SENDER_GROUP"},
	{Name: "retry", GroupEnv: "HOOKLINE_RETRY_GROUP", TransactionEnv: "HOOKLINE_RETRY_TRANSACTIONAL_ID"},
	{Name: "notify", GroupEnv: "HOOKLINE_NOTIFY_GROUP"},
	// logs writes the delivery history; it runs when the stack has a
	// PostgreSQL (Config.Postgres).
	{Name: "logs", GroupEnv: "HOOKLINE_LOGS_GROUP"},
}

// Binary is a program of the repository.
type Binary struct {
	Name string // the file go build writes
	Dir  string // its main package, relative to the repository root
}

// Binaries are every program Hookline ships or uses: the services, then
// the tools. Each answers -h with the settings it reads.
var Binaries = append(serviceBinaries(),
	Binary{"hookctl", "cmd/hookctl"},
	Binary{"devstack", "cmd/devstack"},
	Binary{"hookstack", "cmd/hookstack"},
	Binary{"hookload", "loadtest/cmd/hookload"},
)

func serviceBinaries() []Binary {
	out := make([]Binary, len(Services))
	for i, s := range Services {
		out[i] = Binary{s.Name, "services/" + s.Name}
	}
	return out
}

// ServiceNames are the names of Services, in order.
func ServiceNames() []string {
	out := make([]string, len(Services))
	for i, s := range Services {
		out[i] = s.Name
	}
	return out
}

// lookup finds a service by name, and its place in Services.
func lookup(name string) (Service, int, error) {
	i := slices.IndexFunc(Services, func(s Service) bool { return s.Name == name })
	if i < 0 {
		return Service{}, -1, fmt.Errorf("no service %q (there are %v)", name, ServiceNames())
	}
	return Services[i], i, nil
}

// Build compiles the named binaries (every one of Binaries when none is
// named) of the repository at repo into dir, in one go build.
func Build(ctx context.Context, repo, dir string, names ...string) error {
	if len(names) == 0 {
		for _, b := range Binaries {
			names = append(names, b.Name)
		}
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, name := range names {
		i := slices.IndexFunc(Binaries, func(b Binary) bool { return b.Name == name })
		if i < 0 {
			return fmt.Errorf("no binary %q", name)
		}
		args = append(args, "./"+Binaries[i].Dir)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", names, err, out)
	}
	return nil
}

// FindRepo is the repository root: the nearest folder at or above dir
// that holds go.work.
func FindRepo(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run from the repository")
		}
		dir = parent
	}
}
