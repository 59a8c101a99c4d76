package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/loadtest/internal/ceiling"
	"github.com/hookline/hookline/loadtest/internal/report"
	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/loadtest/internal/workload"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/stack"
	"github.com/hookline/hookline/pkg/wire"
)

// ceilingMin is the fewest requests a ceiling measurement makes.
const ceilingMin = 20000

// bench is what every scenario of a run shares.
type bench struct {
	o      options
	sink   *sink.Sink
	stack  *stack.Stack
	api    *workload.API
	kafka  *kgo.Client
	codecs *record.Codecs
	topics wire.Topics
}

func run(ctx context.Context, o options) error {
	if !o.faults && (o.brokers == "" || o.redis == "") {
		return errors.New("KAFKA_BROKERS and REDIS_ADDR must name the broker and Redis (`deploy/scripts/infra.sh up` prints them)")
	}
	if o.repo == "" {
		var err error
		if o.repo, err = stack.FindRepo("."); err != nil {
			return err
		}
	}
	if o.results == "" {
		o.results = filepath.Join(o.repo, "results")
	}
	chosen, err := choose(o)
	if err != nil {
		return err
	}
	keys := map[string]string{} // every tenant of the run, for ingest
	for _, sc := range chosen {
		maps.Copy(keys, sc.plan.Keys())
		if sc.alone != nil {
			maps.Copy(keys, sc.alone.plan.Keys())
		}
	}

	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "hookload"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	sk, err := sink.Start(o.seed)
	if err != nil {
		return err
	}
	defer sk.Close()
	caFile := filepath.Join(work, "sink-ca.pem")
	if err := os.WriteFile(caFile, sk.Cert.PEM, 0o600); err != nil {
		return err
	}
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(work, "bin")
		say("building the services")
		if err := stack.Build(ctx, o.repo, bin, append(slices.Clone(services), "logs")...); err != nil {
			return err
		}
	}
	cfg := stack.Config{
		Bin: bin, Services: services, Partitions: o.partitions, Schedule: o.schedule, CAFile: caFile, Keys: keys,
		AllowHosts: "127.0.0.1", LogLevel: "warn",
		// Delivered marks live in the shared Redis: keep them only as long
		// as a run lasts.
		Env: []string{"HOOKLINE_DELIVERED_TTL=30m"},
	}

	t0 := time.Now()
	out := &report.Run{Started: t0, Size: o.size, Host: host(o)}
	if o.faults {
		out.Size = "faults-" + o.size
		out.Host["kafka"] = "private clusters"
		out.Results = faultSuite(ctx, o, sk, cfg, work, chosen)
		say("fault suite done in %s", time.Since(t0).Round(time.Second))
	} else if err := benchmarks(ctx, o, sk, cfg, work, chosen, out); err != nil {
		return err
	}

	fmt.Println()
	out.Markdown(os.Stdout)
	path, err := out.WriteJSON(o.results)
	if err != nil {
		return err
	}
	say("report written to %s", path)
	if ctx.Err() != nil {
		return fmt.Errorf("stopped early: %w", ctx.Err())
	}
	if !out.OK() {
		return errors.New("a scenario had problems (see above)")
	}
	return nil
}

// benchmarks runs the chosen scenarios on the shared broker and Redis,
// adding their results to out, and deletes their topics afterwards.
func benchmarks(ctx context.Context, o options, sk *sink.Sink, cfg stack.Config, work string, chosen []scenario, out *report.Run) error {
	cfg.Brokers, cfg.Redis, cfg.LogDir = o.brokers, o.redis, work
	b, err := start(ctx, o, sk, cfg)
	if err != nil {
		return err
	}
	defer func() {
		b.close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := stack.DeleteTopics(ctx, o.brokers, b.topics.Prefix); err != nil {
			say("cleanup of %s*: %v", b.topics.Prefix, err)
		}
	}()
	for _, sc := range chosen {
		if ctx.Err() != nil {
			break
		}
		if sc.idle > 0 {
			out.Results = append(out.Results, b.idle(ctx, sc))
			continue
		}
		var alone *report.Result
		if sc.alone != nil {
			r := b.scenario(ctx, *sc.alone)
			out.Results, alone = append(out.Results, r), &r
		}
		res := b.scenario(ctx, sc)
		if alone != nil && sc.compare != nil && len(alone.Problems) == 0 {
			sc.compare(alone, &res)
		}
		out.Results = append(out.Results, res)
		if len(res.Problems) > 0 {
			b.showLogs()
		}
	}
	return nil
}

