package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/hookline/hookline/pkg/kafka"
)

// Stack is a set of running service instances.
type Stack struct {
	// API is ingest's base URL, http://<Config.HTTPAddr>.
	API string

	cfg Config
	env []string // the process environment, then cfg.Settings()

	mu        sync.Mutex
	instances map[string]instance      // by name: each service, and those Add ran
	procs     map[string]*proc         // the running instances, by name
	ops       map[string]string        // instance -> ops address, kept over restarts
	cpuDone   map[string]time.Duration // service -> CPU of its instances that exited
	restarts  map[string]int           // instance -> times Supervise restarted it
	stopping  bool                     // Stop was called: no more restarts
	exits     chan Exit                // instances that exited by themselves
}

// Exit is an instance whose process ended although nobody stopped it.
type Exit struct {
	Name string
	Err  error // as exec.Cmd.Wait says: nil for exit status 0
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
	err     error         // cmd.Wait's, once done is closed
	ended   bool          // stopped on purpose (Kill, Term, Stop)
	cpu     time.Duration // last reading, for when it is gone
}

// New prepares a stack, running nothing yet: Start runs an instance.
func New(cfg Config) (*Stack, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Stack{
		API: cfg.API(), cfg: cfg, instances: map[string]instance{},
		procs: map[string]*proc{}, ops: map[string]string{}, cpuDone: map[string]time.Duration{},
		restarts: map[string]int{}, exits: make(chan Exit, 64),
	}
	for _, name := range ServiceNames() {
		s.instances[name] = instance{service: name}
	}
	base := cfg.BaseEnv
	if base == nil {
		base = os.Environ()
	}
	s.env = append(append([]string{}, base...), cfg.Settings()...)
	return s, nil
}

// Start runs every service of cfg.Services and waits until each is ready
// (its /readyz answers 200); on any failure it stops what it started.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.StartAll(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// StartAll runs every service of Config.Services and waits until each is
// ready, for at most ReadyTimeout each.
func (s *Stack) StartAll(ctx context.Context) error {
	for _, name := range s.cfg.Services {
		if err := s.Start(name); err != nil {
			return err
		}
	}
	for _, name := range s.cfg.Services {
		if err := s.WaitReady(ctx, name, s.cfg.ReadyTimeout); err != nil {
			return err
		}
	}
	return nil
}

// Config is the stack's configuration, with the defaults New filled in
// (the secret key, ingest's address).
func (s *Stack) Config() Config { return s.cfg }

// Add runs one more instance of service under a name of its own (e.g.
// sender-2), with env added to the stack's.
func (s *Stack) Add(name, service string, env ...string) error {
	if _, _, err := lookup(service); err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.instances[name]; ok {
		s.mu.Unlock()
		return fmt.Errorf("instance %s exists", name)
	}
	s.instances[name] = instance{service: service, env: env}
	s.mu.Unlock()
	return s.Start(name)
}

// Start runs an instance (again, after Kill, Term or its own exit),
// appending to its log.
func (s *Stack) Start(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[name]; p != nil {
		select {
		case <-p.done: // it exited by itself, unsupervised
			delete(s.procs, name)
			s.cpuDone[p.service] += p.cpu
		default:
			return fmt.Errorf("%s is already running", name)
		}
	}
	if s.stopping {
		return fmt.Errorf("start %s: the stack is stopping", name)
	}
	in, ok := s.instances[name]
	if !ok {
		return fmt.Errorf("no instance %s", name)
	}
	if s.ops[name] == "" {
		addr, err := s.cfg.opsAddr(name, in.service)
		if err != nil {
			return err
		}
		s.ops[name] = addr
	}
	out, closeOut, err := s.output(name)
	if err != nil {
		return err
	}
	program := s.cfg.Programs[in.service]
	if program == "" {
		program = filepath.Join(s.cfg.Bin, in.service)
	}
	cmd := exec.Command(program)
	cmd.Env = append(append(append([]string{}, s.env...), s.cfg.Instance(name, in.service, s.ops[name])...), in.env...)
	cmd.Stdout, cmd.Stderr = out, out
	followParent(cmd)
	if err := cmd.Start(); err != nil {
		closeOut()
		return fmt.Errorf("start %s (%s): %w", name, program, err)
	}
	p := &proc{service: in.service, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		closeOut()
		close(p.done)
		s.exited(name, p)
	}()
	s.procs[name] = p
	return nil
}

