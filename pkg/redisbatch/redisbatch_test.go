package redisbatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redisbatch"
	"github.com/hookline/hookline/pkg/testinfra"
)

// countingHook counts the round trips: pipelines and single commands.
type countingHook struct {
	mu    sync.Mutex
	trips int
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.trips++
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		h.trips++
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

func TestConcurrentCallsShareRoundTripsAndGetTheirOwnResults(t *testing.T) {
	rdb := testinfra.Redis(t)
	hook := &countingHook{}
	rdb.AddHook(hook)
	ctx := context.Background()
	prefix := fmt.Sprintf("redisbatch-test:%s:", t.Name())
	b := redisbatch.New(rdb, 1)

	const callers = 200
	var wg sync.WaitGroup
	got := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			key := fmt.Sprintf("%s%d", prefix, i)
			var get *redis.StringCmd
			errs[i] = b.Do(ctx, func(p redis.Pipeliner) {
				p.Set(ctx, key, i, 0)
				get = p.Get(ctx, key)
			})
			if errs[i] == nil {
				got[i] = get.Val()
			}
		})
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || got[i] != fmt.Sprint(i) {
			t.Fatalf("caller %d: %q, %v; want its own value back", i, got[i], errs[i])
		}
	}
	if hook.trips >= callers {
		t.Errorf("%d round trips for %d concurrent callers: want them shared", hook.trips, callers)
	}
	t.Logf("%d callers, %d round trips", callers, hook.trips)
}

func TestAMissingKeyIsAnAnswerAndAFailedCommandIsOnlyItsCallersError(t *testing.T) {
	rdb := testinfra.Redis(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("redisbatch-test:%s:", t.Name())
	b := redisbatch.New(rdb, 0)
	var get *redis.StringCmd
	if err := b.Do(ctx, func(p redis.Pipeliner) { get = p.Get(ctx, prefix+"absent") }); err != nil {
		t.Fatalf("GET of a missing key: %v, want no error", err)
	}
	if get.Err() != redis.Nil {
		t.Errorf("the command's own error is %v, want redis.Nil", get.Err())
	}

	// A list is not a string: INCR on it fails, in one caller's commands.
	if err := rdb.RPush(ctx, prefix+"list", "x").Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var bad, good error
	wg.Go(func() { bad = b.Do(ctx, func(p redis.Pipeliner) { p.Incr(ctx, prefix+"list") }) })
	wg.Go(func() { good = b.Do(ctx, func(p redis.Pipeliner) { p.Incr(ctx, prefix+"counter") }) })
	wg.Wait()
	if bad == nil || good != nil {
		t.Errorf("INCR of a list: %v (want its error); INCR of a counter beside it: %v (want nil)", bad, good)
	}
}

func TestRedisDownFailsEveryCaller(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	b := redisbatch.New(rdb, 1)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			errs[i] = b.Do(context.Background(), func(p redis.Pipeliner) { p.Get(context.Background(), "k") })
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("caller %d: no error with Redis unreachable", i)
		}
	}
}
