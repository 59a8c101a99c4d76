// Command retry is Hookline's delay scheduler: it consumes every retry tier
// topic and puts each delivery back on hookline.deliveries when it is due.
//
// A release is exactly-once on Kafka: the released deliveries and the tier
// offsets they came from are committed in one transaction
// (kafka.Transactor), so a scheduler killed at any moment neither loses a
// delivery nor puts one back twice, and read-committed consumers (the
// sender) never see a release whose offsets were not committed. franz-go's
// GroupTransactSession would commit every polled offset, including those of
// records still waiting for their due time, so the Transactor commits
// exactly the offsets of the released records instead, stamped with the
// group generation so that a member that lost its partitions is fenced.
// HOOKLINE_RETRY_TRANSACTIONAL_ID must be unique per running instance and
// stable across its restarts.
package main

import (
	"context"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ops"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/services/retry/internal/schedule"
)

type settings struct {
	service.Base
	Group         string
	TransactionID string
}

func main() {
	r := config.FromOS()
	cfg := settings{Base: service.BaseFromEnv(r, "retry", "127.0.0.1:9104")}
	cfg.Group = r.String("HOOKLINE_RETRY_GROUP", cfg.Kafka.Topics.Group("retry"), "consumer group of the retry schedulers")
	host, _ := os.Hostname()
	cfg.TransactionID = r.String("HOOKLINE_RETRY_TRANSACTIONAL_ID", cfg.Kafka.Topics.TransactionalID("retry", host),
		"transactional.id of the releases; stable per instance (e.g. the pod name) so that a restart fences its predecessor at once")
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
	lateness := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookline_retry_release_lateness_seconds",
		Help:    "How long after its due time a delivery was put back on hookline.deliveries.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	tel.Registry.MustRegister(lateness)
	s := &schedule.Scheduler{Codecs: codecs, Topics: cfg.Kafka.Topics, Log: log, Now: time.Now, Lateness: lateness}
	var topics []string
	for _, tier := range cfg.Schedule.Tiers() {
		topics = append(topics, cfg.Kafka.Topics.Retry(tier))
	}
	consumer, err := kafka.NewConsumer(cfg.Kafka, cfg.Group, topics, s.Handle, log, tel.TraceHooks())
	if err != nil {
		return err
	}
	txn, err := kafka.NewTransactor(ctx, cfg.Kafka, consumer, cfg.TransactionID, log, tel.KafkaHooks())
	if err != nil {
		consumer.Client().Close()
		return err
	}
	defer txn.Close() // after the consumer's last release
	s.Release = txn.Commit
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return ops.Serve(ctx, cfg.OpsAddr, ops.Handler(tel.Registry, func() error { return nil }))
	})
	g.Go(func() error {
		log.Info().Strs("tiers", topics).Msg("scheduling")
		return txn.Run(ctx) // the consumer, until ctx ends or the producer cannot commit
	})
	return g.Wait()
}
