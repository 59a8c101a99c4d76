// Command devstack runs all of Hookline on one machine for `make run`: an
// embedded Kafka (franz-go's kfake, persisted under the data dir), Redis
// (miniredis) and PostgreSQL (pkg/embeddedpg, for the delivery history)
// unless KAFKA_BROKERS / REDIS_ADDR / HOOKLINE_POSTGRES_URL name real ones,
// the six services as child processes, a demo HTTPS receiver that prints each
// delivery and whether its signature verified (and fails on /fail until
// GET /fail/fix, to show the alert emails), and somewhere for notify's emails to go: the SMTP
// server of HOOKLINE_SMTP_URL, else mailpit when installed, else a catcher
// that prints them.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/embeddedpg"
	"github.com/hookline/hookline/pkg/stack"
)

const apiKey = "dev"

// settings are what devstack reads, from its flags and environment.
// Every other setting in its environment reaches the services as it is.
type settings struct {
	dataDir, binDir     string
	receiverOnly        bool
	demoSecret          string
	ingestAddr          string
	receiverAddr        string
	kafkaPort           int
	redisAddr           string // the embedded one's
	brokers, redis      string // real ones, when set
	postgresPort        int    // the embedded one's
	postgres            string // a real one, when set
	cacheDir            string
	smtpURL             string
	mail                mailSettings
	apiKeys, secretKey  string
	allowHosts          string
	partitions          int
	logLevel, alertFrom string
	consoleURL          string
	opsBasePort         int
	topicPrefix         string
	registryURL         string
}

func readSettings(r *config.Reader) settings {
	var s settings
	s.dataDir = r.String("HOOKLINE_DATA_DIR", ".hookline", "where the embedded Kafka keeps its data, and the generated keys, the demo's CA and hookline.env go")
	s.binDir = r.String("HOOKLINE_BIN_DIR", "bin", "folder of the service binaries (make build)")
	s.receiverOnly = r.Bool("HOOKLINE_RECEIVER_ONLY", false, "serve only the demo receiver (docker-compose's sink), writing its CA to the data dir")
	s.demoSecret = r.String("HOOKLINE_DEMO_SECRET", "", "the receiver's signing secret (whsec_...) with HOOKLINE_RECEIVER_ONLY; otherwise generated in the data dir")
	s.ingestAddr = r.String("HOOKLINE_HTTP_ADDR", "127.0.0.1:8080", "ingest's API and console")
	s.receiverAddr = r.String("HOOKLINE_DEMO_RECEIVER_ADDR", "127.0.0.1:9443", "the demo HTTPS receiver")
	s.kafkaPort = r.Int("HOOKLINE_EMBEDDED_KAFKA_PORT", 29092, "port of the embedded Kafka (kfake), without KAFKA_BROKERS")
	s.redisAddr = r.String("HOOKLINE_EMBEDDED_REDIS_ADDR", "127.0.0.1:26379", "address of the embedded Redis (miniredis), without REDIS_ADDR")
	s.brokers = r.String("KAFKA_BROKERS", "", "a real Kafka; empty: the embedded one")
	s.redis = r.String("REDIS_ADDR", "", "a real Redis; empty: the embedded one")
	s.postgresPort = r.Int("HOOKLINE_EMBEDDED_POSTGRES_PORT", 25432, "port of the embedded PostgreSQL (the delivery history), without HOOKLINE_POSTGRES_URL")
	s.postgres = r.String("HOOKLINE_POSTGRES_URL", "", "a real PostgreSQL for the delivery history; empty: the embedded one")
	s.cacheDir = r.String("HOOKLINE_CACHE", ".cache", "where the embedded PostgreSQL's binaries are kept once fetched from Maven Central (with the Kafka jars of the tests)")
	s.smtpURL = r.String("HOOKLINE_SMTP_URL", "", "where notify sends alert emails; empty: mailpit when installed, else a catcher that prints them")
	s.mail = readMailSettings(r)
	s.apiKeys = r.String("HOOKLINE_API_KEYS", "dev="+apiKey, "ingest's tenant=key pairs")
	s.secretKey = r.String("HOOKLINE_SECRET_KEY", "", "the services' secret key; empty: generated once in the data dir")
	s.allowHosts = r.String("HOOKLINE_ALLOW_HOSTS", "127.0.0.1,localhost", "hosts the sender may call over http and at private addresses")
	s.partitions = r.Int("HOOKLINE_TOPIC_PARTITIONS", 3, "partitions of the topics the services create")
	s.logLevel = r.String("HOOKLINE_LOG_LEVEL", "warn", "the services' log level")
	s.alertFrom = r.String("HOOKLINE_ALERT_FROM", demoFrom, "sender of the alert emails")
	s.consoleURL = r.String("HOOKLINE_CONSOLE_URL", "", "the console's URL in alert emails; empty: the one on HOOKLINE_HTTP_ADDR")
	s.opsBasePort = r.Int("HOOKLINE_OPS_BASE_PORT", 9101, "the services' ops ports are this and the next ones, in the order ingest, matcher, sender, retry, notify, logs")
	s.topicPrefix = r.String("HOOKLINE_TOPIC_PREFIX", "hookline.", "the services' topic prefix, written to hookline.env for hookctl")
	s.registryURL = r.String("HOOKLINE_SCHEMA_REGISTRY_URL", "", "the services' schema registry, written to hookline.env for hookctl")
	if s.receiverOnly && s.demoSecret == "" {
		r.Fail("HOOKLINE_DEMO_SECRET", errors.New("a whsec_ secret is required with HOOKLINE_RECEIVER_ONLY"))
	}
	return s
}