// start runs the services with cfg under a fresh topic prefix and returns
// the bench over them; close stops them.
func start(ctx context.Context, o options, sk *sink.Sink, cfg stack.Config) (*bench, error) {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	cfg.Prefix = "bench" + hex.EncodeToString(suffix) + "."
	say("starting %s (topics %s*, %d partitions, Kafka %s)", strings.Join(cfg.Services, ", "), cfg.Prefix, cfg.Partitions, cfg.Brokers)
	st, err := stack.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	kcl, err := kafka.NewClient(kafka.Config{Brokers: strings.Split(cfg.Brokers, ","), ClientID: "hookload"}, zerolog.Nop())
	if err != nil {
		_ = st.Stop()
		return nil, err
	}
	codecs, err := record.LoadCodecs()
	if err != nil {
		_ = st.Stop()
		kcl.Close()
		return nil, err
	}
	o.brokers = cfg.Brokers // for diagnose
	return &bench{
		o: o, sink: sk, stack: st, kafka: kcl, codecs: codecs, topics: wire.NewTopics(cfg.Prefix),
		api: &workload.API{Base: st.API, Keys: cfg.Keys, Client: &http.Client{
			Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		}},
	}, nil
}

// close stops the services and the bench's Kafka client.
func (b *bench) close() {
	if err := b.stack.Stop(); err != nil {
		say("%v", err)
	}
	b.kafka.Close()
}

// services are what the benchmarks and the fault suite run: notify sends
// no webhooks; logs runs too in a round with the history (faultRound).
var services = []string{"ingest", "matcher", "sender", "retry"}

// cpu is the CPU time each service and hookload itself have used so far.
func (b *bench) cpu() map[string]time.Duration {
	c := b.stack.CPU()
	if d, err := stack.ProcessCPU(os.Getpid()); err == nil {
		c["hookload"] = d
	}
	for _, f := range strings.Split(b.o.brokerPIDs, ",") {
		if pid, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			if d, err := stack.ProcessCPU(pid); err == nil {
				c["broker"] += d
			}
		}
	}
	return c
}

// showLogs prints the end of every instance's log, after a problem.
func (b *bench) showLogs() {
	for _, name := range b.stack.Names() {
		if tail := b.stack.LogTail(name, 1500); tail != "" {
			say("%s log (tail):\n%s", name, tail)
		}
	}
}

// choose returns the scenarios o asks for, with its overrides applied.
func choose(o options) ([]scenario, error) {
	if o.faults {
		var rounds []scenario
		for _, r := range faultRounds {
			if wanted(o, r.name) {
				sc := faultScenario(r.name, r.about, o.payload)
				if r.tune != nil {
					r.tune(&sc)
				}
				rounds = append(rounds, sc)
			}
		}
		if len(rounds) == 0 {
			return nil, fmt.Errorf("no fault round among %q: choose from %s", o.scenarios, strings.Join(roundNames(), ", "))
		}
		return rounds, nil
	}
	all, err := scenarios(o.size, o.payload)
	if err != nil {
		return nil, err
	}
	var chosen []scenario
	for _, sc := range all {
		if !wanted(o, sc.name) {
			continue
		}
		if o.events > 0 {
			sc.events = o.events
		}
		if o.rate > 0 {
			sc.rate = o.rate
		}
		if o.drain > 0 {
			sc.drain = o.drain
		}
		if o.sinkFaults.ErrorRate+o.sinkFaults.ThrottleRate+o.sinkFaults.SlowRate+o.sinkFaults.TimeoutRate+o.sinkFaults.ResetRate > 0 {
			sc.faults = o.sinkFaults
		}
		chosen = append(chosen, sc)
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("no scenario among %q: choose from %s", o.scenarios, strings.Join(scenarioNames, ", "))
	}
	return chosen, nil
}

// wanted reports whether o asks for the scenario or fault round name.
func wanted(o options, name string) bool {
	return len(o.scenarios) == 0 || slices.Contains(o.scenarios, name)
}

