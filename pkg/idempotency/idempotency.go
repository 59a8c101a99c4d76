// Package idempotency keeps Hookline's "done once" marks in Redis: event ids
// ingest has accepted, and deliveries the sender has delivered.
package idempotency

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/redisbatch"
)

// Store holds marks under a key prefix with a time to live. Concurrent
// Marked and Mark calls share Redis pipelines (redisbatch): ingest's
// concurrent requests each need both.
type Store struct {
	rdb    redis.UniversalClient
	batch  *redisbatch.Batcher
	prefix string
	ttl    time.Duration
}

// New returns a store of marks under prefix that expire after ttl.
func New(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Store {
	return &Store{rdb: rdb, batch: redisbatch.New(rdb, 0), prefix: prefix, ttl: ttl}
}

// Claim marks key and reports whether this call set it (false: it was
// already marked).
func (s *Store) Claim(ctx context.Context, key string) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.prefix+key, 1, s.ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis claim %s: %w", key, err)
	}
	return ok, nil
}

// Release removes a mark, e.g. when the work it claimed failed.
func (s *Store) Release(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.prefix+key).Err(); err != nil {
		return fmt.Errorf("redis release %s: %w", key, err)
	}
	return nil
}

// Marked reports which of keys are marked, in one round trip.
func (s *Store) Marked(ctx context.Context, keys []string) ([]bool, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.prefix + k
	}
	var get *redis.SliceCmd
	if err := s.batch.Do(ctx, func(p redis.Pipeliner) { get = p.MGet(ctx, full...) }); err != nil {
		return nil, fmt.Errorf("redis mget: %w", err)
	}
	vals := get.Val()
	out := make([]bool, len(vals))
	for i, v := range vals {
		out[i] = v != nil
	}
	return out, nil
}

// Mark sets keys, in one round trip.
func (s *Store) Mark(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	err := s.batch.Do(ctx, func(p redis.Pipeliner) {
		for _, k := range keys {
			p.Set(ctx, s.prefix+k, 1, s.ttl)
		}
	})
	if err != nil {
		return fmt.Errorf("redis mark: %w", err)
	}
	return nil
}
