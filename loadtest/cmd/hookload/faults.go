package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/loadtest/internal/infra"
	"github.com/hookline/hookline/loadtest/internal/report"
	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/loadtest/internal/workload"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/stack"
	"github.com/hookline/hookline/pkg/wire"
)

// faultRound is one part of the fault suite. Each runs on a private Kafka
// cluster and Redis of its own, which it may kill: the shared servers are
// never touched.
type faultRound struct {
	name    string
	about   string
	brokers int // nodes of the private Kafka cluster: 1 or 3
	// history runs the logs service on a private PostgreSQL too, and
	// checks at the end that the store holds every attempt of the topic.
	history bool
	env     []string // more settings of the services
	script  func(f *faultKit) []step
	tune    func(*scenario) // changes the round's load, when set
}

// faultRounds are the fault suite, in order.
var faultRounds = []faultRound{{
	name:    "faults",
	about:   "SIGKILL and restart each service, restart Redis, stop and start PostgreSQL, restart the Kafka broker, take the sink down, scale out and in",
	brokers: 1,
	history: true,
	script: func(f *faultKit) []step {
		return []step{
			f.kill("sender"),
			f.kill("matcher"),
			f.kill("retry"),
			f.kill("ingest"),
			f.kill("logs"),
			{"restart Redis (every key gone)", f.redis.Restart},
			{fmt.Sprintf("PostgreSQL down %s (postgres.sh down, then up)", f.sinkDown), func(ctx context.Context) error {
				if err := f.postgres.Down(ctx); err != nil {
					return err
				}
				sleepCtx(ctx, f.sinkDown)
				return f.postgres.Up(ctx)
			}},
			{"SIGKILL the Kafka broker, restart after 2s", func(ctx context.Context) error {
				if err := f.kafka.Kill(ctx, 1); err != nil {
					return err
				}
				sleepCtx(ctx, 2*time.Second)
				return f.kafka.Start(ctx, 1)
			}},
			{fmt.Sprintf("sink down %s", f.sinkDown), func(ctx context.Context) error {
				if err := f.b.sink.Down(f.sinkDown); err != nil {
					return err
				}
				sleepCtx(ctx, f.sinkDown)
				return nil
			}},
			{"sender-2 and matcher-2 join their groups", f.scaleOut},
			{"sender-2 and matcher-2 leave (SIGTERM)", f.scaleIn},
		}
	},
}, {
	name: "faults-slow-endpoint",
	about: "one endpoint of ten answers in 1 s (its lane parks what it cannot hold while it catches up after each restart): " +
		"SIGKILL and restart the sender, the retry service, the matcher, and the sender again",
	brokers: 1,
	script: func(f *faultKit) []step {
		return []step{f.kill("sender"), f.kill("retry"), f.kill("matcher"), f.kill("sender")}
	},
	tune: func(sc *scenario) {
		// One tenant's ten endpoints, 40 events/s each: the slow one needs
		// 40 requests in flight, which its adaptive limit reaches.
		sc.plan.Tenants, sc.plan.SubsPerTenant, sc.plan.Endpoints = 1, 10, 10
		sc.endpoints = map[int]endpoint{9: {faults: sink.Faults{SlowRate: 1, Slow: time.Second}}}
		sc.groups = func(e int) string {
			if e == 9 {
				return "slow"
			}
			return "fast"
		}
	},
}, {
	name:    "faults-3-brokers",
	about:   "three brokers, topics with 3 replicas and min.insync.replicas 2: SIGKILL one broker, later restart it",
	brokers: 3,
	env:     []string{"HOOKLINE_TOPIC_REPLICATION=3"},
	script: func(f *faultKit) []step {
		return []step{
			{"SIGKILL Kafka broker 1 of 3", func(ctx context.Context) error { return f.kafka.Kill(ctx, 1) }},
			{"restart Kafka broker 1", func(ctx context.Context) error { return f.kafka.Start(ctx, 1) }},
		}
	},
}, {
	name: "faults-poison",
	about: "one tenant sends crafted events: two that kill the matcher (a test hook SIGKILLs it, as an OOM kill would), " +
		"quarantined after 3 deaths each; then 1 MiB events for its CEL expression that squares a string; the other tenants' events keep being delivered",
	brokers: 1,
	env:     []string{"HOOKLINE_TEST_CRASH_EVENT_TYPE=" + poisonCrashType},
	script: func(f *faultKit) []step {
		return []step{
			{"a tenant sends 2 events that kill the matcher", f.poisonCrash},
			{"a tenant's CEL expression squares the 1 MiB strings of its events", f.poisonCEL},
		}
	},
}}