// host describes the machine, for reading the numbers later.
func host(o options) map[string]string {
	load, _ := os.ReadFile("/proc/loadavg")
	return map[string]string{
		"cpus":      fmt.Sprint(runtime.NumCPU()),
		"go":        runtime.Version(),
		"os":        runtime.GOOS + "/" + runtime.GOARCH,
		"loadavg":   strings.TrimSpace(string(load)),
		"kafka":     o.brokers,
		"partition": fmt.Sprint(o.partitions),
		"schedule":  o.schedule,
		"seed":      fmt.Sprint(o.seed),
	}
}

// producer is how sc's events are sent.
func (b *bench) producer(sc scenario) (workload.Producer, string) {
	via := sc.via
	if b.o.via != "" {
		via = b.o.via
	}
	if via == "http" && (sc.clients > 0 || sc.single) {
		// An immediate request waits for its delivery: more in flight
		// keep the rate.
		conc := max(sc.clients, 8)
		if sc.immediate {
			conc = 64
		}
		return &workload.HTTPProducer{API: b.api, Tenant: sc.plan.Tenant, Events: 1, Single: true, Immediate: sc.immediate, Concurrency: conc}, via
	}
	if via == "http" {
		events := 100
		if sc.rate > 0 {
			events = 10
		}
		return &workload.HTTPProducer{API: b.api, Tenant: sc.plan.Tenant, Events: events, Concurrency: 8}, via
	}
	return &workload.KafkaProducer{Client: b.kafka, Topic: b.topics.Events, Codecs: b.codecs, Tenant: sc.plan.Tenant}, "kafka"
}

// prepare creates sc's subscriptions, gives its misbehaving endpoints
// their faults, and waits until the pipeline sees the subscriptions.
func (b *bench) prepare(ctx context.Context, sc scenario) (*workload.Subs, error) {
	t0 := time.Now()
	plan := sc.plan
	if len(sc.endpoints) > 0 {
		refused, err := closedPort()
		if err != nil {
			return nil, err
		}
		plan.URL = func(t, e int) (string, bool) {
			if sc.endpoints[e].refuse {
				return refused + plan.Path(t, e), true
			}
			return "", false
		}
	}
	subs, err := workload.Setup(ctx, b.api, b.sink, plan, 32)
	if err != nil {
		return nil, err
	}
	for e, ep := range sc.endpoints {
		if ep.faults == (sink.Faults{}) {
			continue
		}
		for t := range plan.Tenants {
			if err := b.sink.Behave(plan.Path(t, e), ep.faults); err != nil {
				return nil, err
			}
		}
	}
	say("%s: %d subscriptions created in %s", sc.name, sc.plan.Subscriptions(), time.Since(t0).Round(time.Millisecond))
	if err := workload.Barrier(ctx, b.api, b.sink, sc.plan, time.Minute); err != nil {
		return nil, err
	}
	return subs, nil
}

