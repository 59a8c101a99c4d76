// Package stack builds Hookline's services and runs them as separate
// processes against a real Kafka broker and Redis (and, for the delivery
// history, PostgreSQL), under a topic prefix and consumer groups of their
// own, so that a benchmark shares the cluster with other runs without
// seeing their records.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/hookline/hookline/pkg/kafka"
)

// Services are the binaries every stack runs, in start order.
var Services = []string{"ingest", "matcher", "sender", "retry"}

// History is the service a stack with Config.Postgres runs too: the
// delivery history's writer.
const History = "logs"

// Build compiles the services of the repository at repo into dir.
func Build(ctx context.Context, repo, dir string) error {
	for _, s := range append(slices.Clone(Services), History) {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, s), ".")
		cmd.Dir = filepath.Join(repo, "services", s)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %w\n%s", s, err, out)
		}
	}
	return nil
}

// Config says how to run the stack.
type Config struct {
	Bin        string // where Build put the binaries
	Brokers    string // KAFKA_BROKERS
	Redis      string // REDIS_ADDR
	Prefix     string // HOOKLINE_TOPIC_PREFIX, also names the consumer groups
	Partitions int
	Schedule   string            // HOOKLINE_RETRY_SCHEDULE
	CAFile     string            // HOOKLINE_SENDER_CA_FILE: the sink's certificate
	Keys       map[string]string // tenant -> API key
	LogDir     string            // one <instance>.log each
	Env        []string          // more variables, last wins
	// StaticMembers gives each service's first instance a group instance
	// id (HOOKLINE_INSTANCE_ID=<service>), so that a killed instance that
	// restarts gets its partitions back at once. Instances added later
	// stay dynamic, as autoscaled ones would.
	StaticMembers bool
	// Supervise starts an instance that exited by itself again a second
	// later, as Kubernetes would; Restarts counts these. Without it, such
	// an instance stays down and Exited names it.
	Supervise bool
	// Postgres, when set, is the delivery history's database
	// (HOOKLINE_POSTGRES_URL): the logs service runs too, and ingest
	// serves the history API.
	Postgres string
}

// services are the instances the stack starts: Services, and the logs
// service with a history.
func (c Config) services() []string {
	if c.Postgres == "" {
		return Services
	}
	return append(slices.Clone(Services), History)
}

// Stack is the running services.
type Stack struct {
	// API is ingest's base URL, http://127.0.0.1:<port>.
	API string

	cfg Config
	env []string

	mu        sync.Mutex
	instances map[string]instance      // by name: each service, and those Add ran
	procs     map[string]*proc         // the running instances, by name
	ops       map[string]string        // instance -> ops address, kept over restarts
	cpuDone   map[string]time.Duration // service -> CPU of its instances that exited
	restarts  map[string]int           // instance -> times Supervise restarted it
	stopping  bool                     // Stop was called: no more restarts
}

// instance is a process the stack runs: one of the Services, by default
// under the service's own name.
type instance struct {
	service string
	env     []string // added to the stack's
}

type proc struct {
	service string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	cpu     time.Duration // last reading, for when it is gone
}

