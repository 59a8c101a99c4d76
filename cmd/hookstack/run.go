package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/stack"
)

// runSettings are what runCommand reads.
type runSettings struct {
	cfg     stack.Config
	envFile string
	keep    bool
}

func readRunSettings(r *config.Reader) runSettings {
	var s runSettings
	c := &s.cfg
	c.Services = r.List("HOOKLINE_STACK_SERVICES", "", "the services to run, in this order; empty: "+strings.Join(stack.ServiceNames(), ", ")+" (logs only with HOOKLINE_POSTGRES_URL)")
	c.Postgres = r.String("HOOKLINE_POSTGRES_URL", "", "the delivery history's PostgreSQL, for the logs service and ingest's history API; empty: no history")
	c.Brokers = r.String("KAFKA_BROKERS", "127.0.0.1:9092", "the Kafka brokers")
	c.Redis = r.String("REDIS_ADDR", "127.0.0.1:6379", "the Redis server")
	c.Prefix = r.String("HOOKLINE_TOPIC_PREFIX", "", "topic prefix, also of the consumer groups and transactional ids; empty: a fresh stack<random>. one")
	c.Partitions = r.Int("HOOKLINE_TOPIC_PARTITIONS", 3, "partitions of the topics the services create")
	c.Schedule = r.String("HOOKLINE_RETRY_SCHEDULE", "", "the services' retry schedule; empty: theirs")
	keys := r.List("HOOKLINE_API_KEYS", "", "tenant=key pairs of ingest's API")
	c.AllowHosts = r.String("HOOKLINE_ALLOW_HOSTS", "127.0.0.1", "hosts the sender may call over http and at private addresses")
	c.CAFile = r.String("HOOKLINE_SENDER_CA_FILE", "", "PEM file of the CAs of your receivers, for the sender")
	c.LogLevel = r.String("HOOKLINE_LOG_LEVEL", "info", "the services' log level")
	c.HTTPAddr = r.String("HOOKLINE_HTTP_ADDR", "", "ingest's API address; empty: a free port on 127.0.0.1")
	c.Bin = r.String("HOOKLINE_BIN_DIR", "", "folder of prebuilt service binaries; empty: built from the repository around the working directory")
	c.LogDir = r.String("HOOKLINE_STACK_LOG_DIR", "", "folder of one <service>.log each; empty: a temporary one, removed at exit")
	s.envFile = r.String("HOOKLINE_STACK_ENV_FILE", "", "file the export lines go to once every service is ready (written whole, at once); empty: stdout")
	s.keep = r.Bool("HOOKLINE_STACK_KEEP", false, "keep the prefix's topics and consumer groups at exit")
	// Named now, not left to the stack: they are built, and their ops
	// addresses written to the env file, before and after it starts.
	c.Services = c.ServicesToRun()
	if len(keys) > 0 {
		c.Keys = map[string]string{}
		for _, kv := range keys {
			tenant, key, ok := strings.Cut(kv, "=")
			if !ok || tenant == "" || key == "" {
				r.Fail("HOOKLINE_API_KEYS", fmt.Errorf("%q is not tenant=key", kv))
				continue
			}
			c.Keys[tenant] = key
		}
	}
	return s
}

// runCommand runs the services until ctx ends or one of them exits.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	r := config.New(args, os.LookupEnv)
	s := readRunSettings(r)
	if err := r.Err(io.Discard); err != nil {
		switch {
		case errors.Is(err, config.ErrHelp):
			fmt.Fprint(stdout, usage)
			r.Usage(stdout)
			return exitCode(0)
		case errors.Is(err, config.ErrChecked):
			fmt.Fprintln(stdout, "hookstack:", err)
			return exitCode(0)
		}
		fmt.Fprintf(stderr, "hookstack: configuration:\n%s\n", err)
		return exitCode(2)
	}
	cfg := s.cfg
	if cfg.Prefix == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.Prefix = "stack" + hex.EncodeToString(b) + "."
	}
	if cfg.Bin == "" || cfg.LogDir == "" {
		work, err := os.MkdirTemp("", "hookstack")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		if cfg.LogDir == "" {
			cfg.LogDir = work
		}
		if cfg.Bin == "" {
			repo, err := stack.FindRepo(".")
			if err != nil {
				return fmt.Errorf("%w, or pass HOOKLINE_BIN_DIR", err)
			}
			cfg.Bin = work
			say(stderr, "building %s from %s", strings.Join(cfg.Services, ", "), repo)
			if err := stack.Build(ctx, repo, cfg.Bin, cfg.Services...); err != nil {
				return err
			}
		}
	}
	say(stderr, "starting %s (topics %s*, Kafka %s, Redis %s, logs in %s)", strings.Join(cfg.Services, ", "), cfg.Prefix, cfg.Brokers, cfg.Redis, cfg.LogDir)
	st, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := st.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		if s.keep {
			say(stderr, "kept the topics and groups of %s", cfg.Prefix)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if delErr := stack.DeleteTopics(ctx, cfg.Brokers, cfg.Prefix); delErr != nil {
			say(stderr, "deleting the topics and groups of %s: %v", cfg.Prefix, delErr)
		}
	}()
	if err := writeSettings(s.envFile, readySettings(st), stdout); err != nil {
		return err
	}
	say(stderr, "ready: API %s", st.API)
	select {
	case <-ctx.Done():
		say(stderr, "stopping")
		return nil
	case x := <-st.Exits():
		return fmt.Errorf("%s exited by itself (%v):\n%s", x.Name, x.Err, st.LogTail(x.Name, 3000))
	}
}

// readySettings are where st's services listen, as export lines: every
// service the stack runs, which without HOOKLINE_STACK_SERVICES is the
// stack's defaults (its Config), not the empty list asked for.
func readySettings(st *stack.Stack) []config.Setting {
	cfg := st.Config()
	settings := []config.Setting{
		{Name: "HOOKLINE_API_URL", Value: st.API},
		{Name: "HOOKLINE_TOPIC_PREFIX", Value: cfg.Prefix},
	}
	for _, name := range cfg.Services {
		settings = append(settings, config.Setting{Name: "HOOKLINE_" + strings.ToUpper(name) + "_OPS_ADDR", Value: st.OpsAddr(name)})
	}
	return settings
}

// writeSettings writes the export lines to file, whole (a reader waiting
// for the file never sees half of it), or to stdout.
func writeSettings(file string, settings []config.Setting, stdout io.Writer) error {
	if file == "" {
		for _, s := range settings {
			fmt.Fprintf(stdout, "export %s\n", config.ExportLine(s))
		}
		return nil
	}
	tmp := file + ".tmp"
	if err := config.WriteEnvFile(tmp, "Where hookstack's services listen.", settings); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

func say(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "hookstack: "+format+"\n", args...)
}
