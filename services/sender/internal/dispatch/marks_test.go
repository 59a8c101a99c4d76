package dispatch_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// TestDeliveredNotSentAgainBeforeItsMark: a delivery the endpoint took is
// sent once, even when a copy of it (a replay, a retry tier's repeat, a
// producer's retry) reaches the sender before its "delivered" mark is in
// Redis. The test holds the marks at Redis's door, so the copies surely
// arrive inside that window, whatever the machine's speed.
func TestDeliveredNotSentAgainBeforeItsMark(t *testing.T) {
	tests := []struct {
		name string
		fail bool // Redis refuses the marks (else they wait for an answer)
	}{
		{"copies arrive while the marks are being written", false},
		{"copies arrive after Redis refused the marks", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rcv := testreceiver.New(t, nil)
			sub, _ := e.subscribe(rcv.URL, []time.Duration{0})
			gate := newMarkGate(e.keys+"delivered:", tc.fail)
			rdb := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr})
			t.Cleanup(func() { _ = rdb.Close() })
			rdb.AddHook(gate)
			s := e.senderWith(rcv, rdb)
			run := e.run(s, "sender")
			// After the sender's own cleanup, so it runs first: marks held
			// by a test that failed early would keep the sender from stopping.
			t.Cleanup(gate.open)

			first, second := e.delivery(sub, `{"n":1}`), e.delivery(sub, `{"n":2}`)
			e.publish(first)
			// Its mark has left the sender: the delivery is no longer held
			// as in flight, and Redis does not know it yet.
			gate.waitFor(t, first.ID)
			// The second one's mark queues behind the first's.
			e.publish(second)
			rcv.WaitFor(t, 2, 30*time.Second)
			e.publish(first, second)

			deadline := time.Now().Add(30 * time.Second)
			for testutil.ToFloat64(s.Metrics.Suppressed) < 2 && len(rcv.Requests()) <= 2 {
				if time.Now().After(deadline) {
					t.Fatalf("the copies were neither sent nor suppressed within 30 s")
				}
				time.Sleep(5 * time.Millisecond)
			}
			reqs := byID(rcv.Requests())
			for i, d := range []record.Delivery{first, second} {
				if n := len(reqs[d.ID]); n != 1 {
					t.Errorf("delivery %d sent %d times before its mark reached Redis, want once", i+1, n)
				}
			}

			gate.open()
			run.waitHandled(t, 4, 30*time.Second)
			waitMarked(t, e, first.ID, second.ID)
			if n := len(rcv.Requests()); n != 2 {
				t.Errorf("receiver got %d requests in all, want 2", n)
			}
			if got := testutil.ToFloat64(s.Metrics.Suppressed); got != 2 {
				t.Errorf("suppressed %v, want 2", got)
			}
		})
	}
}

// TestDeliveredIsMarkedWhenItsLogWriteFails: the endpoint took a delivery
// but its attempt could not be written to the delivery log, so the
// partition fails and is run again with what it did not finish. The
// delivery must be marked before that: it is not sent a second time.
func TestDeliveredIsMarkedWhenItsLogWriteFails(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, nil)
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0})
	// A delivery log topic that does not exist (the test broker creates
	// none by itself): writing the attempt fails after one metadata retry.
	producer, err := kafka.NewClient(e.kafka, testinfra.Logger(), kgo.UnknownTopicRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	s := e.sender(rcv)
	s.Producer = producer
	s.Topics.DeliveryLog = e.kafka.Topics.Prefix + "no-such-delivery-log"
	d := e.delivery(sub, `{"n":1}`)
	e.publish(d)
	run := e.run(s, "sender")

	deadline := time.Now().Add(30 * time.Second)
	for run.handled() < 1 && len(rcv.Requests()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the delivery was neither finished nor sent again within 30 s (%d failed runs)", run.failed.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Finished, it is never taken again; unfinished, every run sends it
	// and fails again.
	if n := len(rcv.Requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1: the endpoint took the first", n)
	}
	waitFailedRuns(t, run, 1)
	waitMarked(t, e, d.ID)
}

// waitMarked waits until every id is marked delivered in Redis.
func waitMarked(t *testing.T, e *env, ids ...string) {
	t.Helper()
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = e.keys + "delivered:" + id
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := e.rdb.Exists(e.ctx(), keys...).Result()
		if err == nil && n == int64(len(keys)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries marked delivered in Redis within 30 s (%v)", n, len(keys), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFailedRuns waits until at least n Runs of r returned an error.
func waitFailedRuns(t *testing.T, r *running, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.failed.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed runs within 30 s, want %d", r.failed.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// redisGate is a Redis hook that stops some commands while it is closed:
// those named in names (lower case) with a key under prefix, such as the
// sender's "delivered" marks (SETs under the delivered prefix) or its
// endpoint health writes (the script run on a key under the health
// prefix). It holds them until it opens, or, when fail is set, refuses
// them. Other commands pass.
type redisGate struct {
	prefix string
	names  []string
	fail   bool

	mu     sync.Mutex
	cond   *sync.Cond
	once   sync.Once
	opened chan struct{}
	seen   map[string]bool // what follows prefix in the keys that reached the gate
}

// newMarkGate stops the "delivered" marks, SETs of keys under prefix.
func newMarkGate(prefix string, fail bool) *redisGate { return newRedisGate(prefix, fail, "set") }

func newRedisGate(prefix string, fail bool, names ...string) *redisGate {
	g := &redisGate{prefix: prefix, names: names, fail: fail, opened: make(chan struct{}), seen: map[string]bool{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

var errMarkRefused = errors.New("mark refused (test)")

func (g *redisGate) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *redisGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := g.pass(ctx, []redis.Cmder{cmd}); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (g *redisGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := g.pass(ctx, cmds); err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

// pass notes the commands among cmds that the gate stops and, while it is
// closed, holds or refuses them.
func (g *redisGate) pass(ctx context.Context, cmds []redis.Cmder) error {
	stop := false
	g.mu.Lock()
	for _, c := range cmds {
		if !slices.Contains(g.names, strings.ToLower(c.Name())) {
			continue
		}
		for _, arg := range c.Args()[1:] {
			if key, ok := arg.(string); ok && strings.HasPrefix(key, g.prefix) {
				g.seen[strings.TrimPrefix(key, g.prefix)] = true
				stop = true
			}
		}
	}
	g.cond.Broadcast()
	g.mu.Unlock()
	if !stop {
		return nil
	}
	select {
	case <-g.opened:
		return nil
	default:
	}
	if g.fail {
		return errMarkRefused
	}
	select {
	case <-g.opened:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitFor waits until a command on the key prefix + id has reached the
// gate (for the marks, id is a delivery's).
func (g *redisGate) waitFor(t *testing.T, id string) {
	t.Helper()
	timer := time.AfterFunc(30*time.Second, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(30 * time.Second)
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.seen[id] {
		if time.Now().After(deadline) {
			t.Fatalf("a command on %s%s did not reach Redis within 30 s", g.prefix, id)
		}
		g.cond.Wait()
	}
}

// open lets every command through from now on.
func (g *redisGate) open() { g.once.Do(func() { close(g.opened) }) }