// Start runs every service and waits until each is ready.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	s, err := newStack(cfg)
	if err != nil {
		return nil, err
	}
	for _, name := range cfg.services() {
		if err := s.Start(name); err != nil {
			s.Stop()
			return nil, err
		}
	}
	for _, name := range cfg.services() {
		if err := s.WaitReady(ctx, name, 90*time.Second); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// newStack prepares the services' settings and instances, running none.
func newStack(cfg Config) (*Stack, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(cfg.Keys))
	for tenant, k := range cfg.Keys {
		keys = append(keys, tenant+"="+k)
	}
	sort.Strings(keys)
	s := &Stack{
		API: "http://" + httpAddr, cfg: cfg, instances: map[string]instance{},
		procs: map[string]*proc{}, ops: map[string]string{}, cpuDone: map[string]time.Duration{},
		restarts: map[string]int{},
	}
	for _, name := range cfg.services() {
		in := instance{service: name}
		if cfg.StaticMembers {
			in.env = []string{"HOOKLINE_INSTANCE_ID=" + name}
		}
		s.instances[name] = in
	}
	s.env = append(os.Environ(),
		"KAFKA_BROKERS="+cfg.Brokers,
		"REDIS_ADDR="+cfg.Redis,
		"HOOKLINE_TOPIC_PREFIX="+cfg.Prefix,
		fmt.Sprintf("HOOKLINE_TOPIC_PARTITIONS=%d", cfg.Partitions),
		"HOOKLINE_API_KEYS="+strings.Join(keys, ","),
		"HOOKLINE_SECRET_KEY="+base64.StdEncoding.EncodeToString(key),
		"HOOKLINE_ALLOW_HOSTS=127.0.0.1",
		"HOOKLINE_SENDER_CA_FILE="+cfg.CAFile,
		"HOOKLINE_HTTP_ADDR="+httpAddr,
		"HOOKLINE_RETRY_SCHEDULE="+cfg.Schedule,
		"HOOKLINE_INGEST_GROUP="+cfg.Prefix+"ingest",
		"HOOKLINE_MATCHER_GROUP="+cfg.Prefix+"matcher",
		"HOOKLINE_SENDER_GROUP="+cfg.Prefix+"sender",
		"HOOKLINE_RETRY_GROUP="+cfg.Prefix+"retry",
		"HOOKLINE_LOGS_GROUP="+cfg.Prefix+"logs",
		"HOOKLINE_TRANSACTIONAL_ID="+cfg.Prefix+"matcher-1",
		// Delivered marks live in the shared Redis: keep them only as long
		// as a run lasts.
		"HOOKLINE_DELIVERED_TTL=30m",
		"HOOKLINE_LOG_LEVEL=warn",
	)
	if cfg.Postgres != "" {
		s.env = append(s.env, "HOOKLINE_POSTGRES_URL="+cfg.Postgres)
	}
	s.env = append(s.env, cfg.Env...)
	return s, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Add runs one more instance of service under a name of its own (e.g.
// sender-2), with env added to the stack's (e.g. its own transactional id).
func (s *Stack) Add(name, service string, env ...string) error {
	s.mu.Lock()
	if _, ok := s.instances[name]; ok {
		s.mu.Unlock()
		return fmt.Errorf("instance %s exists", name)
	}
	s.instances[name] = instance{service: service, env: env}
	s.mu.Unlock()
	return s.Start(name)
}

// Start runs an instance (again, after Kill or Term), appending to its log.
func (s *Stack) Start(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[name]; p != nil {
		return fmt.Errorf("%s is already running", name)
	}
	if s.stopping {
		return fmt.Errorf("start %s: the stack is stopping", name)
	}
	in, ok := s.instances[name]
	if !ok {
		return fmt.Errorf("no instance %s", name)
	}
	if s.ops[name] == "" {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		s.ops[name] = addr
	}
	logFile, err := os.OpenFile(filepath.Join(s.cfg.LogDir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.cfg.Bin, in.service))
	cmd.Env = append(append(append([]string{}, s.env...), in.env...), "HOOKLINE_OPS_ADDR="+s.ops[name])
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Should hookload die without cleaning up, its services follow.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{service: in.service, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
		if s.cfg.Supervise {
			s.restart(name, p)
		}
	}()
	s.procs[name] = p
	return nil
}

// restart starts instance name again after p, its process, exited, unless
// it was stopped on purpose (Kill, Term, Stop). Should the start fail,
// the instance stays down.
func (s *Stack) restart(name string, p *proc) {
	s.mu.Lock()
	if s.procs[name] != p || s.stopping {
		s.mu.Unlock()
		return
	}
	delete(s.procs, name)
	s.cpuDone[p.service] += p.cpu
	s.restarts[name]++
	s.mu.Unlock()
	time.Sleep(time.Second)
	_ = s.Start(name)
}

// Restarts is how many times Supervise restarted each instance that
// exited by itself.
func (s *Stack) Restarts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.restarts)
}

