package dispatch

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tails remembers, per ordered subscription, the last delivery its lane
// parked and the retry tier of that parked sequence, in Redis, so that
// whichever sender owns the partition next parks fresh deliveries behind
// it instead of sending them first.
type Tails struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewTails keeps tails under prefix. ttl outlives any parked delivery's
// return (parks are due within maxParkDelay; a day is plenty): a tail
// whose delivery never came back (dead-lettered meanwhile) expires.
func NewTails(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Tails {
	return &Tails{rdb: rdb, prefix: prefix, ttl: ttl}
}

// Save records id as the subscription's parked tail, in tier.
func (t *Tails) Save(ctx context.Context, subscription, id string, tier time.Duration) error {
	if err := t.rdb.Set(ctx, t.prefix+subscription, strconv.FormatInt(int64(tier), 10)+" "+id, t.ttl).Err(); err != nil {
		return fmt.Errorf("save parked tail of %s: %w", subscription, err)
	}
	return nil
}

// Load returns the subscription's parked tail; "" when none.
func (t *Tails) Load(ctx context.Context, subscription string) (id string, tier time.Duration, err error) {
	v, err := t.rdb.Get(ctx, t.prefix+subscription).Result()
	switch {
	case err == redis.Nil:
		return "", 0, nil
	case err != nil:
		return "", 0, fmt.Errorf("load parked tail of %s: %w", subscription, err)
	}
	n, id, ok := strings.Cut(v, " ")
	ns, perr := strconv.ParseInt(n, 10, 64)
	if !ok || perr != nil {
		return "", 0, fmt.Errorf("parked tail of %s: bad value %q", subscription, v)
	}
	return id, time.Duration(ns), nil
}

// Clear forgets the subscription's parked tail: it is back.
func (t *Tails) Clear(ctx context.Context, subscription string) error {
	if err := t.rdb.Del(ctx, t.prefix+subscription).Err(); err != nil {
		return fmt.Errorf("clear parked tail of %s: %w", subscription, err)
	}
	return nil
}
