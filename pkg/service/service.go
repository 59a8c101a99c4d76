// Package service holds what the four Hookline services share when they
// start: the common settings, logging and telemetry, topic bootstrap, the
// Redis client and the ops endpoints.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/schemaregistry"
	"github.com/hookline/hookline/pkg/secretbox"
	"github.com/hookline/hookline/pkg/ssrf"
	"github.com/hookline/hookline/pkg/telemetry"
	"github.com/hookline/hookline/pkg/wire"
)

// Base is the configuration every service reads.
type Base struct {
	Name           string
	LogLevel       string
	OpsAddr        string
	Kafka          kafka.Config
	Schedule       backoff.Schedule
	SchemaRegistry schemaregistry.Config
}

// BaseFromEnv reads the shared settings; opsAddr is the service's default
// ops port.
func BaseFromEnv(r *config.Reader, name, opsAddr string) Base {
	b := Base{
		Name:           name,
		LogLevel:       r.String("HOOKLINE_LOG_LEVEL", "info", "debug, info, warn or error"),
		OpsAddr:        r.String("HOOKLINE_OPS_ADDR", opsAddr, "address of /healthz, /readyz and /metrics"),
		Kafka:          kafka.ConfigFromEnv(r, name),
		SchemaRegistry: schemaregistry.ConfigFromEnv(r),
	}
	sch, err := backoff.Parse(r.String("HOOKLINE_RETRY_SCHEDULE", backoff.Default, "delay before each retry; one delay topic per entry"))
	if err != nil {
		r.Fail("HOOKLINE_RETRY_SCHEDULE", err)
	}
	b.Schedule = sch
	// OpenTelemetry's SDK reads these itself (telemetry.New); listed here
	// so that -h and the README show them.
	r.EnvOnly("OTEL_EXPORTER_OTLP_ENDPOINT", "", "export traces over OTLP/HTTP to this collector; empty: spans are made (their ids reach Kafka headers and receivers), not exported. The SDK reads its other OTEL_* variables too")
	r.EnvOnly("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "the same for traces alone")
	r.EnvOnly("OTEL_TRACES_SAMPLER", "", "OpenTelemetry's sampler; empty: 1% of traces, unless the parent was sampled")
	return b
}

// Logger is the service's JSON logger.
func (b Base) Logger() zerolog.Logger { return telemetry.Logger(b.Name, b.LogLevel) }

// Bootstrap creates any missing topic, retrying until the cluster answers
// or ctx ends: services may start before the brokers do.
func (b Base) Bootstrap(ctx context.Context, log zerolog.Logger) error {
	cl, err := kafka.NewClient(b.Kafka, log)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	specs := b.Kafka.Topics.All(b.Schedule.Tiers())
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err = kafka.EnsureTopics(ctx, adm, specs, b.Kafka.Partitions, b.Kafka.ReplicationFactor)
		if err == nil {
			names := make([]string, len(specs))
			for i, s := range specs {
				names[i] = s.Name
			}
			// Topics made by an older Hookline keep the broker's ~1 MB
			// record limit; without the permission to raise it the
			// service still runs, and the largest events are refused
			// with 413 instead of accepted.
			raised, err := kafka.RaiseRecordLimit(ctx, adm, names...)
			switch {
			case err != nil:
				log.Warn().Err(err).Int("max_record_bytes", wire.MaxRecordBytes).
					Msg("could not raise max.message.bytes of existing topics; set it by hand (docs/operations.md)")
			case len(raised) > 0:
				log.Info().Strs("topics", raised).Int("max_record_bytes", wire.MaxRecordBytes).Msg("raised max.message.bytes")
			}
			return nil
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("creating topics")
		select {
		case <-ctx.Done():
			return fmt.Errorf("bootstrap topics: %w", err)
		case <-time.After(wait):
		}
	}
}

// RedisFromEnv reads the Redis settings and returns an unconnected client.
func RedisFromEnv(r *config.Reader) *redis.Client { return redis.NewClient(RedisOptionsFromEnv(r)) }

// RedisOptionsFromEnv reads the Redis settings every Hookline program
// shares (hookctl's too).
func RedisOptionsFromEnv(r *config.Reader) *redis.Options {
	opts := &redis.Options{
		Addr:         r.String("REDIS_ADDR", "127.0.0.1:6379", "Redis host:port"),
		Username:     r.String("REDIS_USERNAME", "", "Redis ACL user"),
		Password:     r.String("REDIS_PASSWORD", "", "Redis password"),
		DB:           r.Int("REDIS_DB", 0, "Redis database number"),
		DialTimeout:  2 * time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		PoolSize:     r.Int("REDIS_POOL_SIZE", 64, "Redis connections per process"),
	}
	if r.Bool("REDIS_TLS", false, "connect to Redis with TLS") {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opts
}

// DefaultGCPercent sets the collector's GOGC to percent unless the
// environment sets GOGC. It is for services whose live heap is mostly the
// subscription index (about 30 MB for 10,000 subscriptions) and whose work
// per event or request is short-lived garbage: at Go's default of 100 the
// collector marks the whole index every few thousand of them; at 400 a
// quarter as often, for a heap of about five times the index rather than
// twice.
func DefaultGCPercent(percent int) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(percent)
	}
}

