package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hookline/hookline/loadtest/internal/report"
	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/loadtest/internal/workload"
)

// faultScenario is the load the fault suite runs under: a steady stream
// through the API (so that killing ingest matters) for as long as the
// script lasts, with 5% of responses failing so that the retry service
// always has work.
func faultScenario(payload int) scenario {
	return scenario{
		name:  "faults",
		about: "SIGKILL and restart each service, restart Redis, take the sink down, under a steady stream",
		plan: workload.Plan{Name: "faults", Tenants: 10, SubsPerTenant: 1, MatchPerEvent: 1, Endpoints: 1,
			EventTypes: 10, PayloadBytes: payload, MaxAttempts: 20},
		events: 400 * 900, rate: 400, via: "http", // the script stops the stream long before
		faults: sink.Faults{ErrorRate: 0.05},
		send:   15 * time.Minute, drain: 3 * time.Minute,
	}
}

// step is one fault of the suite.
type step struct {
	what string
	do   func(context.Context) error
}

// recoverWithin bounds the wait for the pipeline to catch up after a fault.
const recoverWithin = 3 * time.Minute

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
		{"SIGKILL sender, restart after 2s", kill("sender")},
		{"SIGKILL matcher, restart after 2s", kill("matcher")},
		{"SIGKILL retry, restart after 2s", kill("retry")},
		{"SIGKILL ingest, restart after 2s", kill("ingest")},
		{"restart Redis (every key gone)", func(ctx context.Context) error { return fs.redis(ctx, "restart") }},
		{fmt.Sprintf("sink down %s", down), func(context.Context) error {
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
	stop := make(chan struct{})
	load := &workload.Load{Subs: subs, Count: sc.events, Rate: sc.rate, MaxDuration: sc.send, Stop: stop, Seed: b.o.seed}
	var prog workload.Progress
	cpu0 := b.stack.CPU()
	start := time.Now()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		load.Run(ctx, prod, &prog)
	}()
	// The script runs each fault under the stream, then waits until every
	// delivery owed by the events acknowledged so far has arrived: that
	// time is the fault's recovery. The stream stops after the last one.
	var actions, problems []string
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(stop)
		for _, s := range script {
			if !sleepCtx(ctx, 5*time.Second) {
				return
			}
			say("%s: %s", sc.name, s.what)
			dup0, t0 := tally.Counts().Duplicates, time.Now()
			if err := s.do(ctx); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", s.what, err))
			}
			owed := int(prog.Expected.Load())
			for tally.Counts().Delivered < owed && time.Since(t0) < recoverWithin && sleepCtx(ctx, 100*time.Millisecond) {
			}
			c := tally.Counts()
			note := fmt.Sprintf("%s: caught up %.1fs after the fault, duplicates +%d", s.what, time.Since(t0).Seconds(), c.Duplicates-dup0)
			if c.Delivered < owed {
				note = fmt.Sprintf("%s: not caught up within %s", s.what, recoverWithin)
			}
			say("%s: %s", sc.name, note)
			actions = append(actions, note)
		}
		sleepCtx(ctx, 5*time.Second)
	})
	b.await(ctx, sc.name, tally, &prog, sent, sc.drain, start)
	wg.Wait()
	cpu1 := b.stack.CPU()
	res.Actions, res.Problems = actions, problems
	b.fill(&res, tally, &prog, start, cpu0, cpu1)
	res.Finish()
	say("%s: events %d, delivered %d/%d, lost %d, duplicates %d", sc.name, res.Events, res.Delivered, res.Expected, res.Lost, res.Duplicates)
	return res
}

// sleepCtx sleeps for d and reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
