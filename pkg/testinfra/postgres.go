package testinfra

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/stack"
)

// PrivatePostgres is a PostgreSQL server of one test's own, started with
// deploy/scripts/postgres.sh on a free port, for a test that stops and
// restarts the database (the shared one must stay up for every other
// test). Its data is wiped when the test ends.
type PrivatePostgres struct {
	URL    string // the hookline database
	script string
	env    []string
}

// StartPostgres starts a private PostgreSQL. It needs what the shared one
// needs (HOOKLINE_POSTGRES_URL set, as `make test` does, says PostgreSQL
// is installed), and takes a few seconds to create its cluster.
func StartPostgres(t testing.TB) *PrivatePostgres {
	t.Helper()
	need(t, "HOOKLINE_POSTGRES_URL")
	root, err := stack.FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	p := &PrivatePostgres{script: filepath.Join(root, "deploy", "scripts", "postgres.sh"), env: append(os.Environ(), "POSTGRES_PORT="+port)}
	t.Cleanup(func() {
		if out, err := p.run("reset"); err != nil {
			t.Errorf("postgres.sh reset: %v\n%s", err, out)
		}
	})
	p.Start(t)
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%s/hookline?sslmode=disable", port)
	return p
}

// Stop stops the server (postgres.sh down: fast shutdown, data kept).
func (p *PrivatePostgres) Stop(t testing.TB) {
	t.Helper()
	if out, err := p.run("down"); err != nil {
		t.Fatalf("postgres.sh down: %v\n%s", err, out)
	}
}

// Start starts it (again), waiting until it answers.
func (p *PrivatePostgres) Start(t testing.TB) {
	t.Helper()
	if out, err := p.run("up"); err != nil {
		t.Fatalf("postgres.sh up: %v\n%s", err, out)
	}
}

func (p *PrivatePostgres) run(verb string) (string, error) {
	cmd := exec.Command(p.script, verb)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
