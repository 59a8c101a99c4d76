// Package ratelimit caps deliveries per endpoint across every sender
// instance with GCRA in Redis (go-redis/redis_rate), so that the limit a
// subscription sets holds however many senders share the work.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limiter admits requests per key.
type Limiter struct{ l *redis_rate.Limiter }

// New returns a limiter on rdb.
func New(rdb redis.UniversalClient) *Limiter { return &Limiter{l: redis_rate.NewLimiter(rdb)} }

// Allow takes one slot of key's perSecond budget. It returns 0 when the
// request may go now, or how long to wait before asking again. The burst
// is one: requests are spaced evenly, so any one-second window holds at
// most perSecond of them.
func (l *Limiter) Allow(ctx context.Context, key string, perSecond int) (time.Duration, error) {
	res, err := l.l.Allow(ctx, "hookline:rate:"+key, redis_rate.Limit{Rate: perSecond, Burst: 1, Period: time.Second})
	if err != nil {
		return 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}
