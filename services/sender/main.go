// Command sender delivers webhooks: it consumes hookline.deliveries, makes
// each signed HTTPS attempt, and writes every attempt to the delivery log
// and every failure to a retry tier or the DLQ.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ops"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/services/sender/internal/dispatch"
)

type settings struct {
	service.Base
	Group         string
	Box           *secretbox.Box
	Guard         *ssrf.Guard
	CAFile        string
	MaxInFlight   int
	PerEndpoint   int
	MaxPerEP      int
	BacklogWait   time.Duration
	MaxBacklog    int
	TopEndpoints  int
	ConnsPerHost  int
	CertClients   int
	DeliveredTTL  time.Duration
	DisableWindow time.Duration
	RateWait      time.Duration
}

func main() {
	r := config.FromOS()
	cfg := settings{Base: service.BaseFromEnv(r, "sender", "127.0.0.1:9103")}
	cfg.Group = r.String("HOOKLINE_SENDER_GROUP", cfg.Kafka.Topics.Group("sender"), "consumer group of the senders")
	cfg.Guard = service.GuardFromEnv(r)
	cfg.CAFile = r.String("HOOKLINE_SENDER_CA_FILE", "", "PEM file of extra CAs to trust for endpoints (private CAs, the local demo)")
	cfg.MaxInFlight = r.Int("HOOKLINE_SENDER_MAX_IN_FLIGHT", dispatch.DefaultMaxInFlight, "requests in flight per instance; a quarter is kept for endpoints with none in flight")
	cfg.PerEndpoint = r.Int("HOOKLINE_SENDER_PER_ENDPOINT", dispatch.DefaultPerEndpoint, "an endpoint's starting concurrency, adapted from there (AIMD); 1 when ordered")
	cfg.MaxPerEP = r.Int("HOOKLINE_SENDER_PER_ENDPOINT_MAX", dispatch.DefaultMaxPerEndpoint, "the most an endpoint's adaptive concurrency grows to when its subscription sets no max_in_flight")
	cfg.BacklogWait = r.Duration("HOOKLINE_SENDER_BACKLOG_WAIT", dispatch.DefaultBacklogWait, "longest a delivery is expected to wait in its endpoint's in-memory backlog before it is parked in a retry tier instead")
	cfg.MaxBacklog = r.Int("HOOKLINE_SENDER_MAX_BACKLOG", dispatch.DefaultMaxBacklog, "deliveries a partition holds in memory (about 2.5 KiB each); past it, it takes no more records until some are done")
	cfg.TopEndpoints = r.Int("HOOKLINE_SENDER_METRICS_TOP_ENDPOINTS", dispatch.DefaultTopEndpoints, "endpoints shown by the per-endpoint metrics (those with the largest backlog)")
	cfg.ConnsPerHost = r.Int("HOOKLINE_SENDER_CONNS_PER_HOST", 32, "connections per endpoint host")
	for name, v := range map[string]int{"HOOKLINE_SENDER_MAX_IN_FLIGHT": cfg.MaxInFlight, "HOOKLINE_SENDER_PER_ENDPOINT": cfg.PerEndpoint,
		"HOOKLINE_SENDER_PER_ENDPOINT_MAX": cfg.MaxPerEP, "HOOKLINE_SENDER_MAX_BACKLOG": cfg.MaxBacklog, "HOOKLINE_SENDER_METRICS_TOP_ENDPOINTS": cfg.TopEndpoints} {
		if v < 1 {
			r.Fail(name, fmt.Errorf("must be at least 1"))
		}
	}
	if cfg.BacklogWait <= 0 {
		r.Fail("HOOKLINE_SENDER_BACKLOG_WAIT", fmt.Errorf("must be positive"))
	}
	cfg.CertClients = r.Int("HOOKLINE_SENDER_CLIENT_CERTS", deliver.DefaultMaxCertClients, "client certificates (mutual TLS) whose connection pools are kept at once; the least recently used beyond are dropped")
	cfg.RateWait = r.Duration("HOOKLINE_SENDER_RATE_LIMIT_WAIT", dispatch.DefaultRateLimitWait, "longest a delivery waits in memory for its endpoint's rate limit before going through the retry scheduler")
	cfg.DeliveredTTL = r.Duration("HOOKLINE_DELIVERED_TTL", 7*24*time.Hour, "how long a delivered id is remembered to suppress re-sends")
	cfg.DisableWindow = r.Duration("HOOKLINE_DISABLE_WINDOW", 5*24*time.Hour, "how long an endpoint may fail without a success before its subscription is disabled")
	cfg.Box = service.SecretBoxFromEnv(r)
	rdb := service.RedisFromEnv(r)
	service.Main(r, cfg.Base, func(ctx context.Context, log zerolog.Logger) error {
		return run(ctx, cfg, rdb, log)
	})
}

func run(ctx context.Context, cfg settings, rdb *redis.Client, log zerolog.Logger) error {
	tel, codecs, err := cfg.Start(ctx, log)
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	box, guard := cfg.Box, cfg.Guard
	roots, err := deliver.RootCAs(cfg.CAFile)
	if err != nil {
		return fmt.Errorf("HOOKLINE_SENDER_CA_FILE: %w", err)
	}
	producer, err := kafka.NewClient(cfg.Kafka, log, tel.KafkaHooks())
	if err != nil {
		return err
	}
	defer producer.Close()

	view := subscription.NewView(cfg.Kafka.Topics, codecs, log)
	keys := cfg.Kafka.Topics.Keys()
	clientOpts := deliver.ClientOptions{Guard: guard, RootCAs: roots, MaxConnsPerHost: cfg.ConnsPerHost}
	d := &dispatch.Dispatcher{
		Client:         deliver.NewClient(clientOpts),
		Certs:          deliver.NewClients(clientOpts, cfg.CertClients),
		View:           view,
		Codecs:         codecs,
		Topics:         cfg.Kafka.Topics,
		Schedule:       cfg.Schedule,
		Producer:       producer,
		Delivered:      idempotency.New(rdb, keys.Delivered(), cfg.DeliveredTTL),
		Claims:         claim.New(rdb, keys.Claims()),
		Limiter:        ratelimit.New(rdb, keys.Rate()),
		Health:         health.New(rdb, keys.Health(), cfg.DisableWindow),
		Tails:          dispatch.NewTails(rdb, keys.Parked(), 24*time.Hour),
		Box:            box,
		Guard:          guard,
		Metrics:        dispatch.NewMetrics(tel.Registry, cfg.TopEndpoints),
		Log:            log,
		Now:            time.Now,
		PerEndpoint:    cfg.PerEndpoint,
		MaxPerEndpoint: cfg.MaxPerEP,
		MaxInFlight:    cfg.MaxInFlight,
		BacklogWait:    cfg.BacklogWait,
		MaxBacklog:     cfg.MaxBacklog,
		RateLimitWait:  cfg.RateWait,
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return view.Run(ctx, cfg.Kafka) })
	g.Go(func() error { return ops.Serve(ctx, cfg.OpsAddr, ops.Handler(tel.Registry, view.Ready)) })
	g.Go(func() error {
		// Deliveries need their subscription's secrets: start once the view
		// has caught up.
		if err := view.WaitReady(ctx); err != nil {
			return nil
		}
		consumer, err := kafka.NewStreamConsumer(cfg.Kafka, cfg.Group, []string{cfg.Kafka.Topics.Deliveries}, d.Run, log, tel.TraceHooks())
		if err != nil {
			return err
		}
		log.Info().Msg("sending")
		return consumer.Run(ctx)
	})
	return g.Wait()
}
