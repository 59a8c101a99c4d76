package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hookline/hookline/loadtest/internal/report"
	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/loadtest/internal/workload"
)

// faultScenario is the load the fault suite runs under: a steady stream
// through the API (so that killing ingest matters), with 5% of responses
// failing so that the retry service always has work.
func faultScenario(size string, payload int) scenario {
	seconds := 50.0
	if size == "full" {
		seconds = 150
	}
	return scenario{
		name:  "faults",
		about: "SIGKILL and restart each service, restart Redis, take the sink down, under a steady stream",
		plan: workload.Plan{Name: "faults", Tenants: 10, SubsPerTenant: 1, MatchPerEvent: 1, Endpoints: 1,
			EventTypes: 10, PayloadBytes: payload, MaxAttempts: 20},
		events: int(400 * seconds), rate: 400, via: "http",
		faults: sink.Faults{ErrorRate: 0.05},
		send:   time.Duration(seconds)*time.Second + 30*time.Second, drain: 3 * time.Minute,
	}
}

// step is one fault at a time after the load started.
type step struct {
	at   time.Duration
	what string
	do   func(context.Context) error
}

// faultSuite owns the private Redis the suite restarts: the shared one on
// 6379 is never touched.
type faultSuite struct {
	repo, cache, port string
}

// redis runs deploy/scripts/redis.sh on the suite's port and cache folder.
func (f *faultSuite) redis(ctx context.Context, verb string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(f.repo, "deploy", "scripts", "redis.sh"), verb)
	cmd.Env = append(os.Environ(), "REDIS_PORT="+f.port, "HOOKLINE_CACHE="+f.cache)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("redis.sh %s: %w\n%s", verb, err, out)
	}
	return nil
}

func (f *faultSuite) startRedis(ctx context.Context, repo, tmp string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	f.repo, f.cache, f.port = repo, filepath.Join(tmp, "cache"), port
	say("faults: starting a private Redis on 127.0.0.1:%s", port)
	return "127.0.0.1:" + port, f.redis(ctx, "up")
}

func (f *faultSuite) stopRedis() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.redis(ctx, "down"); err != nil {
		say("faults: %v", err)
	}
}

// runFaults runs sc while the script kills and restarts things, then
// reports events, deliveries, lost and duplicates.
func (b *bench) runFaults(ctx context.Context, sc scenario, fs *faultSuite) report.Result {
	res := report.Result{Scenario: sc.name, Subscriptions: sc.plan.Subscriptions()}
	say("%s: %s", sc.name, sc.about)
	subs, err := b.prepare(ctx, sc)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	down := 5 * time.Second
	if b.o.size == "full" {
		down = 30 * time.Second
	}
	kill := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			b.stack.Kill(name)
			time.Sleep(2 * time.Second)
			if err := b.stack.Start(name); err != nil {
				return err
			}
			return b.stack.WaitReady(ctx, name, time.Minute)
		}
	}
	script := []step{
		{4 * time.Second, "SIGKILL sender, restart", kill("sender")},
		{10 * time.Second, "SIGKILL matcher, restart", kill("matcher")},
		{16 * time.Second, "SIGKILL retry, restart", kill("retry")},
		{22 * time.Second, "SIGKILL ingest, restart", kill("ingest")},
		{28 * time.Second, "restart Redis (all keys gone)", func(ctx context.Context) error { return fs.redis(ctx, "restart") }},
		{34 * time.Second, fmt.Sprintf("sink down %s", down), func(context.Context) error {
			if err := b.sink.Down(down); err != nil {
				return err
			}
			time.Sleep(down)
			return nil
		}},
	}

	prod, via := b.producer(sc)
	res.Via = via
	tally := b.sink.Begin(sc.faults)
	load := &workload.Load{Subs: subs, Count: sc.events, Rate: sc.rate, MaxDuration: sc.send, Seed: b.o.seed}
	var prog workload.Progress
	cpu0 := b.stack.CPU()
	start := time.Now()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		load.Run(ctx, prod, &prog)
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, s := range script {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(s.at))):
			}
			say("%s: %s", sc.name, s.what)
			t0 := time.Since(start)
			err := s.do(ctx)
			mu.Lock()
			res.Actions = append(res.Actions, fmt.Sprintf("%.0fs %s (%.1fs)", t0.Seconds(), s.what, (time.Since(start) - t0).Seconds()))
			if err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", s.what, err))
			}
			mu.Unlock()
		}
	})
	b.await(ctx, sc.name, tally, &prog, sent, sc.drain, start)
	wg.Wait()
	cpu1 := b.stack.CPU()
	b.fill(&res, tally, &prog, start, cpu0, cpu1)
	res.Finish()
	say("%s: events %d, delivered %d/%d, lost %d, duplicates %d; %s",
		sc.name, res.Events, res.Delivered, res.Expected, res.Lost, res.Duplicates, strings.Join(res.Actions, "; "))
	return res
}