// WaitReady polls the service's /readyz until it answers 200.
func (s *Stack) WaitReady(ctx context.Context, name string, timeout time.Duration) error {
	s.mu.Lock()
	p, addr := s.procs[name], s.ops[name]
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s is not running", name)
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while starting:\n%s", name, s.LogTail(name, 2000))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s:\n%s", name, timeout, s.LogTail(name, 2000))
}

// Kill stops an instance with SIGKILL: no graceful shutdown at all.
func (s *Stack) Kill(name string) {
	s.end(name, syscall.SIGKILL)
}

// Term stops an instance with SIGTERM, as a scale-in does, and waits until
// it has exited: it finishes its work, commits and leaves its group.
func (s *Stack) Term(name string) {
	s.end(name, syscall.SIGTERM)
}

// end signals an instance and waits for it, killing it if it is still
// running 20 s after a SIGTERM.
func (s *Stack) end(name string, sig syscall.Signal) {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if p == nil {
		return
	}
	// A process's CPU time is gone once it is reaped: keep the last
	// reading, at most 100 ms short.
	sample := func() {
		if cpu, err := processCPU(p.cmd.Process.Pid); err == nil {
			p.cpu = cpu
		}
	}
	sample()
	_ = p.cmd.Process.Signal(sig)
	kill := time.After(20 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for exited := false; !exited; {
		select {
		case <-p.done:
			exited = true
		case <-kill:
			_ = p.cmd.Process.Kill()
		case <-tick.C:
			sample()
		}
	}
	s.mu.Lock()
	s.cpuDone[p.service] += p.cpu
	s.mu.Unlock()
}

// Stop ends every instance with SIGTERM, and SIGKILL for those still
// running 20 s later.
func (s *Stack) Stop() {
	s.mu.Lock()
	s.stopping = true
	names := make([]string, 0, len(s.procs))
	for name := range s.procs {
		names = append(names, name)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() { s.Term(name) })
	}
	wg.Wait()
}

// Exited names the instances that are no longer running although nobody
// stopped them.
func (s *Stack) Exited() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, p := range s.procs {
		select {
		case <-p.done:
			out = append(out, name)
		default:
		}
	}
	sort.Strings(out)
	return out
}

// CPU is the CPU time each service has used so far, over all its
// instances, plus "hookload" for this process.
func (s *Stack) CPU() map[string]time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Duration{}
	for service, d := range s.cpuDone {
		out[service] = d
	}
	for _, p := range s.procs {
		if d, err := processCPU(p.cmd.Process.Pid); err == nil {
			p.cpu = d
		}
		out[p.service] += p.cpu
	}
	if d, err := processCPU(os.Getpid()); err == nil {
		out["hookload"] = d
	}
	return out
}

// Names lists every instance the stack has run, sorted.
func (s *Stack) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.instances))
	for name := range s.instances {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// LogTail is the last n bytes of an instance's log.
func (s *Stack) LogTail(name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(s.cfg.LogDir, name+".log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// DeleteTopics removes the run's topics and consumer groups from the
// cluster.
func DeleteTopics(ctx context.Context, brokers, prefix string) error {
	cl, err := kafka.NewClient(kafka.Config{Brokers: strings.Split(brokers, ","), ClientID: "hookload"}, zerolog.Nop())
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return err
	}
	var mine []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, prefix) {
			mine = append(mine, t)
		}
	}
	var errs []error
	if len(mine) > 0 {
		if _, err := adm.DeleteTopics(ctx, mine...); err != nil {
			errs = append(errs, err)
		}
	}
	var groups []string
	for _, s := range append(slices.Clone(Services), History) {
		groups = append(groups, prefix+s)
	}
	if _, err := adm.DeleteGroups(ctx, groups...); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