// poisonCrashType is the event type the faults-poison round's matcher
// kills itself on (HOOKLINE_TEST_CRASH_EVENT_TYPE).
const poisonCrashType = "poison.crash"

// crashLimit is the matcher's HOOKLINE_CRASH_LIMIT (its default).
const crashLimit = 3

// poisoner is the tenant of the faults-poison round that sends crafted
// events: the round plan's first tenant, whose other events are owed
// their deliveries like everyone else's.
func (f *faultKit) poisoner() string { return workload.Plan{Name: "faults-poison"}.Tenant(0) }

// poisonCrash sends two events that kill the matcher and waits until both
// are on the rejected topic, quarantined, having cost at most crashLimit
// deaths each.
func (f *faultKit) poisonCrash(ctx context.Context) error {
	before := f.b.stack.Restarts()["matcher"]
	events := []map[string]any{
		{"id": "poison-1", "type": poisonCrashType, "subject": "poison-1", "data": map[string]any{"n": 1}},
		{"id": "poison-2", "type": poisonCrashType, "subject": "poison-2", "data": map[string]any{"n": 2}},
	}
	if err := f.b.api.Post(ctx, f.poisoner(), "/v1/events", events, nil); err != nil {
		return err
	}
	quarantined, err := f.quarantined(ctx, len(events), recoverWithin)
	deaths := f.b.stack.Restarts()["matcher"] - before
	switch {
	case err != nil:
		return fmt.Errorf("%w (the matcher died %d times)", err, deaths)
	case deaths < crashLimit || deaths > len(events)*crashLimit:
		return fmt.Errorf("the matcher died %d times for %d poison events, want %d to %d", deaths, len(events), crashLimit, len(events)*crashLimit)
	}
	say("faults-poison: %s quarantined after %d matcher deaths", strings.Join(quarantined, ", "), deaths)
	return nil
}

// quarantined waits until n records on the rejected topic say they were
// quarantined, and returns their keys.
func (f *faultKit) quarantined(ctx context.Context, n int, within time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	cfg := kafka.Config{Brokers: strings.Split(f.kafka.Brokers(), ","), ClientID: "hookload", Topics: f.b.topics}
	var keys []string
	err := kafka.NewReader(f.b.topics.IngestRejected).Run(ctx, cfg, zerolog.Nop(), func(r *kgo.Record) bool {
		if strings.HasPrefix(wire.Reason(r), "quarantined:") {
			keys = append(keys, string(r.Key))
		}
		return len(keys) < n
	})
	if err == nil && len(keys) < n {
		err = fmt.Errorf("%d of %d poison events quarantined within %s", len(keys), n, within)
	}
	return keys, err
}

// poisonCEL gives the poisoner a subscription whose expression replaces
// every character of a string with the whole string, and sends it events
// with a 1 MiB string: |s|² bytes, a terabyte, which killed the matcher
// with "out of memory" over and over before evaluations were bounded. The
// matcher must not exit.
func (f *faultKit) poisonCEL(ctx context.Context) error {
	before := f.b.stack.Restarts()["matcher"]
	sub := map[string]any{"url": "https://example.com/poison", "event_types": []string{"poison.cel"},
		"expression": "event.data.s.replace('a', event.data.s) == ''"}
	if err := f.b.api.Post(ctx, f.poisoner(), "/v1/subscriptions", sub, nil); err != nil {
		return err
	}
	sleepCtx(ctx, 3*time.Second) // the matcher's index learns of it
	big := strings.Repeat("a", 1_000_000)
	for i := range 3 {
		ev := map[string]any{"type": "poison.cel", "subject": fmt.Sprintf("poison-cel-%d", i), "data": map[string]any{"s": big}}
		if err := f.b.api.Post(ctx, f.poisoner(), "/v1/events", ev, nil); err != nil {
			return err
		}
	}
	sleepCtx(ctx, 15*time.Second)
	if deaths := f.b.stack.Restarts()["matcher"] - before; deaths > 0 {
		return fmt.Errorf("the matcher died %d times evaluating the expression", deaths)
	}
	return nil
}