// scenario runs one benchmark and its ceiling.
func (b *bench) scenario(ctx context.Context, sc scenario) report.Result {
	res := report.Result{Scenario: sc.name, Subscriptions: sc.plan.Subscriptions()}
	say("%s: %s; faults: %s", sc.name, sc.about, sc.faults.Describe())
	subs, err := b.prepare(ctx, sc)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
		return res
	}
	prod, via := b.producer(sc)
	res.Via = via
	tally := b.sink.Begin(sc.faults)
	load := &workload.Load{Subs: subs, Count: sc.events, Rate: sc.rate, MaxDuration: sc.send, Seed: b.o.seed, Owed: owed(sc, subs)}
	var paused []string
	if sc.ingestAlone { // before the clock starts: stopping takes a while
		if paused, err = b.pausePipeline(); err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
	}
	var prog workload.Progress
	cpu0 := b.cpu()
	start := time.Now()
	sent := make(chan struct{})
	var sending time.Duration
	var resumeErr error
	go func() {
		defer close(sent)
		load.Run(ctx, prod, &prog)
		sending = time.Since(start)
		resumeErr = b.resume(ctx, sc.name, paused)
	}()
	if d := b.o.sinkDown; d > 0 {
		time.AfterFunc(5*time.Second, func() {
			say("%s: sink down for %s", sc.name, d)
			if err := b.sink.Down(d); err != nil {
				say("%s: %v", sc.name, err)
			}
		})
	}
	b.await(ctx, sc.name, tally, &prog, sent, sc.drain+b.o.sinkDown, start)
	for b.sink.IsDown() { // the ceiling needs it
		time.Sleep(100 * time.Millisecond)
	}
	cpu1 := b.cpu()
	if resumeErr != nil {
		res.Problems = append(res.Problems, resumeErr.Error())
	}

	b.fill(&res, tally, &prog, start, cpu0, cpu1)
	res.Groups = groups(sc, subs, tally, &prog, start)
	perDelivery(&res)
	if sc.hops {
		if res.Hops, err = b.hops(ctx, tally, prog.ExpectedIDs()); err != nil {
			res.Problems = append(res.Problems, "per-hop latency: "+err.Error())
		}
	}
	if sc.immediate {
		immediateFigures(&res, prod)
		res.Finish()
		say("%s: %d/%d delivered, lost %d, duplicates %d; answer p50 %.1f ms p99 %.1f ms, less the attempt's own time p50 %.1f ms p99 %.1f ms; %v",
			sc.name, res.Delivered, res.Expected, res.Lost, res.Duplicates, res.Requests.P50, res.Requests.P99,
			res.Immediate.Overhead.P50, res.Immediate.Overhead.P99, res.Immediate.Outcomes)
		return res
	}
	if sc.clients > 0 {
		b.apiCeiling(ctx, sc, &res, prod, sending)
		res.Finish()
		say("%s: %.0f events/s accepted (bare Go HTTP server %.0f/s, ratio %.2f), request p50 %.1f ms p99 %.1f ms; %d/%d delivered, lost %d",
			sc.name, res.Accepted, res.Ceiling.PerSecond, res.Ratio, res.Requests.P50, res.Requests.P99, res.Delivered, res.Expected, res.Lost)
		return res
	}
	// The ceiling posts at least ceilingMin requests, so that connection
	// setup does not dominate small scenarios; its sink answers without faults.
	c := tally.Counts()
	samples := slices.DeleteFunc(tally.Samples(), func(s sink.Sample) bool { return b.sink.Behaving(s.Path) })
	b.sink.Begin(sink.Faults{})
	res.Ceiling, err = ceiling.Run(ctx, b.sink, samples, max(c.Delivered, ceilingMin), c.PeakInFlight, 30*time.Second)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	res.Finish()
	say("%s: %d/%d delivered at %.0f/s (ceiling %.0f/s at concurrency %d), p99 %.0f ms, lost %d, duplicates %d",
		sc.name, res.Delivered, res.Expected, res.PerSecond, res.Ceiling.PerSecond, res.Ceiling.Concurrency, res.Latency.P99, res.Lost, res.Duplicates)
	return res
}

// immediateFigures fills in what the immediate requests got: their answer
// times, and less each delivered one's attempt time, the overhead.
func immediateFigures(res *report.Result, prod workload.Producer) {
	h, ok := prod.(*workload.HTTPProducer)
	if !ok {
		return
	}
	res.Requests = report.Summarize(h.Took())
	im := &report.Immediate{Outcomes: map[string]int{}}
	var overhead, attempt, queued []time.Duration
	for _, a := range h.Answers() {
		im.Outcomes[cmp.Or(a.Outcome, "none")]++
		switch a.Outcome {
		case "delivered":
			overhead, attempt = append(overhead, max(a.Took-a.Attempt, 0)), append(attempt, a.Attempt)
		case "queued":
			queued = append(queued, a.Took)
		}
	}
	im.Overhead, im.Attempt, im.Queued = report.Summarize(overhead), report.Summarize(attempt), report.Summarize(queued)
	res.Immediate = im
	if n := im.Outcomes["delivered"]; n < len(h.Answers()) {
		// Not a problem: queued ones (over the tenant's limit of attempts
		// in flight, when answers are slow) are the pipeline's, and the
		// sink counts them lost or duplicated like any other.
		res.Actions = append(res.Actions, fmt.Sprintf("%d of %d immediate requests were not delivered in the request (outside the overhead figures): %v", len(h.Answers())-n, len(h.Answers()), im.Outcomes))
	}
}

