// Package kafka holds what every Hookline service does with Kafka: build a
// client from the environment, create the topics pkg/wire declares, read a
// topic to its end (Reader), and run the consume loop (poll, dispatch per
// partition, commit what is done).
package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/wire"
)

// Config says how to reach the cluster and how to lay out topics.
type Config struct {
	Brokers       []string
	TLS           bool
	TLSCAFile     string
	SASLMechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	SASLUser      string
	SASLPassword  string
	ClientID      string
	// InstanceID makes the client a static member of its consumer group
	// (KIP-345): an instance that restarts under the same id gets its
	// partitions back at once instead of after the session timeout. Empty
	// is a dynamic member.
	InstanceID string

	Topics            wire.Topics
	Partitions        int32
	ReplicationFactor int16
}

// ConfigFromEnv reads the Kafka settings shared by every service.
func ConfigFromEnv(r *config.Reader, service string) Config {
	c := Config{
		Brokers:           r.List("KAFKA_BROKERS", "127.0.0.1:9092", "comma-separated seed brokers"),
		TLS:               r.Bool("KAFKA_TLS", false, "connect with TLS"),
		TLSCAFile:         r.String("KAFKA_TLS_CA_FILE", "", "PEM file of CAs to trust instead of the system pool"),
		SASLMechanism:     strings.ToUpper(r.String("KAFKA_SASL_MECHANISM", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for none")),
		SASLUser:          r.String("KAFKA_SASL_USERNAME", "", "SASL user"),
		SASLPassword:      r.String("KAFKA_SASL_PASSWORD", "", "SASL password"),
		ClientID:          r.String("KAFKA_CLIENT_ID", "hookline-"+service, "client.id sent to the brokers"),
		InstanceID:        r.String("HOOKLINE_INSTANCE_ID", "", "group instance id for static membership, unique per instance and stable over restarts (e.g. the StatefulSet pod name); empty for dynamic membership"),
		Topics:            wire.NewTopics(r.String("HOOKLINE_TOPIC_PREFIX", wire.DefaultPrefix, "prefix of every topic name, consumer group and transactional id, and (without its trailing dot, then a colon) of every Redis key")),
		Partitions:        int32(r.Int("HOOKLINE_TOPIC_PARTITIONS", 12, "partitions of topics Hookline creates; the most instances a consumer group can use")),
		ReplicationFactor: int16(r.Int("HOOKLINE_TOPIC_REPLICATION", 1, "replication factor of topics Hookline creates; 3 in production")),
	}
	switch c.SASLMechanism {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		r.Fail("KAFKA_SASL_MECHANISM", fmt.Errorf("unknown mechanism %q", c.SASLMechanism))
	}
	if c.Partitions < 1 {
		r.Fail("HOOKLINE_TOPIC_PARTITIONS", fmt.Errorf("must be at least 1"))
	}
	return c
}

// Options are the client options for c: seeds, TLS, SASL, logging. Callers
// add their role's options (group, topics, transactions) after these.
func (c Config) Options(log zerolog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.WithLogger(logger{log.With().Str("component", "kafka").Logger()}),
		// No linger: a produce goes out at once, and the records that
		// come while it is in flight (one request per broker, as the
		// idempotent producer allows) share the next one. Lingering only
		// added its time to every hop at low rates (issue 18); batches
		// form by themselves under load.
		kgo.ProducerLinger(0),
		// Hookline's topics are created by EnsureTopics with their settings;
		// a typo must not create a topic with broker defaults.
		kgo.RecordRetries(20),
		// A record up to the topics' limit must fit a batch; a fetch
		// takes at least one batch whatever these say (KIP-74), but a
		// partition's share is sized so one full record is the usual case.
		kgo.ProducerBatchMaxBytes(wire.MaxRecordBytes),
		kgo.FetchMaxPartitionBytes(wire.MaxRecordBytes),
	}
	if c.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("read KAFKA_TLS_CA_FILE: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s holds no PEM certificate", c.TLSCAFile)
			}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if c.InstanceID != "" {
		// Only a client that joins a group uses it: each service has one.
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	switch c.SASLMechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	}
	return opts, nil
}

// NewClient builds a client for c with extra role-specific options.
func NewClient(c Config, log zerolog.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.Options(log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}