// faultScenario is the load the fault suite runs under: a steady stream
// through the API (so that killing ingest matters) for as long as the
// script lasts, with 5% of responses failing so that the retry service
// always has work.
func faultScenario(name, about string, payload int) scenario {
	return scenario{
		name:  name,
		about: about,
		plan: workload.Plan{Name: name, Tenants: 10, SubsPerTenant: 1, MatchPerEvent: 1, Endpoints: 1,
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

// faultKit is what a round's faults act on.
type faultKit struct {
	b        *bench
	kafka    *infra.Kafka
	redis    *infra.Redis
	postgres *infra.Postgres // nil without the history
	sinkDown time.Duration
}

// kill SIGKILLs a service and starts it again 2 s later.
func (f *faultKit) kill(name string) step {
	return step{"SIGKILL " + name + ", restart after 2s", func(ctx context.Context) error {
		f.b.stack.Kill(name)
		sleepCtx(ctx, 2*time.Second)
		if err := f.b.stack.Start(name); err != nil {
			return err
		}
		return f.b.stack.WaitReady(ctx, name, time.Minute)
	}}
}

// scaledOut are the instances scaleOut adds, by name and service: dynamic
// group members, as autoscaled instances are, so that they hand their
// partitions back as soon as they leave.
var scaledOut = []struct{ name, service string }{
	{"sender-2", "sender"},
	{"matcher-2", "matcher"},
}

// scaleOut starts a second sender and matcher and waits until each group
// has given partitions to both of its members.
func (f *faultKit) scaleOut(ctx context.Context) error {
	for _, x := range scaledOut {
		// At info, their logs show them start and stop working. (Each
		// instance's transactional id is its own: the stack names it.)
		err := f.b.stack.Add(x.name, x.service, "HOOKLINE_LOG_LEVEL=info")
		if err != nil {
			return err
		}
	}
	for _, x := range scaledOut {
		if err := f.b.stack.WaitReady(ctx, x.name, time.Minute); err != nil {
			return err
		}
	}
	for _, x := range scaledOut {
		group := f.b.topics.Prefix + x.service // the stack's group names
		deadline := time.Now().Add(time.Minute)
		for {
			working, err := f.workingMembers(ctx, group)
			if err == nil && working == 2 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("group %s: %d members with partitions a minute after %s joined (%v)", group, working, x.name, err)
			}
			sleepCtx(ctx, 500*time.Millisecond)
		}
	}
	return nil
}

// scaleIn stops the instances scaleOut added, gracefully, at once.
func (f *faultKit) scaleIn(context.Context) error {
	var wg sync.WaitGroup
	for _, x := range scaledOut {
		wg.Go(func() {
			if err := f.b.stack.Term(x.name); err != nil {
				say("scale in: %v", err)
			}
		})
	}
	wg.Wait()
	return nil
}

// workingMembers counts the members of group that have partitions.
func (f *faultKit) workingMembers(ctx context.Context, group string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	groups, err := kadm.NewClient(f.b.kafka).DescribeGroups(ctx, group)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range groups[group].Members {
		if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
			n++
		}
	}
	return n, nil
}

// roundNames lists the fault rounds in order.
func roundNames() []string {
	names := make([]string, len(faultRounds))
	for i, r := range faultRounds {
		names[i] = r.name
	}
	return names
}

// replication describes how the run's deliveries topic is replicated, as
// the cluster reports it.
func (f *faultKit) replication(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(f.b.kafka)
	topic := f.b.topics.Deliveries
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return "", err
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return "", err
	}
	minISR := "?"
	if rc, err := configs.On(topic, nil); err == nil {
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" && c.Value != nil {
				minISR = *c.Value
			}
		}
	}
	replicas := 0
	for _, p := range topics[topic].Partitions {
		replicas = len(p.Replicas)
	}
	return fmt.Sprintf("%s: %d partitions, replication factor %d, min.insync.replicas=%s", topic, len(topics[topic].Partitions), replicas, minISR), nil
}

