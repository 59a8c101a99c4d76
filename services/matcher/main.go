// Command matcher joins hookline.events with every subscription and writes
// one Delivery per match to hookline.deliveries, in Kafka transactions. It
// also shapes the old events of hookline.redeliveries for the one
// subscription each names (the history API's "send to another endpoint").
package main

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/crashguard"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ops"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/telemetry"
	"github.com/hookline/hookline/services/matcher/internal/match"
)

// gcPercent is the matcher's GOGC unless the environment sets one
// (service.DefaultGCPercent): it cut the CPU per event by 10 to 20% in
// the benchmarks (see README.md).
const gcPercent = 400

type settings struct {
	service.Base
	Group         string
	TransactionID string
	// CrashLimit is the crashes after which an event is quarantined; 0
	// turns the crash guard (and the matcher's use of Redis) off.
	CrashLimit int
	Redis      *redis.Client
	// CrashEventType, for tests only: an event of this type makes the
	// process kill itself, as an out-of-memory kill would.
	CrashEventType string
}

func main() {
	service.DefaultGCPercent(gcPercent)
	r := config.FromOS()
	cfg := settings{Base: service.BaseFromEnv(r, "matcher", "127.0.0.1:9102")}
	host, _ := os.Hostname()
	cfg.Group = r.String("HOOKLINE_MATCHER_GROUP", cfg.Kafka.Topics.Group("matcher"), "consumer group of the matchers")
	cfg.TransactionID = r.String("HOOKLINE_TRANSACTIONAL_ID", cfg.Kafka.Topics.TransactionalID("matcher", host),
		"transactional.id; stable per instance (e.g. the pod name) so that a restart fences its predecessor at once")
	cfg.CrashLimit = r.Int("HOOKLINE_CRASH_LIMIT", crashguard.DefaultLimit,
		"crashes of the process on one event after which it is quarantined to the rejected topic; 0 turns the crash guard off (it keeps its counts in Redis)")
	if cfg.CrashLimit > 0 {
		cfg.Redis = service.RedisFromEnv(r)
	}
	cfg.CrashEventType = r.String("HOOKLINE_TEST_CRASH_EVENT_TYPE", "",
		"tests only: the matcher SIGKILLs itself on an event of this type, to exercise the crash guard")
	service.Main(r, cfg.Base, func(ctx context.Context, log zerolog.Logger) error {
		return run(ctx, cfg, log)
	})
}

func run(ctx context.Context, cfg settings, log zerolog.Logger) error {
	tel, codecs, err := cfg.Start(ctx, log)
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	ix := index.New(log)
	view := subscription.NewView(cfg.Kafka.Topics, codecs, log)
	view.OnChange(ix.Update)
	m := &match.Matcher{Index: ix, Codecs: codecs, Topics: cfg.Kafka.Topics, Now: time.Now, Metrics: match.NewMetrics(tel.Registry),
		Fresh: match.Fresh(view.Syncs(), clockMargin)}
	if cfg.Redis != nil {
		defer cfg.Redis.Close()
		m.Guard = crashguard.New(cfg.Redis, cfg.Kafka.Topics.Keys().Crash(), cfg.Group, cfg.CrashLimit)
	}
	if cfg.CrashEventType != "" {
		log.Warn().Str("event_type", cfg.CrashEventType).Msg("HOOKLINE_TEST_CRASH_EVENT_TYPE is set: this matcher kills itself on such events")
		m.Fault = func(ev *record.Event, e *index.Entry) {
			if e == nil && ev.Type == cfg.CrashEventType {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}

	var matching atomic.Bool

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return view.Run(ctx, cfg.Kafka) })
	g.Go(func() error {
		return ops.Serve(ctx, cfg.OpsAddr, ops.Handler(tel.Registry, readiness(view.Ready, &matching)))
	})
	g.Go(func() error {
		// Matching against a partial index would miss deliveries: join the
		// group only once every subscription is known.
		if err := view.WaitReady(ctx); err != nil {
			return nil
		}
		return consume(ctx, cfg, m, tel, &matching, log)
	})
	return g.Wait()
}

// consume joins the matchers' group and matches its partitions' events
// in Kafka transactions until ctx ends or the transactional producer can
// never commit again (fenced by a newer instance with the same
// transactional id, or left in a transaction it could not end): then it
// returns the error, so that the process exits and its supervisor starts
// a fresh instance, which finishes that transaction.
func consume(ctx context.Context, cfg settings, m *match.Matcher, tel *telemetry.Telemetry, matching *atomic.Bool, log zerolog.Logger) error {
	topics := []string{cfg.Kafka.Topics.Events, cfg.Kafka.Topics.Redeliveries}
	var txn *kafka.Transactor // made for the consumer, before its first batch
	handle := m.Handler(func(ctx context.Context, records []*kgo.Record, through ...*kgo.Record) error {
		return txn.Commit(ctx, records, through...)
	}, log)
	m.Gather = func(ctx context.Context, b kafka.Batch) kafka.Batch { return txn.Gather(ctx, b) }
	// Only one client may carry the client metrics: the consumer's. Both
	// clients are traced.
	consumer, err := kafka.NewConsumer(cfg.Kafka, cfg.Group, topics, handle, log, tel.KafkaHooks())
	if err != nil {
		return err
	}
	txn, err = kafka.NewTransactor(ctx, cfg.Kafka, consumer, cfg.TransactionID, log, tel.TraceHooks())
	if err != nil {
		consumer.Client().Close()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer txn.Close() // after the consumer's last commit
	matching.Store(true)
	defer matching.Store(false)
	log.Info().Int("subscriptions", m.Index.Len()).Msg("matching")
	return txn.Run(ctx)
}

// clockMargin is how far apart the clocks of ingest's and the matcher's
// machines may be for match.Fresh to see every subscription created
// before an event.
const clockMargin = time.Second

// errNotMatching is why the matcher is not ready once the view is.
var errNotMatching = errors.New("transactional producer not started")

// readiness is /readyz: ready once the index holds every subscription (the
// view has caught up) and the transactional producer has started, so that
// a ready matcher is one that is matching events.
func readiness(viewReady func() error, matching *atomic.Bool) func() error {
	return func() error {
		if err := viewReady(); err != nil {
			return err
		}
		if !matching.Load() {
			return errNotMatching
		}
		return nil
	}
}
