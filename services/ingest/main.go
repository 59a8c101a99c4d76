// Command ingest is Hookline's front door: the HTTP API (events,
// subscriptions, the read-only schema registry) and the bridge from the
// JSON ingest topic. It writes to hookline.events and hookline.subscriptions.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/claim"
	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/dlq"
	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/logstore/pglogstore"
	"github.com/hookline/hookline/pkg/ops"
	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/services/ingest/internal/api"
	"github.com/hookline/hookline/services/ingest/internal/bridge"
	"github.com/hookline/hookline/services/ingest/internal/catalog"
	"github.com/hookline/hookline/services/ingest/internal/console"
	"github.com/hookline/hookline/services/ingest/internal/deadletters"
	"github.com/hookline/hookline/services/ingest/internal/event"
	"github.com/hookline/hookline/services/ingest/internal/immediate"
	"github.com/hookline/hookline/services/ingest/internal/outcome"
)

type settings struct {
	service.Base
	HTTPAddr  string
	Group     string
	MaxBody   int64
	Keys      api.Keys
	Box       *secretbox.Box
	Guard     *ssrf.Guard
	DedupeTTL time.Duration

	PingWaiters, PingWaitersTenant int

	PublicURL      string
	FrameAncestors []string

	// Immediate mode (package immediate).
	CAFile                        string
	ConnsPerHost, CertClients     int
	ImmediateMax, ImmediateTenant int
	DeliveredTTL                  time.Duration

	PostgresURL      string
	PostgresMaxConns int
	HistoryTimeout   time.Duration
}

// gcPercent is ingest's GOGC unless the environment sets one
// (service.DefaultGCPercent): it holds the subscription index for
// immediate mode, and every request is short-lived garbage. In the
// api-alone benchmark (three pairs) it cut ingest's CPU by about 14% and
// raised the events accepted per second by about as much.
const gcPercent = 400