// idle measures what the stack costs doing nothing: the CPU of every
// process (the broker's too, with -broker-pids) over sc.idle, after the
// previous scenarios' work has settled.
func (b *bench) idle(ctx context.Context, sc scenario) report.Result {
	res := report.Result{Scenario: sc.name, Via: "-"}
	say("%s: %s", sc.name, sc.about)
	select { // let the last scenario's retries, commits and GC settle
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	cpu0 := b.cpu()
	select {
	case <-time.After(sc.idle):
	case <-ctx.Done():
	}
	cpu1 := b.cpu()
	res.CPU = map[string]float64{}
	total := 0.0
	for name, d := range cpu1 {
		res.CPU[name] = (d - cpu0[name]).Seconds()
		if name != "hookload" {
			total += res.CPU[name]
		}
	}
	res.Seconds = sc.idle.Seconds()
	res.Actions = append(res.Actions, fmt.Sprintf("idle for %s: %.3f cores in all (services and broker: %s)", sc.idle, total/res.Seconds, cpuList(res.CPU, res.Seconds)))
	say("%s: %s", sc.name, res.Actions[0])
	return res
}

// cpuList is each process's CPU over seconds, in cores, hookload left out.
func cpuList(cpu map[string]float64, seconds float64) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(cpu)) {
		if name != "hookload" {
			parts = append(parts, fmt.Sprintf("%s %.3f", name, cpu[name]/seconds))
		}
	}
	return strings.Join(parts, ", ")
}

// perDelivery notes the CPU the stack spent per delivery: every process
// but hookload, the broker's too with -broker-pids.
func perDelivery(res *report.Result) {
	if res.Delivered == 0 {
		return
	}
	total := 0.0
	for name, s := range res.CPU {
		if name != "hookload" {
			total += s
		}
	}
	res.Actions = append(res.Actions, fmt.Sprintf("CPU per delivery %.2f ms (CPU seconds: %s)",
		total*1000/float64(res.Delivered), cpuList(res.CPU, 1)))
}

// apiCeiling fills the api scenario's figures: events accepted per second
// while sending, each request's answer time, and the ceiling, a bare Go
// HTTP server taking as many requests from as many clients.
func (b *bench) apiCeiling(ctx context.Context, sc scenario, res *report.Result, prod workload.Producer, sending time.Duration) {
	if sending > 0 {
		res.Accepted = float64(res.Events) / sending.Seconds()
	}
	if h, ok := prod.(*workload.HTTPProducer); ok {
		res.Requests = report.Summarize(h.Took())
	}
	c, err := ceiling.API(ctx, ceiling.Bodies(1000, sc.plan.PayloadBytes), max(res.Events, ceilingMin), sc.clients, 30*time.Second)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
	res.Ceiling = c
}

// pausePipeline stops (SIGTERM, as a scale-in) every service of the
// stack but ingest and returns their names, for resume.
func (b *bench) pausePipeline() ([]string, error) {
	var paused []string
	for _, name := range b.stack.Config().ServicesToRun() {
		if name == "ingest" {
			continue
		}
		if err := b.stack.Term(name); err != nil {
			return paused, fmt.Errorf("stop %s while ingest runs alone: %w", name, err)
		}
		paused = append(paused, name)
	}
	return paused, nil
}

