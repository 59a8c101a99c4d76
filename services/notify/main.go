// Command notify emails the people who own an endpoint when it starts
// failing (hookline.endpoint.failing), keeps failing (.critical), is
// disabled (.disabled) or recovers (.recovered), and sends a digest of the
// deliveries given up (hookline.delivery.exhausted) per subscription and
// window. It reads those events from hookline.events in its own consumer
// group, queues them in Redis, and sends over SMTP (HOOKLINE_SMTP_URL), or
// to its log when no server is configured. Each notification, with what
// became of each recipient, is written to hookline.notifications.
// docs/alerts.md describes the events, the emails and the settings.
package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/emailaddr"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/ops"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/service"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/services/notify/internal/alert"
	"github.com/hookline/hookline/services/notify/internal/email"
)

type settings struct {
	service.Base
	Group      string
	SMTP       *email.Config // nil: log instead of sending
	From       *mail.Address
	ConsoleURL *url.URL
	Defaults   alert.Defaults
	Window     time.Duration
	HourlyCap  int
	MaxAge     time.Duration
	GiveUp     time.Duration
	RetryMin   time.Duration
	RetryMax   time.Duration
	Poll       time.Duration
}

// noSMTPFrom is the sender of logged emails when HOOKLINE_ALERT_FROM is
// not set; .invalid is reserved, so it never reaches anyone.
const noSMTPFrom = "Hookline <alerts@hookline.invalid>"

func main() {
	r := config.FromOS()
	cfg := settings{Base: service.BaseFromEnv(r, "notify", "127.0.0.1:9105")}
	cfg.Group = r.String("HOOKLINE_NOTIFY_GROUP", cfg.Kafka.Topics.Group("notify"), "consumer group of the notify instances on hookline.events")
	smtpURL := r.String("HOOKLINE_SMTP_URL", "", "smtp://user:pass@host:587 (STARTTLS when offered; ?starttls=required to insist) or smtps://user:pass@host:465 (implicit TLS); empty: emails are logged, not sent")
	caFile := r.String("HOOKLINE_SMTP_CA_FILE", "", "PEM file of CAs to trust for the SMTP server instead of the system pool")
	from := r.String("HOOKLINE_ALERT_FROM", "", "sender of alert emails, e.g. 'Hookline <alerts@example.com>'; required with HOOKLINE_SMTP_URL")
	console := r.String("HOOKLINE_CONSOLE_URL", "http://127.0.0.1:8080/console/", "the console's base URL; emails link to <it>#/subscriptions/<id>/logs")
	defaults := r.List("HOOKLINE_ALERT_DEFAULT_EMAILS", "", "tenant=address entries emailed beside every subscription's alert_emails; repeat a tenant for more addresses, tenant * for every tenant")
	cfg.Window = r.Duration("HOOKLINE_ALERT_DIGEST_WINDOW", 10*time.Minute, "given-up deliveries of one subscription within this window share one email")
	cfg.HourlyCap = r.Int("HOOKLINE_ALERT_HOURLY_CAP", 20, "most alert emails one recipient gets per hour from one tenant; the rest are suppressed and counted")
	cfg.MaxAge = r.Duration("HOOKLINE_ALERT_MAX_AGE", 24*time.Hour, "events older than this are not emailed (a new consumer group reading old events, a long outage)")
	cfg.GiveUp = r.Duration("HOOKLINE_ALERT_GIVE_UP", 24*time.Hour, "how long an email is retried while the SMTP server fails before it is recorded as failed")
	cfg.RetryMin = r.Duration("HOOKLINE_ALERT_RETRY_MIN", 10*time.Second, "first wait after a temporary SMTP failure; doubles up to HOOKLINE_ALERT_RETRY_MAX")
	cfg.RetryMax = r.Duration("HOOKLINE_ALERT_RETRY_MAX", 10*time.Minute, "longest wait between two tries of one email")
	cfg.Poll = r.Duration("HOOKLINE_ALERT_POLL", time.Second, "how often the outbox is checked for due digests and retries")
	rdb := service.RedisFromEnv(r)

	if smtpURL != "" {
		c, err := email.ParseURL(smtpURL)
		if err != nil {
			r.Fail("HOOKLINE_SMTP_URL", err)
		}
		if caFile != "" {
			pool, err := readCAs(caFile)
			if err != nil {
				r.Fail("HOOKLINE_SMTP_CA_FILE", err)
			}
			c.RootCAs = pool
		}
		cfg.SMTP = &c
		if from == "" {
			r.Fail("HOOKLINE_ALERT_FROM", fmt.Errorf("is required with HOOKLINE_SMTP_URL"))
		}
	}
	if from == "" {
		from = noSMTPFrom
	}
	var err error
	if cfg.From, err = emailaddr.ParseSender(from); err != nil {
		r.Fail("HOOKLINE_ALERT_FROM", err)
	}
	if cfg.ConsoleURL, err = url.Parse(console); err != nil || (cfg.ConsoleURL.Scheme != "http" && cfg.ConsoleURL.Scheme != "https") || cfg.ConsoleURL.Host == "" {
		r.Fail("HOOKLINE_CONSOLE_URL", fmt.Errorf("want an absolute http(s) URL such as https://hooks.example.com/console/"))
	}
	if cfg.Defaults, err = alert.ParseDefaults(defaults); err != nil {
		r.Fail("HOOKLINE_ALERT_DEFAULT_EMAILS", err)
	}
	if cfg.HourlyCap < 1 {
		r.Fail("HOOKLINE_ALERT_HOURLY_CAP", fmt.Errorf("must be at least 1"))
	}
	if cfg.RetryMin <= 0 || cfg.RetryMax < cfg.RetryMin {
		r.Fail("HOOKLINE_ALERT_RETRY_MIN", fmt.Errorf("must be above 0 and at most HOOKLINE_ALERT_RETRY_MAX"))
	}
	if cfg.Poll <= 0 {
		r.Fail("HOOKLINE_ALERT_POLL", fmt.Errorf("must be above 0"))
	}
	service.Main(r, cfg.Base, func(ctx context.Context, log zerolog.Logger) error {
		return run(ctx, cfg, rdb, log)
	})
}

func readCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func run(ctx context.Context, cfg settings, rdb *redis.Client, log zerolog.Logger) error {
	defer rdb.Close()
	tel, codecs, err := cfg.Start(ctx, log)
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	producer, err := kafka.NewClient(cfg.Kafka, log, tel.KafkaHooks())
	if err != nil {
		return err
	}
	defer producer.Close()

	var mailer email.Mailer = &email.Log{Log: log}
	if cfg.SMTP != nil {
		mailer = email.NewSMTP(*cfg.SMTP)
		log.Info().Str("smtp", cfg.SMTP.Redacted()).Str("from", cfg.From.String()).Msg("emailing alerts")
	} else {
		log.Warn().Msg("no HOOKLINE_SMTP_URL: alert emails are written to this log, not sent")
	}
	view := subscription.NewView(cfg.Kafka.Topics, codecs, log)
	outbox := alert.NewOutbox(rdb, cfg.Kafka.Topics.Keys().Notify())
	metrics := alert.NewMetrics(tel.Registry)
	d := &alert.Dispatcher{
		Outbox: outbox, Mailer: mailer, From: cfg.From, Renderer: &alert.Renderer{ConsoleURL: cfg.ConsoleURL},
		Subs: view, Defaults: cfg.Defaults, Metrics: metrics, Log: log, Now: time.Now,
		HourlyCap: cfg.HourlyCap, Poll: cfg.Poll, RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax,
		GiveUpAfter: cfg.GiveUp, Batch: 20, Lease: 10 * time.Minute,
		Record: func(ctx context.Context, n *record.Notification) error {
			value, err := codecs.Notification.Marshal(n)
			if err != nil {
				return err
			}
			return producer.ProduceSync(ctx, &kgo.Record{Topic: cfg.Kafka.Topics.Notifications, Key: []byte(n.SubscriptionID), Value: value}).FirstErr()
		},
	}
	h := &alert.Handler{
		Codecs: codecs, Outbox: outbox, Metrics: metrics, Log: log, Now: time.Now,
		DigestWindow: cfg.Window, MaxAge: cfg.MaxAge, Queued: d.Wake,
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return view.Run(ctx, cfg.Kafka) })
	g.Go(func() error { return ops.Serve(ctx, cfg.OpsAddr, ops.Handler(tel.Registry, view.Ready)) })
	g.Go(func() error {
		// Recipients come from the subscriptions: start once the view has
		// caught up, so a notification never misses its alert_emails.
		if err := view.WaitReady(ctx); err != nil {
			return nil
		}
		return d.Run(ctx)
	})
	g.Go(func() error {
		if err := view.WaitReady(ctx); err != nil {
			return nil
		}
		consumer, err := kafka.NewConsumer(cfg.Kafka, cfg.Group, []string{cfg.Kafka.Topics.Events}, h.Handle, log, tel.TraceHooks())
		if err != nil {
			return err
		}
		log.Info().Str("group", cfg.Group).Msg("notifying")
		return consumer.Run(ctx)
	})
	return g.Wait()
}
