// Command hookload benchmarks Hookline end to end on one machine: it builds
// the four services, runs them as processes against the real Kafka broker
// and Redis (KAFKA_BROKERS, REDIS_ADDR) under a topic prefix of their own,
// creates subscriptions through the API that point at its own HTTPS sink,
// sends events, waits for every delivery, measures a plain-client ceiling
// against the same sink, and prints a markdown table (JSON under results/).
// The fault suite runs on private Kafka clusters and Redis servers that it
// starts and stops itself (deploy/scripts), so it needs neither variable.
//
//	hookload -size quick                       # every scenario, small
//	hookload -size full -scenarios throughput  # one scenario, full size
//	hookload -faults                           # the fault suite instead
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/pkg/config"
)

type options struct {
	size       string
	scenarios  []string
	via        string
	payload    int
	events     int
	rate       float64
	drain      time.Duration
	partitions int
	schedule   string
	repo       string
	bin        string
	brokerPIDs string // comma-separated, for the broker's CPU
	work       string
	results    string
	progress   time.Duration
	timeout    time.Duration
	seed       uint64
	faults     bool
	sinkFaults sink.Faults   // replace the scenarios' own when set
	sinkDown   time.Duration // take the sink down this long, 5 s into each scenario
	brokers    string
	redis      string
}

func main() {
	var o options
	var names string
	// Its settings are environment variables, its options flags.
	env := config.FromEnv(os.LookupEnv)
	o.brokers = env.String("KAFKA_BROKERS", "", "the Kafka broker(s) of the benchmarks; the fault suite (-faults) starts its own")
	o.redis = env.String("REDIS_ADDR", "", "the Redis of the benchmarks; the fault suite starts its own")
	flag.Usage = func() {
		w := flag.CommandLine.Output()
		fmt.Fprintf(w, "Usage: hookload [flags]\n\nBenchmarks Hookline end to end on this machine (make bench, bench-quick, test-faults).\n\nFlags:\n")
		flag.PrintDefaults()
		fmt.Fprintln(w)
		env.Usage(w)
	}
	flag.StringVar(&o.size, "size", "quick", "quick or full")
	flag.StringVar(&names, "scenarios", "", "comma-separated scenarios to run (default: all): "+strings.Join(scenarioNames, ", ")+"; with -faults, the rounds: "+strings.Join(roundNames(), ", "))
	flag.StringVar(&o.via, "via", "", "send events via kafka or http for every scenario (default: each scenario's own)")
	flag.IntVar(&o.payload, "payload", 1024, "bytes of event data")
	flag.DurationVar(&o.drain, "drain", 0, "how long to wait for deliveries after the last event (default: each scenario's own, 1-3 min)")
	flag.IntVar(&o.events, "events", 0, "events per scenario (default: the size's)")
	flag.Float64Var(&o.rate, "rate", 0, "events per second for every scenario (default: each scenario's own; latency is 1,000/s)")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions of the run's topics")
	flag.StringVar(&o.schedule, "schedule", "1s,2s,5s,10s", "HOOKLINE_RETRY_SCHEDULE of the services")
	flag.StringVar(&o.repo, "repo", "", "repository root (default: the go.work above the working directory)")
	flag.StringVar(&o.bin, "bin", "", "use the service binaries in this folder instead of building them")
	flag.StringVar(&o.work, "work", "", "folder for the binaries, the services' logs and the fault suite's private Kafka and Redis (default: a temporary one, removed at the end)")
	flag.StringVar(&o.results, "results", "", "folder of the JSON reports (default: <repo>/results)")
	flag.DurationVar(&o.progress, "progress", 3*time.Second, "interval of the progress lines")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "the whole run stops after this")
	flag.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "seed of the event and fault dice")
	flag.Float64Var(&o.sinkFaults.ErrorRate, "sink-error-rate", 0, "fraction of requests the sink answers 503 (replaces the scenarios' faults, as do the other -sink flags)")
	flag.Float64Var(&o.sinkFaults.ThrottleRate, "sink-throttle-rate", 0, "fraction answered 429 with Retry-After: -sink-retry-after")
	flag.DurationVar(&o.sinkFaults.RetryAfter, "sink-retry-after", time.Second, "Retry-After of the 429s")
	flag.Float64Var(&o.sinkFaults.SlowRate, "sink-slow-rate", 0, "fraction answered 204 after -sink-slow")
	flag.DurationVar(&o.sinkFaults.Slow, "sink-slow", 500*time.Millisecond, "delay of slow answers")
	flag.Float64Var(&o.sinkFaults.TimeoutRate, "sink-timeout-rate", 0, "fraction never answered until the sender gives up (at most 30s)")
	flag.Float64Var(&o.sinkFaults.ResetRate, "sink-reset-rate", 0, "fraction whose connection (HTTP/1.1) or stream (HTTP/2) is reset")
	flag.DurationVar(&o.sinkDown, "sink-down", 0, "take the sink off the network this long, 5s into each scenario")
	flag.StringVar(&o.brokerPIDs, "broker-pids", "", "comma-separated process ids of the Kafka brokers, whose CPU the report shows (bench.sh passes those of deploy/scripts/infra.sh)")
	flag.BoolVar(&o.faults, "faults", false, "run the fault suite instead of the benchmarks: kill and restart services, Redis, PostgreSQL and Kafka brokers on a private cluster, take the sink down, scale out and in; attempts in the topic = attempts in the history")
	flag.Parse()
	if names != "" {
		o.scenarios = strings.Split(names, ",")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "hookload:", err)
		os.Exit(1)
	}
}

// say prints a progress or status line on stderr; stdout is the report's.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}