func main() {
	service.DefaultGCPercent(gcPercent)
	r := config.FromOS()
	cfg := settings{Base: service.BaseFromEnv(r, "ingest", "127.0.0.1:9101")}
	cfg.HTTPAddr = r.String("HOOKLINE_HTTP_ADDR", "127.0.0.1:8080", "address of the HTTP API")
	cfg.Group = r.String("HOOKLINE_INGEST_GROUP", cfg.Kafka.Topics.Group("ingest"), "consumer group of the JSON ingest bridges")
	cfg.MaxBody = int64(r.Int("HOOKLINE_MAX_BODY_BYTES", event.MaxBodyBytes,
		"largest request body accepted; at most 1048576, what the pipeline's record limits are sized for (docs/limits.md)"))
	if cfg.MaxBody < 1 || cfg.MaxBody > event.MaxBodyBytes {
		r.Fail("HOOKLINE_MAX_BODY_BYTES", fmt.Errorf("must be 1 to %d: every event accepted must fit through the pipeline", event.MaxBodyBytes))
	}
	cfg.Guard = service.GuardFromEnv(r)
	cfg.PingWaiters = r.Int("HOOKLINE_PING_WAITERS", outcome.DefaultMaxWaiting, "test pings waiting for their outcome at once (?wait), per instance; beyond, they answer 202 at once")
	cfg.PingWaitersTenant = r.Int("HOOKLINE_PING_WAITERS_PER_TENANT", outcome.DefaultMaxWaitingTenant, "of those, per tenant")
	cfg.DedupeTTL = r.Duration("HOOKLINE_EVENT_DEDUPE_TTL", 24*time.Hour, "how long a producer's event id is remembered")
	keys, err := api.ParseKeys(r.List("HOOKLINE_API_KEYS", "", "tenant=key pairs (or tenant=sha256:<hex of the key>)"))
	if err != nil {
		r.Fail("HOOKLINE_API_KEYS", err)
	}
	cfg.Keys = keys
	cfg.Box = service.SecretBoxFromEnv(r)
	cfg.PublicURL = r.String("HOOKLINE_PUBLIC_URL", "", "where people reach this API, for portal links (e.g. https://hooks.example.com); empty: the address a portal session was asked at")
	cfg.FrameAncestors = r.List("HOOKLINE_PORTAL_FRAME_ANCESTORS", "", "origins allowed to embed the console in an iframe, e.g. https://app.example.com; empty: none")
	if err := console.CheckFrameAncestors(cfg.FrameAncestors); err != nil {
		r.Fail("HOOKLINE_PORTAL_FRAME_ANCESTORS", err)
	}
	cfg.CAFile = r.String("HOOKLINE_SENDER_CA_FILE", "", "PEM file of extra CAs to trust for endpoints (private CAs, the local demo)")
	cfg.ConnsPerHost = r.Int("HOOKLINE_SENDER_CONNS_PER_HOST", 32, "connections per endpoint host")
	cfg.CertClients = r.Int("HOOKLINE_SENDER_CLIENT_CERTS", deliver.DefaultMaxCertClients, "client certificates (mutual TLS) whose connection pools are kept at once; the least recently used beyond are dropped")
	cfg.DeliveredTTL = r.Duration("HOOKLINE_DELIVERED_TTL", 7*24*time.Hour, "how long a delivered id is remembered to suppress re-sends")
	cfg.ImmediateMax = r.Int("HOOKLINE_IMMEDIATE_MAX_IN_FLIGHT", immediate.DefaultMaxInFlight, "immediate-mode attempts in flight per instance; beyond, deliveries are queued (the pipeline delivers them)")
	cfg.ImmediateTenant = r.Int("HOOKLINE_IMMEDIATE_MAX_IN_FLIGHT_PER_TENANT", immediate.DefaultMaxInFlightTenant, "of those, per tenant")
	for name, v := range map[string]int{"HOOKLINE_SENDER_CONNS_PER_HOST": cfg.ConnsPerHost, "HOOKLINE_IMMEDIATE_MAX_IN_FLIGHT": cfg.ImmediateMax, "HOOKLINE_IMMEDIATE_MAX_IN_FLIGHT_PER_TENANT": cfg.ImmediateTenant} {
		if v < 1 {
			r.Fail(name, fmt.Errorf("must be at least 1"))
		}
	}
	cfg.PostgresURL = r.String("HOOKLINE_POSTGRES_URL", "", "the delivery history's PostgreSQL (the logs service's), read by the history API; empty: the history API answers 404")
	cfg.PostgresMaxConns = r.Int("HOOKLINE_POSTGRES_MAX_CONNS", 8, "connections to PostgreSQL per process")
	cfg.HistoryTimeout = r.Duration("HOOKLINE_HISTORY_QUERY_TIMEOUT", 5*time.Second, "longest a history query may run; beyond, the call answers 503")
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
	producer, err := kafka.NewClient(cfg.Kafka, log, tel.KafkaHooks())
	if err != nil {
		return err
	}
	defer producer.Close()

	view := subscription.NewView(cfg.Kafka.Topics, codecs, log)
	ix := index.New(log) // immediate mode matches as the matcher does
	view.OnChange(ix.Update)
	types := catalog.New(cfg.Kafka.Topics, codecs, log)
	keys := cfg.Kafka.Topics.Keys()
	events := idempotency.New(rdb, keys.EventIDs(), cfg.DedupeTTL)
	srv := &api.Server{
		Producer: producer, EventWrites: kafka.NewGroup(producer), View: view, Codecs: codecs, Topics: cfg.Kafka.Topics, Keys: cfg.Keys,
		Events: events, Box: box, Guard: guard, Tiers: cfg.Schedule.Tiers(), MaxBody: cfg.MaxBody,
		Log: log, Now: time.Now,
		Replay: func(ctx context.Context, f dlq.Filter) ([]string, error) {
			return dlq.Replay(ctx, cfg.Kafka, codecs, producer, f)
		},
	}
	roots, err := deliver.RootCAs(cfg.CAFile)
	if err != nil {
		return fmt.Errorf("HOOKLINE_SENDER_CA_FILE: %w", err)
	}
	clientOpts := deliver.ClientOptions{Guard: guard, RootCAs: roots, MaxConnsPerHost: cfg.ConnsPerHost}
	srv.Immediate = &immediate.Deliverer{
		Index: ix, Opener: deliver.Opener{Box: box, Certs: deliver.NewClients(clientOpts, cfg.CertClients)},
		Client: deliver.NewClient(clientOpts), Guard: guard, Limiter: ratelimit.New(rdb, keys.Rate()),
		Claims: claim.New(rdb, keys.Claims()), Delivered: idempotency.New(rdb, keys.Delivered(), cfg.DeliveredTTL),
		Producer: producer, Codecs: codecs, Topics: cfg.Kafka.Topics, Schedule: cfg.Schedule, Log: log, Now: time.Now,
		MaxInFlight: cfg.ImmediateMax, MaxInFlightTenant: cfg.ImmediateTenant, Metrics: immediate.NewMetrics(tel.Registry),
	}
	// A shutdown lets the attempts under way end and settle their claims
	// (the producer, closed later, writes their delivery log records).
	defer srv.Immediate.Wait()
	outcomes, err := outcome.New(cfg.Kafka, codecs, log, cfg.PingWaiters, cfg.PingWaitersTenant)
	if err != nil {
		return err
	}
	srv.Outcomes, srv.Catalog = outcomes, types
	letters := deadletters.New(cfg.Kafka, codecs, log, 0)
	srv.DeadLetters, srv.Health = letters, health.New(rdb, keys.Health(), 0)
	srv.Portal = api.NewPortal(box.Derive(api.PortalKeyPurpose), cfg.PublicURL)
	if srv.Console, err = console.Handler(console.Options{FrameAncestors: cfg.FrameAncestors}); err != nil {
		return err
	}
	if cfg.PostgresURL != "" {
		// Read-only: the logs service owns the schema. Opening does not
		// connect, so ingest starts while the database is down and the
		// history API answers 503 meanwhile.
		history, err := pglogstore.Open(ctx, pglogstore.Config{URL: cfg.PostgresURL, ReadOnly: true,
			MaxConns: int32(cfg.PostgresMaxConns), QueryTimeout: cfg.HistoryTimeout}, log)
		if err != nil {
			return err
		}
		defer history.Close()
		srv.History = history
		srv.EventRedeliveries = idempotency.New(rdb, cfg.Kafka.Topics.Keys().EventRedeliveries(), api.EventRedeliveryTTL)
	}
	br := &bridge.Bridge{Producer: producer, Codecs: codecs, Topics: cfg.Kafka.Topics, Events: events, Log: log, Now: time.Now}
	consumer, err := kafka.NewConsumer(cfg.Kafka, cfg.Group, []string{cfg.Kafka.Topics.IngestJSON}, br.Handle, log, tel.TraceHooks())
	if err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return view.Run(ctx, cfg.Kafka) })
	g.Go(func() error { return consumer.Run(ctx) })
	g.Go(func() error { return outcomes.Run(ctx) })
	g.Go(func() error { return types.Run(ctx, cfg.Kafka) })
	g.Go(func() error { return letters.Run(ctx) })
	ready := func() error { return errors.Join(view.Ready(), types.Ready()) }
	g.Go(func() error { return ops.Serve(ctx, cfg.OpsAddr, ops.Handler(tel.Registry, ready)) })
	g.Go(func() error {
		log.Info().Str("addr", cfg.HTTPAddr).Msg("API listening")
		return ops.Serve(ctx, cfg.HTTPAddr, srv.Handler())
	})
	return g.Wait()
}