// faultSuite runs the chosen rounds (by their scenarios) and returns a
// result per round.
func faultSuite(ctx context.Context, o options, sk *sink.Sink, base stack.Config, work string, chosen []scenario) []report.Result {
	var out []report.Result
	for _, sc := range chosen {
		if ctx.Err() != nil {
			break
		}
		i := slices.IndexFunc(faultRounds, func(r faultRound) bool { return r.name == sc.name })
		t0 := time.Now()
		out = append(out, runRound(ctx, o, sk, base, filepath.Join(work, sc.name), faultRounds[i], sc))
		say("%s: done in %s", sc.name, time.Since(t0).Round(time.Second))
	}
	return out
}

// runRound starts the round's private Kafka and Redis and the services on
// them, runs its script under a steady stream and stops it all again.
func runRound(ctx context.Context, o options, sk *sink.Sink, cfg stack.Config, dir string, r faultRound, sc scenario) report.Result {
	failed := func(err error) report.Result {
		return report.Result{Scenario: r.name, Problems: []string{err.Error()}}
	}
	say("%s: starting a private Kafka cluster of %d broker(s) and a private Redis", r.name, r.brokers)
	k, err := infra.StartKafka(ctx, o.repo, filepath.Join(dir, "kafka"), r.brokers)
	if err != nil {
		return failed(err)
	}
	defer k.Stop()
	rd, err := infra.StartRedis(ctx, o.repo, filepath.Join(dir, "redis"))
	if err != nil {
		return failed(err)
	}
	defer rd.Stop()

	var pg *infra.Postgres
	if r.history {
		say("%s: starting a private PostgreSQL for the delivery history", r.name)
		if pg, err = infra.StartPostgres(ctx, o.repo, filepath.Join(dir, "postgres")); err != nil {
			return failed(err)
		}
		defer pg.Stop()
		cfg.Postgres = pg.URL()
		cfg.Services = append(slices.Clone(cfg.Services), "logs")
	}

	cfg.Brokers, cfg.Redis, cfg.LogDir = k.Brokers(), rd.Addr(), dir
	cfg.Env = append(cfg.Env, r.env...)
	// Static members: a killed service restarted under its own name gets
	// its partitions back at once, not after the 45 s session timeout.
	cfg.StaticMembers = true
	// A service may exit on a broker fault and count on being restarted,
	// as Kubernetes does; the notes say when.
	cfg.Supervise = true
	b, err := start(ctx, o, sk, cfg)
	if err != nil {
		return failed(err)
	}
	defer b.close()
	// A producer application retries while ingest or the broker restarts.
	b.api.Patience = 2 * time.Minute

	down := 5 * time.Second
	if o.size == "full" {
		down = 30 * time.Second
	}
	kit := &faultKit{b: b, kafka: k, redis: rd, postgres: pg, sinkDown: down}
	layout, err := kit.replication(ctx)
	if err != nil {
		layout = "replication unknown: " + err.Error()
	}
	say("%s: %s", r.name, layout)
	res := b.runFaults(ctx, sc, r.script(kit))
	res.Actions = append([]string{layout}, res.Actions...)
	if pg != nil {
		note, err := b.historyComplete(ctx, pg.URL())
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
		} else {
			res.Actions = append(res.Actions, note)
		}
	}
	if len(res.Problems) > 0 {
		b.showLogs()
	}
	return res
}