// output is where an instance's stdout and stderr go.
func (s *Stack) output(name string) (io.Writer, func(), error) {
	if s.cfg.LogDir == "" {
		if s.cfg.Output == nil {
			return io.Discard, func() {}, nil
		}
		return s.cfg.Output, func() {}, nil
	}
	f, err := os.OpenFile(s.logFile(name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

func (s *Stack) logFile(name string) string { return filepath.Join(s.cfg.LogDir, name+".log") }

// exited handles an instance's process ending: unless it was stopped on
// purpose, it is reported on Exits and, under Supervise, started again a
// second later (should that fail, the instance stays down).
func (s *Stack) exited(name string, p *proc) {
	s.mu.Lock()
	if s.procs[name] != p || p.ended || s.stopping {
		s.mu.Unlock()
		return
	}
	select {
	case s.exits <- Exit{Name: name, Err: p.err}:
	default: // nobody is listening
	}
	if !s.cfg.Supervise {
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

// Exits reports each instance whose process ended although nobody
// stopped it (a crash, a fatal error), as it happens.
func (s *Stack) Exits() <-chan Exit { return s.exits }

// Restarts is how many times Supervise restarted each instance that
// exited by itself.
func (s *Stack) Restarts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.restarts)
}

// OpsAddr is the host:port of an instance's /healthz, /readyz and
// /metrics.
func (s *Stack) OpsAddr(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[name]
}

// WaitReady polls the instance's /readyz until it answers 200.
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
func (s *Stack) Kill(name string) { _ = s.end(name, syscall.SIGKILL) }

// Term stops an instance with SIGTERM, as a scale-in does, and waits until
// it has exited: it finishes its work, commits and leaves its group. The
// error says when it did not stop so: killed StopTimeout after the SIGTERM,
// or an exit status other than 0.
func (s *Stack) Term(name string) error { return s.end(name, syscall.SIGTERM) }

// end signals an instance and waits for it, killing it if it is still
// running StopTimeout after a SIGTERM; it returns how the process ended
// unless that was a clean exit.
func (s *Stack) end(name string, sig syscall.Signal) error {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	if p != nil {
		p.ended = true
	}
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	// A process's CPU time is gone once it is reaped: keep the last
	// reading, at most 100 ms short.
	sample := func() {
		if cpu, err := ProcessCPU(p.cmd.Process.Pid); err == nil {
			p.cpu = cpu
		}
	}
	sample()
	_ = p.cmd.Process.Signal(sig)
	kill := time.After(s.cfg.StopTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	killed := false
	for exited := false; !exited; {
		select {
		case <-p.done:
			exited = true
		case <-kill:
			killed = true
			_ = p.cmd.Process.Kill()
		case <-tick.C:
			sample()
		}
	}
	s.mu.Lock()
	s.cpuDone[p.service] += p.cpu
	s.mu.Unlock()
	switch {
	case killed:
		return fmt.Errorf("%s still ran %s after SIGTERM: killed", name, s.cfg.StopTimeout)
	case p.err != nil:
		return fmt.Errorf("%s: %w", name, p.err)
	}
	return nil
}

// Stop ends every instance with SIGTERM, and SIGKILL for those still
// running StopTimeout later. The error names each instance that did not
// stop cleanly (see Term), and each that had exited by itself with an
// error before.
func (s *Stack) Stop() error {
	s.mu.Lock()
	s.stopping = true
	names := make([]string, 0, len(s.procs))
	for name := range s.procs {
		names = append(names, name)
	}
	s.mu.Unlock()
	sort.Strings(names)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = s.Term(name) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Exited names the instances that are no longer running although nobody
// stopped them (without Supervise).
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
// instances.
func (s *Stack) CPU() map[string]time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Duration{}
	maps.Copy(out, s.cpuDone)
	for _, p := range s.procs {
		if d, err := ProcessCPU(p.cmd.Process.Pid); err == nil {
			p.cpu = d
		}
		out[p.service] += p.cpu
	}
	return out
}

// Names lists every instance the stack has run or may run, sorted.
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

// LogTail is the last n bytes of an instance's log (with LogDir; empty
// otherwise).
func (s *Stack) LogTail(name string, n int) string {
	if s.cfg.LogDir == "" {
		return ""
	}
	b, _ := os.ReadFile(s.logFile(name))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// DeleteTopics removes a stack's topics (those under prefix) and the
// consumer groups it named under prefix from the cluster.
func DeleteTopics(ctx context.Context, brokers, prefix string) error {
	if prefix == "" {
		return errors.New("no prefix: that would be every topic")
	}
	cl, err := kafka.NewClient(kafka.Config{Brokers: strings.Split(brokers, ","), ClientID: "hookline-stack"}, zerolog.Nop())
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var errs []error
	// A broker's metadata may not list yet the topics created last before
	// the services stopped: list and delete again until none is left
	// (a few rounds at most).
	for round := 0; round < 5; round++ {
		if round > 0 {
			time.Sleep(time.Second)
		}
		mine, err := kafka.TopicsUnder(ctx, adm, prefix)
		if err != nil {
			return err
		}
		if len(mine) == 0 {
			break
		}
		errs = nil
		resps, err := adm.DeleteTopics(ctx, mine...)
		if err != nil {
			errs = append(errs, err)
		}
		// A topic's own error (a timeout on a loaded broker) is in its
		// response, not in err; one already deleted is not an error.
		for _, r := range resps.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				errs = append(errs, fmt.Errorf("delete %s: %w", r.Topic, r.Err))
			}
		}
	}
	groups := make([]string, len(Services))
	for i, s := range Services {
		groups[i] = prefix + s.Name
	}
	// A group that never committed does not exist: its error is not one.
	if _, err := adm.DeleteGroups(ctx, groups...); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