func main() {
	r := config.FromOS()
	s := readSettings(r)
	if err := r.Err(io.Discard); err != nil {
		switch {
		case errors.Is(err, config.ErrHelp):
			fmt.Print(usage)
			r.Usage(os.Stdout)
			return
		case errors.Is(err, config.ErrChecked):
			fmt.Println("devstack:", err)
			return
		}
		fmt.Fprintf(os.Stderr, "devstack: configuration:\n%s\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, s); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

const usage = `devstack: all of Hookline on this machine, with a demo HTTPS receiver (make run)

Usage: devstack [-name value ...]

It runs the services (make build puts them in bin/) on an embedded Kafka,
Redis and PostgreSQL unless KAFKA_BROKERS / REDIS_ADDR /
HOOKLINE_POSTGRES_URL name real ones, subscribes the
demo receiver to every event type, and prints how to try it. Every other
setting in the environment reaches the services as it is.

`

func run(ctx context.Context, s settings) error {
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return err
	}
	if s.receiverOnly {
		return runReceiverOnly(ctx, s)
	}
	brokers := s.brokers
	if brokers == "" {
		cluster, err := kfake.NewCluster(
			kfake.Ports(s.kafkaPort),
			kfake.DataDir(filepath.Join(s.dataDir, "kafka")),
		)
		if err != nil {
			return fmt.Errorf("embedded Kafka: %w", err)
		}
		defer cluster.Close()
		brokers = strings.Join(cluster.ListenAddrs(), ",")
		say("Kafka: embedded (kfake) on %s, data in %s", brokers, filepath.Join(s.dataDir, "kafka"))
	} else {
		say("Kafka: %s", brokers)
	}
	redisAddr := s.redis
	if redisAddr == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr(s.redisAddr); err != nil {
			return fmt.Errorf("embedded Redis: %w", err)
		}
		defer mr.Close()
		redisAddr = mr.Addr()
		say("Redis: embedded (miniredis) on %s", redisAddr)
	} else {
		say("Redis: %s", redisAddr)
	}
	postgresURL := s.postgres
	if postgresURL == "" {
		// As root, the server runs as another user (PostgreSQL refuses
		// root), which must pass through the data dir: others may enter it
		// (o+x) but not list it, and its files stay the owner's (0600).
		if err := os.Chmod(s.dataDir, 0o711); err != nil {
			return err
		}
		say("PostgreSQL: starting the embedded one (the first start fetches it from Maven Central, about 30 MB)")
		// The binaries are kept with the Kafka jars, so that make
		// clean-data does not fetch them again.
		pg, err := embeddedpg.Start(ctx, embeddedpg.Config{DataDir: filepath.Join(s.dataDir, "postgres"),
			CacheDir: filepath.Join(s.cacheDir, "embeddedpg"), Port: s.postgresPort})
		if err != nil {
			return fmt.Errorf("embedded PostgreSQL: %w", err)
		}
		defer func() {
			if err := pg.Stop(); err != nil {
				say("%v", err)
			}
		}()
		postgresURL = pg.URL
		say("PostgreSQL: embedded on 127.0.0.1:%d, data in %s", s.postgresPort, filepath.Join(s.dataDir, "postgres"))
	} else {
		say("PostgreSQL: %s", redactURL(postgresURL))
	}

	secretKey := s.secretKey
	if secretKey == "" {
		var err error
		if secretKey, err = persisted(filepath.Join(s.dataDir, "secret-key"), 32); err != nil {
			return err
		}
	}
	demoSecret, err := persisted(filepath.Join(s.dataDir, "demo-webhook-secret"), 24)
	if err != nil {
		return err
	}
	demoSecret = "whsec_" + demoSecret
	recv, err := startReceiver(ctx, s.receiverAddr, demoSecret)
	if err != nil {
		return err
	}
	caFile := filepath.Join(s.dataDir, "demo-ca.pem")
	if err := os.WriteFile(caFile, recv.certPEM, 0o600); err != nil {
		return err
	}
	smtpURL := s.smtpURL
	if smtpURL == "" {
		url, stopMail, err := startMail(ctx, s.mail, s.dataDir)
		if err != nil {
			return err
		}
		defer stopMail()
		smtpURL = url
	} else {
		say("alert emails: through HOOKLINE_SMTP_URL")
	}

	cfg := stack.Config{
		Bin: s.binDir, Brokers: brokers, Redis: redisAddr, Partitions: s.partitions,
		SecretKey: secretKey, AllowHosts: s.allowHosts, CAFile: caFile, SMTPURL: smtpURL, AlertFrom: s.alertFrom,
		LogLevel: s.logLevel, HTTPAddr: s.ingestAddr, OpsBasePort: s.opsBasePort, Output: os.Stderr,
		Postgres: postgresURL,
		Env:      []string{"HOOKLINE_API_KEYS=" + s.apiKeys},
	}
	if s.consoleURL != "" {
		cfg.Env = append(cfg.Env, "HOOKLINE_CONSOLE_URL="+s.consoleURL)
	}
	st, err := stack.Start(ctx, cfg)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (run `make build` first)", err)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Stop(); err != nil {
			say("%v", err)
		}
	}()

	if err := ensureDemoSubscription(ctx, st.API, s.receiverAddr, demoSecret); err != nil {
		return err
	}
	envFile, written, err := writeSettings(s, brokers, redisAddr)
	if err != nil {
		return err
	}
	printWelcome(s, demoSecret, envFile, written)
	select {
	case <-ctx.Done():
		say("stopping")
		return nil
	case x := <-st.Exits():
		return fmt.Errorf("%s exited: %v", x.Name, x.Err)
	}
}

