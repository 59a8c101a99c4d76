// Package infra runs a private Kafka cluster, a private Redis and a
// private PostgreSQL for the fault suite, through deploy/scripts/kafka.sh,
// redis.sh and postgres.sh, on free ports and in folders of their own: the suite may kill and restart them, and
// the shared servers other runs use are never touched. The Kafka jars come
// from the repository's cache, as for the shared broker.
package infra

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/pkg/freeport"
)

// stopWithin bounds stopping a server when the run ends, whatever the
// state of the run's context.
const stopWithin = time.Minute

// Kafka is a private cluster of 1 or 3 brokers (kafka.sh up N).
type Kafka struct {
	repo  string
	env   []string
	nodes int
	port  int // broker i listens on port+i-1
}

// StartKafka formats and starts a cluster of nodes brokers with its state
// under dir, and waits until every broker serves.
func StartKafka(ctx context.Context, repo, dir string, nodes int) (*Kafka, error) {
	// Brokers on base..base+n-1, controllers on base+n..base+2n-1.
	base, err := freeport.Ports(2 * nodes)
	if err != nil {
		return nil, err
	}
	k := &Kafka{repo: repo, nodes: nodes, port: base, env: []string{
		"KAFKA_STATE=" + dir,
		"KAFKA_PORT=" + strconv.Itoa(base),
		"KAFKA_CONTROLLER_PORT=" + strconv.Itoa(base+nodes),
	}}
	if err := k.script(ctx, "up", strconv.Itoa(nodes)); err != nil {
		k.Stop()
		return nil, err
	}
	return k, nil
}

// Brokers is the cluster's bootstrap list, for KAFKA_BROKERS.
func (k *Kafka) Brokers() string {
	addrs := make([]string, k.nodes)
	for i := range addrs {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(k.port+i)
	}
	return strings.Join(addrs, ",")
}

// Kill stops broker node (1..N) with SIGKILL.
func (k *Kafka) Kill(ctx context.Context, node int) error {
	return k.script(ctx, "kill", strconv.Itoa(node))
}

// Start starts broker node again and waits until it serves.
func (k *Kafka) Start(ctx context.Context, node int) error {
	return k.script(ctx, "start", strconv.Itoa(node))
}

// Stop stops every broker; its errors are only worth a line on stderr.
func (k *Kafka) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), stopWithin)
	defer cancel()
	if err := k.script(ctx, "down"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

func (k *Kafka) script(ctx context.Context, args ...string) error {
	return run(ctx, filepath.Join(k.repo, "deploy", "scripts", "kafka.sh"), k.env, args...)
}

// Redis is a private Redis without persistence (redis.sh).
type Redis struct {
	repo string
	env  []string
	port int
}

// StartRedis starts a Redis on a free port with its files under dir.
func StartRedis(ctx context.Context, repo, dir string) (*Redis, error) {
	port, err := freeport.Ports(1)
	if err != nil {
		return nil, err
	}
	r := &Redis{repo: repo, port: port, env: []string{"REDIS_PORT=" + strconv.Itoa(port), "HOOKLINE_CACHE=" + dir}}
	if err := r.script(ctx, "up"); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// Addr is the server's address, for REDIS_ADDR.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Restart stops the server and starts it empty.
func (r *Redis) Restart(ctx context.Context) error { return r.script(ctx, "restart") }

// Stop stops the server; its errors are only worth a line on stderr.
func (r *Redis) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), stopWithin)
	defer cancel()
	if err := r.script(ctx, "down"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

func (r *Redis) script(ctx context.Context, args ...string) error {
	return run(ctx, filepath.Join(r.repo, "deploy", "scripts", "redis.sh"), r.env, args...)
}

// Postgres is a private PostgreSQL (postgres.sh), the delivery history's,
// with its cluster under dir (which, as root, the server's user must be
// able to reach: postgres.sh says so when it cannot). Stop wipes it.
type Postgres struct {
	repo string
	env  []string
	port int
}

// StartPostgres creates and starts a PostgreSQL on a free port.
func StartPostgres(ctx context.Context, repo, dir string) (*Postgres, error) {
	port, err := freeport.Ports(1)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &Postgres{repo: repo, port: port, env: []string{"POSTGRES_PORT=" + strconv.Itoa(port), "HOOKLINE_CACHE=" + dir}}
	if err := p.script(ctx, "up"); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// URL is the hookline database's, for HOOKLINE_POSTGRES_URL.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/hookline?sslmode=disable", p.port)
}

// Down stops the server (fast shutdown: open transactions rolled back),
// keeping its data.
func (p *Postgres) Down(ctx context.Context) error { return p.script(ctx, "down") }

// Up starts it again and waits until it answers.
func (p *Postgres) Up(ctx context.Context) error { return p.script(ctx, "up") }

// Stop stops the server and wipes its data; its errors are only worth a
// line on stderr.
func (p *Postgres) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), stopWithin)
	defer cancel()
	if err := p.script(ctx, "reset"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

func (p *Postgres) script(ctx context.Context, args ...string) error {
	return run(ctx, filepath.Join(p.repo, "deploy", "scripts", "postgres.sh"), p.env, args...)
}

// run runs a deploy script with env added, and returns its output with
// its error.
func run(ctx context.Context, script string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Env = append(os.Environ(), env...)
	// A JVM the script started may hold its output open after it was killed.
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(script), strings.Join(args, " "), err, out)
	}
	return nil
}
