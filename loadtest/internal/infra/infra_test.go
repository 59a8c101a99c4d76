package infra

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

// need skips the test when a server's program is missing, or fails it
// under `make test` (HOOKLINE_REQUIRE_INFRA=1).
func need(t *testing.T, program string) {
	t.Helper()
	if _, err := exec.LookPath(program); err == nil {
		return
	}
	if os.Getenv("HOOKLINE_REQUIRE_INFRA") != "" {
		t.Fatalf("%s not found: the private servers need it", program)
	}
	t.Skipf("%s not found: `make test` installs what the servers need", program)
}

// repo is the repository root, three folders up.
func repo(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRedisRestartEmptiesIt(t *testing.T) {
	need(t, "redis-server")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := StartRedis(ctx, repo(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, "k").Err(); err != redis.Nil {
		t.Errorf("GET after a restart: %v, want no key", err)
	}
	r.Stop()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Error("Redis answers after Stop")
	}
}

func TestKafkaKillAndStart(t *testing.T) {
	need(t, "java")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := StartKafka(ctx, repo(t), t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	// within bounds a ping: a broker that runs answers as soon as it can,
	// which on a loaded machine, for a JVM just started, may take many
	// seconds (5 s was once too few); one that is down is refused at once,
	// and waiting the same for it would only lengthen the test.
	ping := func(within time.Duration) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		return cl.Ping(ctx)
	}
	const answers, refused = time.Minute, 5 * time.Second
	if err := ping(answers); err != nil {
		t.Fatalf("the new broker does not answer: %v", err)
	}
	if err := k.Kill(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if ping(refused) == nil {
		t.Error("the broker answers after Kill")
	}
	if err := k.Start(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := ping(answers); err != nil {
		t.Errorf("the broker does not answer after Start: %v", err)
	}
	k.Stop()
	if ping(refused) == nil {
		t.Error("the broker answers after Stop")
	}
}
