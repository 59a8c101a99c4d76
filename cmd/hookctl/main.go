// Command hookctl is the command line for Hookline's SREs and analysts:
// subscriptions and events through the ingest API, the delivery log, the
// DLQ and the alert emails sent straight from Kafka, and consumer-group lag.
//
//	hookctl [-o table|json] <command> [args]
//
// Exit codes: 0 success, 1 the operation failed, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/schemaregistry"
	"github.com/hookline/hookline/pkg/service"
)

const usage = `hookctl: manage and inspect Hookline

Usage: hookctl [-o table|json] <command> [args]

Settings come from the environment, then from .hookline/hookline.env
(HOOKLINE_ENV_FILE), which ` + "`make run`" + ` writes, so hookctl run from the
repository finds the local stack. They are the services' own: a TLS or SASL
cluster, a Redis with a password or TLS, a schema registry are reached as
the services reach them (the list is at the end).

Subscriptions and events (ingest API; HOOKLINE_API_URL, HOOKLINE_API_KEY):
  subs list                      list the tenant's subscriptions
  subs get <id>                  show one subscription
  subs create -f <file.json>     create from a JSON file ("-" for stdin)
  subs enable|disable <id>       turn delivery on or off
  subs rotate <id>               rotate the signing secret
  subs test <id>                 send a test ping and show its first attempt
  events send <type> <json-data> publish an event

Delivery history (ingest API, when it has HOOKLINE_POSTGRES_URL):
  logs <subscription-id> [-status S] [-since T] [-until T] [-n N]
                                 its attempts, newest first (S: delivered,
                                 retrying, failed; T: RFC 3339 or a duration
                                 ago, e.g. 2h)
  logs show <delivery-id>        one delivery, its payload and every attempt
                                 (request headers and body, the answer)
  redeliver <delivery-id>        one new attempt now, same webhook-id
  redeliver -event E -sub S [-new]
                                 send an old event to a subscription (-new:
                                 even if it was sent there before)
  redeliver -recover S -since T [-until T]
                                 send again the failed deliveries of a window
  stats [-since T] [-until T] [-n N]
                                 attempts of a window (the last hour) by
                                 outcome with latency, in all and for the N
                                 (20) endpoints failing most

Kafka (KAFKA_BROKERS, HOOKLINE_TOPIC_PREFIX; HOOKLINE_SCHEMA_REGISTRY_URL when the services use one):
  tail [-f] [-tenant T] [-sub S] [-outcome O] [-n N]
                                 delivery-log records, decoded from Avro, in
                                 the order they started (-n: the last N)
  dlq list [-sub S] [-n N]       dead-lettered deliveries
  dlq replay -tenant T (-id ID[,ID] | -sub S [-since T] [-until T])
                                 send dead letters again (same webhook-id)
  lag                            consumer-group lag of every Hookline service
  notifications [-tenant T] [-sub S] [-kind K] [-n N]
                                 the N (20) most recent alert emails and what became
                                 of each recipient (hookline.notifications)

Redis (REDIS_ADDR):
  health <subscription-id>...    each endpoint's current failure streak
`

// errUsage marks a mistake in how hookctl was called (exit code 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		help(os.Stderr)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "hookctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	global := flag.NewFlagSet("hookctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	format := global.String("o", "table", "output: table or json")
	if err := global.Parse(args); errors.Is(err, flag.ErrHelp) {
		help(stdout)
		return nil
	} else if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: -o must be table or json", errUsage)
	}
	out := &printer{w: stdout, json: *format == "json"}
	rest := global.Args()
	if len(rest) == 0 {
		return fmt.Errorf("%w: no command", errUsage)
	}
	env, err := envFromOS()
	if err != nil {
		return err
	}
	out.noColor = env.NoColor
	switch rest[0] {
	case "subs":
		return subsCommand(ctx, env, out, rest[1:])
	case "events":
		return eventsCommand(ctx, env, out, rest[1:])
	case "tail":
		return tailCommand(ctx, env, out, rest[1:])
	case "dlq":
		return dlqCommand(ctx, env, out, rest[1:])
	case "logs":
		return logsCommand(ctx, env, out, rest[1:])
	case "redeliver":
		return redeliverCommand(ctx, env, out, rest[1:])
	case "stats":
		return statsCommand(ctx, env, out, rest[1:])
	case "lag":
		return lagCommand(ctx, env, out)
	case "notifications":
		return notificationsCommand(ctx, env, out, rest[1:])
	case "health":
		return healthCommand(ctx, env, out, rest[1:])
	case "help":
		help(stdout)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, rest[0])
	}
}

// help writes the usage and every setting hookctl reads.
func help(w io.Writer) {
	fmt.Fprint(w, usage+"\n")
	_, r, _ := readEnv(os.LookupEnv)
	r.Usage(w)
}

// env is where hookctl finds Hookline.
type env struct {
	APIURL   string
	APIKey   string
	Kafka    kafka.Config
	Redis    *redis.Options
	Registry schemaregistry.Config
	NoColor  bool
}

// DefaultEnvFile is where `make run` writes where its stack listens.
const DefaultEnvFile = ".hookline/hookline.env"

// envFromOS reads every setting of hookctl from the process environment,
// then the env file; a setting that is wrong is an error naming it.
func envFromOS() (env, error) {
	e, r, err := readEnv(os.LookupEnv)
	if err != nil {
		return env{}, err
	}
	if err := r.Err(io.Discard); err != nil {
		return env{}, fmt.Errorf("settings:\n%w", err)
	}
	return e, nil
}

// readEnv reads every setting of hookctl, in this one place and with the
// services' own readers: from lookup (the environment), then from the env
// file (HOOKLINE_ENV_FILE, by default .hookline/hookline.env, which `make
// run` writes), then the defaults.
func readEnv(lookup func(string) (string, bool)) (env, *config.Reader, error) {
	file := func(string) (string, bool) { return "", false }
	r := config.FromEnv(func(k string) (string, bool) { return config.Chain(lookup, file)(k) })
	// Read before the file is: it says where the file is.
	path := r.String("HOOKLINE_ENV_FILE", DefaultEnvFile, "settings file read after the environment (make run writes the default one)")
	var fileErr error
	if f, err := config.EnvFile(path); err != nil {
		fileErr = fmt.Errorf("settings file: %w", err)
	} else {
		file = f
	}
	e := env{
		APIURL:   r.String("HOOKLINE_API_URL", "http://127.0.0.1:8080", "ingest's API, for subs and events"),
		APIKey:   r.String("HOOKLINE_API_KEY", "dev", "the API key (Bearer) of the tenant to act as"),
		Kafka:    kafka.ConfigFromEnv(r, "hookctl"),
		Redis:    service.RedisOptionsFromEnv(r),
		Registry: schemaregistry.ConfigFromEnv(r),
		NoColor:  r.String("NO_COLOR", "", "any value: no bold headers on a terminal (no-color.org)") != "",
	}
	// hookctl only looks schemas up: the services register them.
	e.Registry.Register = false
	return e, r, fileErr
}

// codecs decodes and encodes records with the ids the services write: the
// fixed ones, or the schema registry's when one is configured.
func (e env) codecs(ctx context.Context) (*record.Codecs, error) {
	return schemaregistry.LoadCodecs(ctx, e.Registry, e.Kafka.Topics.Subjects(nil), zerolog.Nop())
}
