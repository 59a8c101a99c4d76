// Package health tracks each endpoint's consecutive failures in Redis and
// says when an operator must hear of it: at 5 failures in a row an
// endpoint is failing, at 20 it is critical, once it has failed without a
// success for longer than the disable window it is disabled, and the
// success that ends a streak which got that far is a recovery. A success
// resets the count. The counts live in Redis, so every sender instance
// adds to the same ones, and each transition is reported to one of them
// only.
package health

import (
	"context"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

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
	prefix        string
	disableWindow time.Duration
}

// New returns a tracker keeping each streak at prefix + subscription id
// (wire.Keys.Health); disableWindow is how long an endpoint may fail
// without a single success before it is disabled (5 days by default). A
// tracker that only reads (Get, Peek) needs no window.
func New(rdb redis.UniversalClient, prefix string, disableWindow time.Duration) *Tracker {
	return &Tracker{rdb: rdb, prefix: prefix, disableWindow: disableWindow}
}

// Window is the disable window: how long an endpoint may fail without a
// success before it is disabled.
func (t *Tracker) Window() time.Duration { return t.disableWindow }

// State is an endpoint's failure streak after an attempt.
type State struct {
	Failures     int64
	FailingSince time.Time
	// LastStatus and LastError are the last failed attempt's (Failed);
	// Failure and Success fill them in, Get and Peek do not.
	LastStatus int
	LastError  string
	// Alerts are the event types this attempt crossed into, in order; each
	// is reported once per streak however many senders count it.
	Alerts []string
}

// Failed is one failed attempt, as its endpoint's streak remembers it.
type Failed struct {
	At     time.Time
	Status int    // the HTTP status, 0 when no response arrived
	Error  string // why it failed
}

// maxErrorBytes bounds the error text kept with a streak: enough to say
// why, while one Redis hash per failing endpoint stays small.
const maxErrorBytes = 512

// fail increments the streak, records its start once and its last failure
// every time, and reports whether this call is the one that crossed the
// disable window (set-once flag).
var fail = redis.NewScript(`
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSETNX', KEYS[1], 'since', ARGV[1])
redis.call('HSET', KEYS[1], 'st', ARGV[4], 'err', ARGV[5])
local since = tonumber(redis.call('HGET', KEYS[1], 'since'))
local disable = 0
if tonumber(ARGV[1]) - since >= tonumber(ARGV[2]) then
  if redis.call('HSETNX', KEYS[1], 'disabled', 1) == 1 then disable = 1 end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {n, since, disable}
`)

func (t *Tracker) key(subscriptionID string) string { return t.prefix + subscriptionID }

// Failure records a failed attempt.
func (t *Tracker) Failure(ctx context.Context, subscriptionID string, f Failed) (State, error) {
	// The streak outlives the window comfortably but not forever.
	ttl := max(2*t.disableWindow, 24*time.Hour)
	errText := truncate(f.Error, maxErrorBytes)
	res, err := fail.Run(ctx, t.rdb, []string{t.key(subscriptionID)},
		f.At.UnixMilli(), t.disableWindow.Milliseconds(), ttl.Milliseconds(), f.Status, errText).Int64Slice()
	if err != nil {
		return State{}, fmt.Errorf("health of %s: %w", subscriptionID, err)
	}
	s := State{Failures: res[0], FailingSince: time.UnixMilli(res[1]), LastStatus: f.Status, LastError: errText}
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

// Recovery is a streak that a success ended after it had alerted: its
// endpoint recovered.
type Recovery struct {
	SubscriptionID string
	// State is the streak as it ended (Failures, FailingSince, the last
	// failure), with Alerts = [Recovered].
	State State
}

// Success ends the streaks of subscriptionIDs, in one round trip, and
// returns those that had reached Failing or disabled their endpoint: the
// recoveries to report. Each streak is read and deleted in one transaction
// (MULTI/EXEC), and only the call whose delete removed it reports it, so
// however many senders end the same streak at once, one reports the
// recovery. A subscription without a streak costs a lookup only.
func (t *Tracker) Success(ctx context.Context, subscriptionIDs ...string) ([]Recovery, error) {
	if len(subscriptionIDs) == 0 {
		return nil, nil
	}
	pipe := t.rdb.TxPipeline()
	reads := make([]*redis.SliceCmd, len(subscriptionIDs))
	dels := make([]*redis.IntCmd, len(subscriptionIDs))
	for i, id := range subscriptionIDs {
		reads[i] = pipe.HMGet(ctx, t.key(id), "n", "since", "st", "err", "disabled")
		dels[i] = pipe.Del(ctx, t.key(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("end the failure streaks of %d subscriptions: %w", len(subscriptionIDs), err)
	}
	var out []Recovery
	for i, id := range subscriptionIDs {
		if dels[i].Val() != 1 {
			continue // no streak, or another call ended it first
		}
		vals := reads[i].Val()
		st := State{
			Failures: parseInt(vals[0]), FailingSince: time.UnixMilli(parseInt(vals[1])),
			LastStatus: int(parseInt(vals[2])),
		}
		st.LastError, _ = vals[3].(string)
		if st.Failures < FailingAfter && vals[4] == nil {
			continue // nobody was told of this streak: nothing to recover from
		}
		st.Alerts = []string{Recovered}
		out = append(out, Recovery{SubscriptionID: id, State: st})
	}
	return out, nil
}

// parseInt reads an integer field of a streak; 0 when absent.
func parseInt(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Get returns a subscription's current streak (zero when healthy).
func (t *Tracker) Get(ctx context.Context, subscriptionID string) (State, error) {
	vals, err := t.rdb.HMGet(ctx, t.key(subscriptionID), "n", "since").Result()
	if err != nil {
		return State{}, fmt.Errorf("health of %s: %w", subscriptionID, err)
	}
	var s State
	if s.Failures = parseInt(vals[0]); s.Failures > 0 {
		s.FailingSince = time.UnixMilli(parseInt(vals[1]))
	}
	return s, nil
}
