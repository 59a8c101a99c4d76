// Package testinfra connects integration tests to the real Kafka broker,
// Redis, PostgreSQL, schema registry and SMTP server (mailpit) that `make
// test` starts on 127.0.0.1 (deploy/scripts/infra.sh, registry.sh,
// mailpit.sh). Under `make test` (HOOKLINE_REQUIRE_INFRA=1) a missing server
// fails the test; a bare `go test` without them skips it and says why.
package testinfra

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/backoff"
	"github.com/hookline/hookline/pkg/freeport"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/wire"
)

func need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	if os.Getenv("HOOKLINE_REQUIRE_INFRA") != "" {
		t.Fatalf("%s is not set: integration tests need the real servers (make test starts them)", env)
	}
	t.Skipf("%s is not set: run `make test` (or `make infra-up` and export its variables) for integration tests", env)
	return ""
}

// Prefix is a topic prefix unique to one test, so tests sharing the broker
// never see each other's records or consumer groups.
func Prefix(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + "."
}

// Kafka returns the broker's config with a fresh topic prefix and creates
// every Hookline topic under it (3 partitions each) for tiers, deleting
// them when the test ends.
func Kafka(t testing.TB, tiers ...time.Duration) kafka.Config {
	t.Helper()
	brokers := need(t, "KAFKA_BROKERS")
	cfg := kafka.Config{
		Brokers:           []string{brokers},
		ClientID:          "hookline-test",
		Topics:            wire.NewTopics(Prefix(t)),
		Partitions:        3,
		ReplicationFactor: 1,
	}
	if len(tiers) == 0 {
		sch, _ := backoff.Parse("1s,2s")
		tiers = sch.Delays
	}
	cl, err := kafka.NewClient(cfg, nopLogger())
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	specs := cfg.Topics.All(tiers)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	if err := kafka.EnsureTopics(ctx, adm, specs, cfg.Partitions, cfg.ReplicationFactor); err != nil {
		cl.Close()
		t.Fatalf("create topics on %s: %v", brokers, err)
	}
	if err := awaitTopics(ctx, adm, cfg.Partitions, names); err != nil {
		cl.Close()
		t.Fatalf("topics created on %s: %v", brokers, err)
	}
	if err := served(ctx, adm, names); err != nil {
		cl.Close()
		t.Fatalf("topics created on %s are not served: %v", brokers, err)
	}
	t.Cleanup(func() {
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Every topic under the prefix: the code under test may have made
		// more (a service's retry tiers for its default schedule), and a
		// broker outlives the test run (make test keeps its data).
		mine, err := kafka.TopicsUnder(ctx, adm, cfg.Topics.Prefix)
		if err != nil {
			mine = names
		}
		_, _ = adm.DeleteTopics(ctx, mine...)
	})
	return cfg
}

// awaitTopics returns once the broker's metadata has every topic with its
// partitions led. CreateTopics returns when the controller has the
// topics, before the broker has applied them: a produce right after could
// then fail with UNKNOWN_TOPIC_OR_PARTITION once the client's few
// metadata retries ran out, which happened on a loaded machine.
func awaitTopics(ctx context.Context, adm *kadm.Client, partitions int32, names []string) error {
	for {
		md, err := adm.Metadata(ctx, names...)
		if err == nil {
			err = topicsReady(md, partitions, names)
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not all ready: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// served waits until the broker answers ListOffsets for every partition
// of topics: a leader in the metadata is not enough on a loaded machine,
// where the broker may still answer UNKNOWN_TOPIC_OR_PARTITION for a
// moment, and tests that read end offsets at once (kadm does not retry
// that) would fail.
func served(ctx context.Context, adm *kadm.Client, topics []string) error {
	for {
		_, err := kafka.EndOffsets(ctx, adm, topics...)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// topicsReady says which of names md lacks, or has without a leader for
// every partition.
func topicsReady(md kadm.Metadata, partitions int32, names []string) error {
	for _, name := range names {
		td, ok := md.Topics[name]
		switch {
		case !ok:
			return fmt.Errorf("topic %s not in the metadata", name)
		case td.Err != nil:
			return fmt.Errorf("topic %s: %w", name, td.Err)
		case int32(len(td.Partitions)) != partitions:
			return fmt.Errorf("topic %s has %d of %d partitions", name, len(td.Partitions), partitions)
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return fmt.Errorf("topic %s partition %d has no leader (%v)", name, p.Partition, p.Err)
			}
		}
	}
	return nil
}

// Redis returns a client of the test Redis.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: need(t, "REDIS_ADDR")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s: %v", os.Getenv("REDIS_ADDR"), err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Postgres creates a database of its own for the test on the real
// PostgreSQL (HOOKLINE_POSTGRES_URL), so tests sharing the server never
// see each other's tables, and drops it when the test ends. It returns the
// new database's URL.
func Postgres(t testing.TB) string {
	t.Helper()
	base := need(t, "HOOKLINE_POSTGRES_URL")
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("HOOKLINE_POSTGRES_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("postgres at %s: %v", base, err)
	}
	defer admin.Close(context.Background())
	name := "test_" + Prefix(t)
	name = name[:len(name)-1] // Prefix ends with a dot
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		// FORCE: a pool the test forgot to close must not keep it alive.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("HOOKLINE_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// SchemaRegistry is the URL of the real Confluent-compatible schema
// registry (Apicurio, deploy/scripts/registry.sh) that `make test` starts:
// HOOKLINE_TEST_SCHEMA_REGISTRY_URL. It is not the services' own
// HOOKLINE_SCHEMA_REGISTRY_URL, so tests that start services with the
// whole environment keep the fixed schema ids.
func SchemaRegistry(t testing.TB) string {
	t.Helper()
	url := need(t, "HOOKLINE_TEST_SCHEMA_REGISTRY_URL")
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(url + "/subjects")
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET /subjects: %s", resp.Status)
		}
	}
	if err != nil {
		t.Fatalf("schema registry at %s: %v", url, err)
	}
	return url
}

// FreeAddr is a 127.0.0.1 address with a port free a moment ago, for a
// server a test starts (a service's API or ops port); see freeport.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Records returns every record of topic, from the start to the end
// offsets at the time of the call, read with kafka.Reader.
func Records(t testing.TB, cfg kafka.Config, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	if err := kafka.NewReader(topic).ReadToEnd(ctx, cfg, Logger(), func(r *kgo.Record) bool {
		out = append(out, r)
		return true
	}); err != nil {
		t.Fatalf("reading %s: %v", topic, err)
	}
	return out
}

// WaitRecords reads topic until it holds at least n records or within
// has passed, and returns what it holds then.
func WaitRecords(t testing.TB, cfg kafka.Config, topic string, n int, within time.Duration) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		recs := Records(t, cfg, topic)
		if len(recs) >= n || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// WaitTopic waits until the brokers answer for topic's partitions: a topic
// just created may be unknown to a broker for a moment.
func WaitTopic(t testing.TB, cfg kafka.Config, topic string) {
	t.Helper()
	cl, err := kafka.NewClient(cfg, Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := served(ctx, kadm.NewClient(cl), []string{topic}); err != nil {
		t.Fatalf("topic %s: %v", topic, err)
	}
}
