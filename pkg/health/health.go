// Package health tracks each endpoint's consecutive failures in Redis and
// says when an operator must hear of it: at 5 failures in a row an
// endpoint is failing, at 20 it is critical, and once it has failed without
// a success for longer than the disable window it is disabled. A success
// resets the count. The counts live in Redis, so every sender instance
// adds to the same ones.
package health

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event types Hookline publishes about endpoints, through itself.
const (
	Failing  = "hookline.endpoint.failing"
	Critical = "hookline.endpoint.critical"
	Disabled = "hookline.endpoint.disabled"
)

// Thresholds of consecutive failures.
const (
	FailingAfter  = 5
	CriticalAfter = 20
)

// Tracker counts failures per subscription.
type Tracker struct {
	rdb           redis.UniversalClient
	disableWindow time.Duration
}

// New returns a tracker; disableWindow is how long an endpoint may fail
// without a single success before it is disabled (5 days by default).
func New(rdb redis.UniversalClient, disableWindow time.Duration) *Tracker {
	return &Tracker{rdb: rdb, disableWindow: disableWindow}
}

// Window is the disable window: how long an endpoint may fail without a
// success before it is disabled.
func (t *Tracker) Window() time.Duration { return t.disableWindow }

// State is an endpoint's failure streak after an attempt.
type State struct {
	Failures     int64
	FailingSince time.Time
	// Alerts are the event types this attempt crossed into, in order; each
	// is reported once per streak however many senders count it.
	Alerts []string
}

// fail increments the streak, records its start once, and reports whether
// this call is the one that crossed the disable window (set-once flag).
var fail = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSETNX', KEYS[1], 'since', ARGV[1])
local since = tonumber(redis.call('HGET', KEYS[1], 'since'))
local disable = 0
if tonumber(ARGV[1]) - since >= tonumber(ARGV[2]) then
  if redis.call('HSETNX', KEYS[1], 'disabled', 1) == 1 then disable = 1 end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {n, since, disable}
`)

func key(subscriptionID string) string { return "hookline:health:" + subscriptionID }

// Failure records a failed attempt at now.
func (t *Tracker) Failure(ctx context.Context, subscriptionID string, now time.Time) (State, error) {
	// The streak outlives the window comfortably but not forever.
	ttl := max(2*t.disableWindow, 24*time.Hour)
	res, err := fail.Run(ctx, t.rdb, []string{key(subscriptionID)},
		now.UnixMilli(), t.disableWindow.Milliseconds(), ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return State{}, fmt.Errorf("health of %s: %w", subscriptionID, err)
	}
	s := State{Failures: res[0], FailingSince: time.UnixMilli(res[1])}
	switch s.Failures {
	case FailingAfter:
		s.Alerts = append(s.Alerts, Failing)
	case CriticalAfter:
		s.Alerts = append(s.Alerts, Critical)
	}
	if res[2] == 1 {
		s.Alerts = append(s.Alerts, Disabled)
	}
	return s, nil
}

// Success ends a streak.
func (t *Tracker) Success(ctx context.Context, subscriptionIDs ...string) error {
	if len(subscriptionIDs) == 0 {
		return nil
	}
	keys := make([]string, len(subscriptionIDs))
	for i, id := range subscriptionIDs {
		keys[i] = key(id)
	}
	if err := t.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("reset health: %w", err)
	}
	return nil
}

// Get returns a subscription's current streak (zero when healthy).
func (t *Tracker) Get(ctx context.Context, subscriptionID string) (State, error) {
	vals, err := t.rdb.HMGet(ctx, key(subscriptionID), "n", "since").Result()
	if err != nil {
		return State{}, fmt.Errorf("health of %s: %w", subscriptionID, err)
	}
	var s State
	if v, ok := vals[0].(string); ok {
		_, _ = fmt.Sscan(v, &s.Failures)
	}
	if v, ok := vals[1].(string); ok {
		var ms int64
		_, _ = fmt.Sscan(v, &ms)
		s.FailingSince = time.UnixMilli(ms)
	}
	return s, nil
}
