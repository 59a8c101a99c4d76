package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/ratelimit"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

// near reports whether got is within 50 ms below want: the time between
// two calls passes on Redis's clock too.
func near(got, want time.Duration) bool { return got <= want && got > want-50*time.Millisecond }

func TestReserve(t *testing.T) {
	rdb := testinfra.Redis(t)
	ctx := context.Background()
	prefix := testinfra.Prefix(t)
	tests := []struct {
		name   string
		rate   int
		budget time.Duration
		asks   []int // requests wanted by successive calls
		want   []int // reserved by each call
		waits  []time.Duration
	}{
		{"all fit: evenly spaced from now", 10, time.Second, []int{5}, []int{5}, []time.Duration{0}},
		{"a second call starts after the first one's slots", 10, time.Second, []int{5, 20}, []int{5, 6}, []time.Duration{0, 500 * time.Millisecond}},
		{"only slots within the budget", 1, 2 * time.Second, []int{4}, []int{3}, []time.Duration{0}},
		{"nothing when the next slot is beyond the budget", 1, 100 * time.Millisecond, []int{4, 4}, []int{1, 0}, []time.Duration{0, time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys := wire.NewTopics(prefix).Keys().Rate()
			l := ratelimit.New(rdb, keys)
			key := tc.name
			t.Cleanup(func() { rdb.Del(context.Background(), keys+key) })
			for i, n := range tc.asks {
				g, err := l.Reserve(ctx, tc.budget, []ratelimit.Ask{{Key: key, PerSecond: tc.rate, N: n}})
				if err != nil {
					t.Fatal(err)
				}
				if g[0].Reserved != tc.want[i] || !near(g[0].Wait, tc.waits[i]) || g[0].Interval != time.Second/time.Duration(tc.rate) {
					t.Errorf("call %d: %+v, want %d reserved after about %v", i, g[0], tc.want[i], tc.waits[i])
				}
			}
		})
	}
}

// TestReserveManyKeysAndClients: one call serves several endpoints each on
// its own schedule, and a limiter on another connection (another sender)
// continues the same schedules.
func TestReserveManyKeysAndClients(t *testing.T) {
	prefix := testinfra.Prefix(t)
	keys := wire.NewTopics(prefix).Keys().Rate()
	a, b := ratelimit.New(testinfra.Redis(t), keys), ratelimit.New(testinfra.Redis(t), keys)
	ctx := context.Background()
	asks := []ratelimit.Ask{{Key: prefix + "slow", PerSecond: 2, N: 3}, {Key: prefix + "fast", PerSecond: 100, N: 3}}
	first, err := a.Reserve(ctx, 10*time.Second, asks)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.Reserve(ctx, 10*time.Second, asks)
	if err != nil {
		t.Fatal(err)
	}
	for i, ask := range asks {
		interval := time.Second / time.Duration(ask.PerSecond)
		if first[i].Reserved != 3 || second[i].Reserved != 3 || first[i].Wait != 0 {
			t.Errorf("%s: first %+v, second %+v; want 3 each, the first now", ask.Key, first[i], second[i])
		}
		if want := 3 * interval; !near(second[i].Wait, want) {
			t.Errorf("%s: the other client's first slot in %v, want about %v: after the first client's", ask.Key, second[i].Wait, want)
		}
		if got := second[i].At(2); !near(got, 5*interval) {
			t.Errorf("%s: its third slot in %v, want about %v", ask.Key, got, 5*interval)
		}
	}
}