// Main ends a service's main function: it stops the process when the
// settings are wrong (exit 2, every problem listed), help was asked for or
// -check found them valid (exit 0), then calls run with a context that
// SIGINT and SIGTERM cancel, so the service shuts down gracefully, and
// exits 1 if run fails.
func Main(r *config.Reader, b Base, run func(ctx context.Context, log zerolog.Logger) error) {
	if err := r.Err(os.Stderr); err != nil {
		switch {
		case errors.Is(err, config.ErrHelp):
			os.Exit(0)
		case errors.Is(err, config.ErrChecked):
			fmt.Fprintf(os.Stderr, "%s: %v\n", b.Name, err)
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: configuration:\n%s\n", b.Name, err)
		os.Exit(2)
	}
	log := b.Logger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, log)
	stop()
	if err != nil {
		log.Fatal().Err(err).Msg("exit")
	}
	log.Info().Msg("stopped")
}

// Start sets up what every service needs before its own wiring: telemetry
// (call its Shutdown when done), the record codecs (with a schema
// registry's ids when one is configured), and the topics.
func (b Base) Start(ctx context.Context, log zerolog.Logger) (*telemetry.Telemetry, *record.Codecs, error) {
	tel, err := telemetry.New(ctx, b.Name)
	if err != nil {
		return nil, nil, err
	}
	codecs, err := schemaregistry.LoadCodecs(ctx, b.SchemaRegistry, b.Kafka.Topics.Subjects(b.Schedule.Tiers()), log)
	if err == nil {
		err = b.Bootstrap(ctx, log)
	}
	if err != nil {
		_ = tel.Shutdown(context.Background())
		return nil, nil, err
	}
	return tel, codecs, nil
}

// SecretBoxFromEnv reads HOOKLINE_SECRET_KEY, the operator key that seals
// signing secrets and credentials in Kafka, into the box that uses it.
func SecretBoxFromEnv(r *config.Reader) *secretbox.Box {
	key, err := secretbox.ParseKey(r.Required("HOOKLINE_SECRET_KEY", "base64 of 32 random bytes; seals secrets and credentials in Kafka"))
	if err != nil {
		r.Fail("HOOKLINE_SECRET_KEY", err)
		return nil
	}
	box, err := secretbox.New(key)
	if err != nil {
		r.Fail("HOOKLINE_SECRET_KEY", err)
	}
	return box
}

// GuardFromEnv reads HOOKLINE_ALLOW_HOSTS into the SSRF guard: the hosts
// allowed over http and at private addresses (the local demo, tests).
func GuardFromEnv(r *config.Reader) *ssrf.Guard {
	g, err := ssrf.New(r.List("HOOKLINE_ALLOW_HOSTS", "", "hosts allowed over http and at private addresses (demo, tests)"))
	if err != nil {
		r.Fail("HOOKLINE_ALLOW_HOSTS", err)
	}
	return g
}