// resume starts the services pausePipeline stopped and waits until each
// is ready.
func (b *bench) resume(ctx context.Context, scenario string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	say("%s: starting %s again", scenario, strings.Join(names, ", "))
	for _, name := range names {
		if err := b.stack.Start(name); err != nil {
			return err
		}
	}
	for _, name := range names {
		if err := b.stack.WaitReady(ctx, name, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// closedPort is an https URL base on 127.0.0.1 where nothing listens: its
// connections are refused.
func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return "https://" + ln.Addr().String(), nil
}

// endpointOf maps every subscription of subs to its endpoint index.
func endpointOf(subs *workload.Subs) map[string]int {
	out := map[string]int{}
	for _, ids := range subs.IDs {
		for j, id := range ids {
			out[id] = j % subs.Plan.Endpoints
		}
	}
	return out
}

// owed says which subscriptions' deliveries sc expects: not those of
// endpoints that never take one. Nil when it expects all.
func owed(sc scenario, subs *workload.Subs) func(string) bool {
	if len(sc.endpoints) == 0 {
		return nil
	}
	index := endpointOf(subs)
	return func(sub string) bool { return sc.endpoints[index[sub]].owed() }
}

// groups summarizes what each of sc's sets of endpoints got.
func groups(sc scenario, subs *workload.Subs, tally *sink.Tally, prog *workload.Progress, start time.Time) []report.Group {
	if sc.groups == nil {
		return nil
	}
	index := endpointOf(subs)
	paths := subs.Paths()
	byName := map[string]*report.Group{}
	var names []string
	for _, e := range index {
		name := sc.groups(e)
		if byName[name] == nil {
			byName[name] = &report.Group{Name: name}
			names = append(names, name)
		}
		byName[name].Endpoints++
	}
	slices.Sort(names)
	var out []report.Group
	for _, name := range names {
		g := byName[name]
		in := func(sub string) bool { e, ok := index[sub]; return ok && sc.groups(e) == name }
		expected := prog.ExpectedOf(in)
		g.Expected = len(expected)
		g.Lost, _ = tally.Compare(expected)
		mine := map[string]bool{}
		for sub, path := range paths {
			if in(sub) {
				mine[path] = true
			}
		}
		var lat []time.Duration
		var last time.Time
		for _, p := range tally.Paths(func(path string) bool { return mine[path] }) {
			g.Delivered += p.Delivered
			lat = append(lat, p.Latencies...)
			if p.Last.After(last) {
				last = p.Last
			}
		}
		if !last.IsZero() {
			g.PerSecond = float64(g.Delivered) / last.Sub(start).Seconds()
		}
		g.Latency = report.Summarize(lat)
		out = append(out, *g)
	}
	return out
}

// fill writes what the tally and the generator counted into res.
func (b *bench) fill(res *report.Result, tally *sink.Tally, prog *workload.Progress, start time.Time, cpu0, cpu1 map[string]time.Duration) {
	c := tally.Counts()
	res.Events = int(prog.Sent.Load())
	res.Expected = int(prog.Expected.Load())
	res.Delivered, res.Duplicates, res.Retries, res.BadSignatures = c.Delivered, c.Duplicates, c.Retries, c.BadSignatures
	res.Lost, res.Unexpected = tally.Compare(prog.ExpectedIDs())
	for _, note := range b.diagnose(context.Background(), tally.Missing(prog.ExpectedIDs(), 3)) {
		say("%s", note)
		res.Problems = append(res.Problems, note)
	}
	if last := tally.Last(); !last.IsZero() {
		res.Seconds = last.Sub(start).Seconds()
	}
	res.Latency = report.Summarize(tally.Latencies())
	res.CPU = map[string]float64{}
	for name, d := range cpu1 {
		res.CPU[name] = (d - cpu0[name]).Seconds()
	}
	if n := prog.Failed.Load(); n > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d events could not be sent", n))
	}
	if gone := b.stack.Exited(); len(gone) > 0 {
		res.Problems = append(res.Problems, "exited during the run: "+strings.Join(gone, ", "))
	}
}

// await prints progress until the load has been sent and every delivery
// it owes arrived, or drain has passed since the last event was sent.
func (b *bench) await(ctx context.Context, name string, tally *sink.Tally, prog *workload.Progress, sent <-chan struct{}, drain time.Duration, start time.Time) {
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	var deadline time.Time
	lastSay := time.Now()
	for {
		select {
		case <-ctx.Done():
			<-sent
			return
		case <-poll.C:
		}
		finished := false
		select {
		case <-sent:
			finished = true
			if deadline.IsZero() {
				deadline = time.Now().Add(drain)
			}
		default:
		}
		c := tally.Counts()
		expected := int(prog.Expected.Load())
		if time.Since(lastSay) >= b.o.progress {
			lastSay = time.Now()
			el := time.Since(start).Seconds()
			say("%s: %4.0fs sent %d events, delivered %d/%d (%.0f/s), retries %d, duplicates %d",
				name, el, prog.Sent.Load(), c.Delivered, expected, float64(c.Delivered)/el, c.Retries, c.Duplicates)
		}
		if !finished {
			continue
		}
		if c.Delivered >= expected {
			if lost, _ := tally.Compare(prog.ExpectedIDs()); lost == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			say("%s: gave up waiting %s after the last event", name, drain)
			return
		}
	}
}
