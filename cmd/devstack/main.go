// Command devstack runs all of Hookline on one machine for `make run`: an
// embedded Kafka (franz-go's kfake, persisted under the data dir) and Redis
// (miniredis) unless KAFKA_BROKERS / REDIS_ADDR name real ones, the five
// services as child processes, a demo HTTPS receiver that prints each
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
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookline/hookline/pkg/config"
)

const apiKey = "dev"

// Addresses, overridable so that a test can run a second stack.
var (
	ingestAddr   = envOr("HOOKLINE_HTTP_ADDR", "127.0.0.1:8080")
	receiverAddr = envOr("HOOKLINE_DEMO_RECEIVER_ADDR", "127.0.0.1:9443")
	embeddedKafk = envOr("HOOKLINE_EMBEDDED_KAFKA_PORT", "29092")
	embeddedRdb  = envOr("HOOKLINE_EMBEDDED_REDIS_ADDR", "127.0.0.1:26379")
)

func main() {
	dataDir := envOr("HOOKLINE_DATA_DIR", ".hookline")
	binDir := envOr("HOOKLINE_BIN_DIR", "bin")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, dataDir, binDir); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dataDir, binDir string) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	if os.Getenv("HOOKLINE_RECEIVER_ONLY") != "" {
		return runReceiverOnly(ctx, dataDir)
	}
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		port, err := strconv.Atoi(embeddedKafk)
		if err != nil {
			return fmt.Errorf("HOOKLINE_EMBEDDED_KAFKA_PORT: %w", err)
		}
		cluster, err := kfake.NewCluster(
			kfake.Ports(port),
			kfake.DataDir(filepath.Join(dataDir, "kafka")),
		)
		if err != nil {
			return fmt.Errorf("embedded Kafka: %w", err)
		}
		defer cluster.Close()
		brokers = strings.Join(cluster.ListenAddrs(), ",")
		say("Kafka: embedded (kfake) on %s, data in %s", brokers, filepath.Join(dataDir, "kafka"))
	} else {
		say("Kafka: %s", brokers)
	}
	redisAddr := os.Getenv("REDIS_ADDR")
	if redisAddr == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr(embeddedRdb); err != nil {
			return fmt.Errorf("embedded Redis: %w", err)
		}
		defer mr.Close()
		redisAddr = mr.Addr()
		say("Redis: embedded (miniredis) on %s", redisAddr)
	} else {
		say("Redis: %s", redisAddr)
	}

	secretKey, err := persisted(filepath.Join(dataDir, "secret-key"), 32)
	if err != nil {
		return err
	}
	demoSecret, err := persisted(filepath.Join(dataDir, "demo-webhook-secret"), 24)
	if err != nil {
		return err
	}
	demoSecret = "whsec_" + demoSecret
	recv, err := startReceiver(ctx, receiverAddr, demoSecret)
	if err != nil {
		return err
	}
	caFile := filepath.Join(dataDir, "demo-ca.pem")
	if err := os.WriteFile(caFile, recv.certPEM, 0o600); err != nil {
		return err
	}
	smtpURL := os.Getenv("HOOKLINE_SMTP_URL")
	if smtpURL == "" {
		url, stopMail, err := startMail(ctx, dataDir)
		if err != nil {
			return err
		}
		defer stopMail()
		smtpURL = url
	} else {
		say("alert emails: through HOOKLINE_SMTP_URL")
	}

	env := []string{
		"KAFKA_BROKERS=" + brokers,
		"REDIS_ADDR=" + redisAddr,
		"HOOKLINE_API_KEYS=" + envOr("HOOKLINE_API_KEYS", "dev="+apiKey),
		"HOOKLINE_SECRET_KEY=" + envOr("HOOKLINE_SECRET_KEY", secretKey),
		"HOOKLINE_ALLOW_HOSTS=" + envOr("HOOKLINE_ALLOW_HOSTS", "127.0.0.1,localhost"),
		"HOOKLINE_SENDER_CA_FILE=" + caFile,
		"HOOKLINE_HTTP_ADDR=" + ingestAddr,
		"HOOKLINE_TOPIC_PARTITIONS=" + envOr("HOOKLINE_TOPIC_PARTITIONS", "3"),
		"HOOKLINE_LOG_LEVEL=" + envOr("HOOKLINE_LOG_LEVEL", "warn"),
		"HOOKLINE_SMTP_URL=" + smtpURL,
		"HOOKLINE_ALERT_FROM=" + envOr("HOOKLINE_ALERT_FROM", demoFrom),
		"HOOKLINE_CONSOLE_URL=" + envOr("HOOKLINE_CONSOLE_URL", "http://"+ingestAddr+"/console/"),
	}
	procs, err := startServices(ctx, binDir, env)
	if err != nil {
		return err
	}
	defer procs.stop()

	if err := ensureDemoSubscription(ctx, "http://"+ingestAddr, demoSecret); err != nil {
		return err
	}
	settings, err := writeSettings(dataDir, brokers, redisAddr)
	if err != nil {
		return err
	}
	printWelcome(demoSecret, filepath.Join(dataDir, EnvFileName), settings)
	select {
	case <-ctx.Done():
		say("stopping")
		return nil
	case err := <-procs.exited:
		return err
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

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func say(format string, args ...any) {
	fmt.Printf("[devstack] "+format+"\n", args...)
}

// EnvFileName is the file under the data dir where devstack writes where
// its stack listens, as shell export lines; hookctl reads
// .hookline/hookline.env by default.
const EnvFileName = "hookline.env"

// writeSettings writes the addresses of this stack, and the API key, to
// the env file and returns them.
func writeSettings(dataDir, brokers, redisAddr string) ([]config.Setting, error) {
	settings := []config.Setting{
		{Name: "KAFKA_BROKERS", Value: brokers},
		{Name: "REDIS_ADDR", Value: redisAddr},
		{Name: "HOOKLINE_API_URL", Value: "http://" + ingestAddr},
		{Name: "HOOKLINE_API_KEY", Value: apiKey},
		{Name: "HOOKLINE_TOPIC_PREFIX", Value: envOr("HOOKLINE_TOPIC_PREFIX", "hookline.")},
	}
	if url := os.Getenv("HOOKLINE_SCHEMA_REGISTRY_URL"); url != "" {
		settings = append(settings, config.Setting{Name: "HOOKLINE_SCHEMA_REGISTRY_URL", Value: url})
	}
	path := filepath.Join(dataDir, EnvFileName)
	err := config.WriteEnvFile(path, "Where `make run` (devstack) listens, written at each start.\n"+
		"hookctl reads this file by default when run from the repository; or: source "+path, settings)
	return settings, err
}

func printWelcome(secret, envFile string, settings []config.Setting) {
	var exports strings.Builder
	for _, s := range settings {
		fmt.Fprintf(&exports, "  export %s\n", config.ExportLine(s))
	}
	fmt.Printf(`
[devstack] ready: ingest on http://%[1]s, demo receiver on https://%[2]s

  The web console: http://%[1]s/console/ (sign in with the API key %[3]s)

A subscription to every event type already points at the demo receiver.
Send an event and watch it arrive below, with its signature checked:

  curl -s http://%[1]s/v1/events -H 'Authorization: Bearer %[3]s' \
    -H 'Content-Type: application/json' \
    -d '{"type":"order.created","subject":"ord_1","data":{"id":"ord_1","total":42}}'

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
`, ingestAddr, receiverAddr, apiKey, secret, envFile, exports.String())
}

// runReceiverOnly serves just the demo receiver (docker-compose's sink),
// writing its certificate where the sender can read it.
func runReceiverOnly(ctx context.Context, dataDir string) error {
	secret := os.Getenv("HOOKLINE_DEMO_SECRET")
	if secret == "" {
		return errors.New("HOOKLINE_DEMO_SECRET (whsec_...) is required with HOOKLINE_RECEIVER_ONLY")
	}
	recv, err := startReceiver(ctx, receiverAddr, secret)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "demo-ca.pem"), recv.certPEM, 0o644); err != nil {
		return err
	}
	say("demo receiver on https://%s", receiverAddr)
	<-ctx.Done()
	return nil
}