// persisted returns a random base64 value kept in path, so that restarts
// keep opening the secrets they sealed.
func persisted(path string, n int) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	v := base64.StdEncoding.EncodeToString(buf)
	return v, os.WriteFile(path, []byte(v+"\n"), 0o600)
}

// redactURL hides a URL's password, for printing.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func say(format string, args ...any) {
	fmt.Printf("[devstack] "+format+"\n", args...)
}

// EnvFileName is the file under the data dir where devstack writes where
// its stack listens, as shell export lines; hookctl reads
// .hookline/hookline.env by default.
const EnvFileName = "hookline.env"

// writeSettings writes the addresses of this stack, and the API key, to
// the env file and returns its path and them.
func writeSettings(s settings, brokers, redisAddr string) (string, []config.Setting, error) {
	out := []config.Setting{
		{Name: "KAFKA_BROKERS", Value: brokers},
		{Name: "REDIS_ADDR", Value: redisAddr},
		{Name: "HOOKLINE_API_URL", Value: "http://" + s.ingestAddr},
		{Name: "HOOKLINE_API_KEY", Value: apiKey},
		{Name: "HOOKLINE_TOPIC_PREFIX", Value: s.topicPrefix},
	}
	if s.registryURL != "" {
		out = append(out, config.Setting{Name: "HOOKLINE_SCHEMA_REGISTRY_URL", Value: s.registryURL})
	}
	path := filepath.Join(s.dataDir, EnvFileName)
	err := config.WriteEnvFile(path, "Where `make run` (devstack) listens, written at each start.\n"+
		"hookctl reads this file by default when run from the repository; or: source "+path, out)
	return path, out, err
}