// runFaults runs sc while the script kills and restarts things, then
// reports events, deliveries, lost and duplicates.
func (b *bench) runFaults(ctx context.Context, sc scenario, script []step) report.Result {
	res := report.Result{Scenario: sc.name, Subscriptions: sc.plan.Subscriptions()}
	say("%s: %s", sc.name, sc.about)
	subs, err := b.prepare(ctx, sc)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	prod, via := b.producer(sc)
	res.Via = via
	tally := b.sink.Begin(sc.faults)
	stop := make(chan struct{})
	load := &workload.Load{Subs: subs, Count: sc.events, Rate: sc.rate, MaxDuration: sc.send, Stop: stop, Seed: b.o.seed, Owed: owed(sc, subs)}
	var prog workload.Progress
	cpu0 := b.cpu()
	start := time.Now()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		load.Run(ctx, prod, &prog)
	}()
	// Once deliveries flow, the script runs each fault under the stream,
	// then waits until every delivery owed by the events acknowledged so
	// far has arrived: that time is the fault's recovery. The stream
	// stops after the last one.
	caughtUp := func() bool {
		owed, t0 := int(prog.Expected.Load()), time.Now()
		for tally.Counts().Delivered < owed && time.Since(t0) < recoverWithin && sleepCtx(ctx, 100*time.Millisecond) {
		}
		return tally.Counts().Delivered >= owed
	}
	var actions, problems []string
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(stop)
		if sleepCtx(ctx, 5*time.Second) && !caughtUp() {
			problems = append(problems, fmt.Sprintf("deliveries did not keep up with the stream within %s, before any fault", recoverWithin))
			return
		}
		restarts := b.stack.Restarts()
		for _, s := range script {
			if ctx.Err() != nil {
				return
			}
			say("%s: %s", sc.name, s.what)
			dup0, t0 := tally.Counts().Duplicates, time.Now()
			if err := s.do(ctx); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", s.what, err))
			}
			took, t1 := time.Since(t0), time.Now()
			ok := caughtUp()
			note := fmt.Sprintf("%s (%.1fs): caught up %.1fs later, duplicates +%d",
				s.what, took.Seconds(), time.Since(t1).Seconds(), tally.Counts().Duplicates-dup0)
			if !ok {
				note = fmt.Sprintf("%s (%.1fs): not caught up within %s", s.what, took.Seconds(), recoverWithin)
			}
			now := b.stack.Restarts()
			note += restarted(restarts, now)
			restarts = now
			say("%s: %s", sc.name, note)
			actions = append(actions, note)
			sleepCtx(ctx, 5*time.Second)
		}
	})
	b.await(ctx, sc.name, tally, &prog, sent, sc.drain, start)
	wg.Wait()
	cpu1 := b.cpu()
	if note := restarted(map[string]int{}, b.stack.Restarts()); note != "" {
		actions = append(actions, "in all"+note)
	}
	res.Actions, res.Problems = actions, problems
	b.fill(&res, tally, &prog, start, cpu0, cpu1)
	res.Groups = groups(sc, subs, tally, &prog, start)
	res.Finish()
	say("%s: events %d, delivered %d/%d, lost %d, duplicates %d", sc.name, res.Events, res.Delivered, res.Expected, res.Lost, res.Duplicates)
	return res
}

// historyWithin bounds the wait for the logs service to catch up once the
// stream has ended.
const historyWithin = 3 * time.Minute

// historyComplete waits until the delivery history holds as many attempts
// as the delivery log topic (the run's own cluster: every record is the
// run's), and says so; it fails when they differ after historyWithin.
func (b *bench) historyComplete(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", fmt.Errorf("history: %w", err)
	}
	defer conn.Close(context.Background())
	var inTopic, inStore int64
	deadline := time.Now().Add(historyWithin)
	for {
		ends, err := kadm.NewClient(b.kafka).ListEndOffsets(ctx, b.topics.DeliveryLog)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return "", fmt.Errorf("history: end offsets of %s: %w", b.topics.DeliveryLog, err)
		}
		inTopic = 0
		ends.Each(func(o kadm.ListedOffset) { inTopic += o.Offset })
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM attempts").Scan(&inStore); err != nil {
			return "", fmt.Errorf("history: count attempts: %w", err)
		}
		if inStore == inTopic || time.Now().After(deadline) || !sleepCtx(ctx, time.Second) {
			break
		}
	}
	if inStore != inTopic {
		return "", fmt.Errorf("history: attempts in the topic %d, in the store %d, %s after the stream ended", inTopic, inStore, historyWithin)
	}
	return fmt.Sprintf("history: attempts in the topic = attempts in the store = %d", inStore), nil
}

// restarted describes the instances that exited by themselves and were
// restarted between two readings of Stack.Restarts, or is empty.
func restarted(before, after map[string]int) string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if n := after[name] - before[name]; n > 0 {
			out = append(out, fmt.Sprintf("%s %d time(s)", name, n))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return ", exited by itself and restarted: " + strings.Join(out, ", ")
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
