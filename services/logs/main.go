// Command logs keeps the delivery history: it reads hookline.events,
// hookline.deliveries, hookline.dlq and hookline.delivery-log in its own
// consumer group and writes them to PostgreSQL (HOOKLINE_POSTGRES_URL) in
// batches, committing offsets only once the rows are durable. It migrates
// the schema at start, creates the coming days' partitions ahead of time
// and drops those past HOOKLINE_LOG_RETENTION. While the database is
// unavailable it pauses, holding its offsets, and catches up afterwards;
// deliveries never wait for it. Ingest's history API reads the store.
// docs/delivery-history.md describes the store, the API and the figures.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/logstore"
	"github.com/hookline/hookline/pkg/logstore/pglogstore"
	"github.com/hookline/hookline/pkg/ops"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/services/logs/internal/history"
)

type settings struct {
	service.Base
	Group       string
	PostgresURL string
	Retention   time.Duration
	MaxConns    int
	MaxBatch    int
	Linger      time.Duration
	Writers     int
	Maintain    time.Duration
}

func main() {
	r := config.FromOS()
	cfg := settings{Base: service.BaseFromEnv(r, "logs", "127.0.0.1:9106")}
	cfg.Group = r.String("HOOKLINE_LOGS_GROUP", cfg.Kafka.Topics.Group("logs"), "consumer group of the logs service on the history's topics")
	cfg.PostgresURL = r.Required("HOOKLINE_POSTGRES_URL", "the delivery history's PostgreSQL, postgres://user:pass@host:5432/db")
	cfg.Retention = r.Duration("HOOKLINE_LOG_RETENTION", logstore.DefaultRetention, "how long the history keeps what it stores; whole days are dropped once older")
	cfg.MaxConns = r.Int("HOOKLINE_POSTGRES_MAX_CONNS", 8, "connections to PostgreSQL per process")
	cfg.MaxBatch = r.Int("HOOKLINE_LOGS_BATCH", history.DefaultMaxBatch, "most records written in one transaction")
	cfg.Linger = r.Duration("HOOKLINE_LOGS_LINGER", history.DefaultLinger, "how long a write waits for more records once it has some")
	cfg.Writers = r.Int("HOOKLINE_LOGS_WRITERS", history.DefaultWriters, "batches written at once")
	cfg.Maintain = r.Duration("HOOKLINE_LOGS_MAINTAIN_EVERY", time.Hour, "how often the coming days' partitions are created and expired days dropped")
	if cfg.Retention < 24*time.Hour {
		r.Fail("HOOKLINE_LOG_RETENTION", errors.New("must be at least 24h: the history is kept in whole days"))
	}
	if cfg.MaxConns < cfg.Writers+1 {
		r.Fail("HOOKLINE_POSTGRES_MAX_CONNS", fmt.Errorf("must be more than HOOKLINE_LOGS_WRITERS (%d): maintenance needs one of its own", cfg.Writers))
	}
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
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	producer, err := kafka.NewClient(cfg.Kafka, log, tel.KafkaHooks())
	if err != nil {
		return err
	}
	defer producer.Close()
	metrics := history.NewMetrics(tel.Registry)
	w := &history.Writer{
		Store: store, Codecs: codecs, Topics: cfg.Kafka.Topics, Producer: producer, Metrics: metrics, Log: log,
		MaxBatch: cfg.MaxBatch, Linger: cfg.Linger, Writers: cfg.Writers,
	}
	topics := history.Topics(cfg.Kafka.Topics)
	consumer, err := kafka.NewConsumer(cfg.Kafka, cfg.Group, topics, w.Handle, log, tel.TraceHooks())
	if err != nil {
		return err
	}

	// The write loop outlives the consumer: the partition handlers wait
	// for it until the consumer has stopped them and committed.
	writeCtx, stopWriting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWriting()
	written := make(chan error, 1)
	go func() { written <- w.Run(writeCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ops.Serve(gctx, cfg.OpsAddr, ops.Handler(tel.Registry, w.Ready)) })
	g.Go(func() error {
		log.Info().Strs("topics", topics).Dur("retention", cfg.Retention).Msg("writing the delivery history")
		return consumer.Run(gctx)
	})
	g.Go(func() error {
		metrics.WatchLag(gctx, kadm.NewClient(producer), cfg.Group, topics, log)
		return nil
	})
	g.Go(func() error { maintain(gctx, store, cfg.Maintain, log); return nil })
	err = g.Wait()
	stopWriting()
	return errors.Join(err, <-written)
}

// openStore opens the store, waiting for the database: a service started
// before PostgreSQL (a fresh stack, a database restarting) waits for it
// rather than exiting.
func openStore(ctx context.Context, cfg settings, log zerolog.Logger) (*pglogstore.Store, error) {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		store, err := pglogstore.Open(ctx, pglogstore.Config{
			URL: cfg.PostgresURL, Retention: cfg.Retention, MaxConns: int32(cfg.MaxConns),
		}, log)
		if err == nil {
			return store, nil
		}
		if !errors.Is(err, logstore.ErrUnavailable) {
			return nil, err
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("the history's database is unavailable; waiting for it")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// maintain creates the coming days' partitions and drops expired ones
// every period (Open did it once at start). Several instances may do it
// at once: the store serialises them.
func maintain(ctx context.Context, store logstore.Writer, every time.Duration, log zerolog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := store.Maintain(ctx); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("history partitions not maintained; retried at the next period")
		}
	}
}