func printWelcome(s settings, secret, envFile string, written []config.Setting) {
	var exports strings.Builder
	for _, w := range written {
		fmt.Fprintf(&exports, "  export %s\n", config.ExportLine(w))
	}
	fmt.Printf(`
[devstack] ready: ingest on http://%[1]s, demo receiver on https://%[2]s

  The web console: http://%[1]s/console/ (sign in with the API key %[3]s)

A subscription to every event type already points at the demo receiver.
Send an event and watch it arrive below, with its signature checked:

  curl -s http://%[1]s/v1/events -H 'Authorization: Bearer %[3]s' \
    -H 'Content-Type: application/json' \
    -d '{"type":"order.created","subject":"ord_1","data":{"id":"ord_1","total":42}}'

Every attempt, with what was sent and what came back, is in the delivery
history (the console's Logs tab; the API; bin/hookctl logs <subscription-id>):

  curl -s 'http://%[1]s/v1/deliveries?limit=5' -H 'Authorization: Bearer %[3]s'

Create your own subscription (pass the demo secret so the receiver can verify it):

  curl -s http://%[1]s/v1/subscriptions -H 'Authorization: Bearer %[3]s' \
    -H 'Content-Type: application/json' \
    -d '{"url":"https://%[2]s/orders","event_types":["order.*"],"secret":"%[4]s"}'

hookctl (make build, then bin/hookctl help) finds this stack through %[5]s
when run from this directory; anywhere else, export these first:

%[6]s
See the alert emails: the receiver answers 503 on /fail, so five events to
this subscription make its endpoint "failing", and you@example.com is emailed:

  curl -s http://%[1]s/v1/subscriptions -H 'Authorization: Bearer %[3]s' \
    -H 'Content-Type: application/json' \
    -d '{"url":"https://%[2]s/fail","event_types":["alert.demo"],"alert_emails":["you@example.com"],"secret":"%[4]s"}'
  for i in 1 2 3 4 5; do curl -s http://%[1]s/v1/events -H 'Authorization: Bearer %[3]s' \
    -H 'Content-Type: application/json' -d '{"type":"alert.demo","data":{"n":'$i'}}'; done

Then fix the endpoint: the receiver answers 204 on /fail from now on, the
next retry (a few seconds later) is delivered, and you@example.com is told
the endpoint recovered (curl -sk https://%[2]s/fail/break breaks it again):

  curl -sk https://%[2]s/fail/fix

Ctrl-C stops everything; data stays in .hookline/ (make clean-data wipes it).
`, s.ingestAddr, s.receiverAddr, apiKey, secret, envFile, exports.String())
}

// runReceiverOnly serves just the demo receiver (docker-compose's sink),
// writing its certificate where the sender can read it.
func runReceiverOnly(ctx context.Context, s settings) error {
	recv, err := startReceiver(ctx, s.receiverAddr, s.demoSecret)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dataDir, "demo-ca.pem"), recv.certPEM, 0o644); err != nil {
		return err
	}
	say("demo receiver on https://%s", s.receiverAddr)
	<-ctx.Done()
	return nil
}
