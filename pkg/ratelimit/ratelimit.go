// Package ratelimit caps requests per endpoint across every sender instance
// with GCRA in Redis, so that the limit a subscription sets holds however
// many senders share the work. A sender reserves the slots a whole fetched
// batch needs, for all its endpoints, in one round trip.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// reserve is GCRA with a burst of one, in the shape of go-redis/redis_rate,
// over many keys and many requests per key. Per key it stores the
// theoretical arrival time (TAT) of its next request; slot i of a key is
// at TAT + i * interval. It reserves the slots that begin within the
// budget and moves the TAT past them; slots beyond the budget are left to
// whoever asks later. Redis's own clock is the time, so instances with
// skewed clocks share one schedule.
//
// KEYS: one per endpoint. ARGV[1]: the budget in seconds; then for each
// key its rate per second and how many requests it wants. Returns, for
// each key, the count reserved and the microseconds until the first slot.
var reserve = redis.NewScript(`
local t = redis.call("TIME")
-- seconds since 2017, to keep microseconds within a double's precision
local now = (t[1] - 1483228800) + t[2] / 1000000
local budget = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = 1 / tonumber(ARGV[2 * i])
  local want = tonumber(ARGV[2 * i + 1])
  local tat = math.max(tonumber(redis.call("GET", key)) or now, now)
  local wait = tat - now
  local n = 0
  if wait <= budget then
    n = math.min(want, math.floor((budget - wait) / interval) + 1)
    local next_tat = tat + n * interval
    redis.call("SET", key, next_tat, "EX", math.ceil(next_tat - now))
  end
  out[2 * i - 1] = n
  out[2 * i] = math.floor(wait * 1000000)
end
return out
`)

// Limiter reserves request slots per key.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a limiter on rdb keeping each endpoint's state at prefix +
// its key (wire.Keys.Rate). Its script takes many keys at once, so on a
// Redis Cluster they must share a hash slot.
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix}
}

// Ask is one endpoint's share of a batch: N requests at PerSecond.
type Ask struct {
	Key       string
	PerSecond int
	N         int
}

// Grant is what an Ask got, measured from the moment Reserve returned:
// the first Reserved requests may go, request i (from 0) no earlier than
// At(i). The others did not fit in the budget.
type Grant struct {
	Reserved int
	Wait     time.Duration // until the first slot
	Interval time.Duration // between two slots
}

// At is how long request i waits for its slot. For i >= Reserved it is
// when its slot would come if nobody else took it meanwhile.
func (g Grant) At(i int) time.Duration { return g.Wait + time.Duration(i)*g.Interval }

// Reserve takes, for each ask, the slots of its key that begin within
// budget, in one round trip. Slots are spaced evenly at the key's rate
// (the burst is one), so any one-second window holds at most PerSecond of
// them. A reserved slot that goes unused is lost, which only ever sends
// less than the limit.
func (l *Limiter) Reserve(ctx context.Context, budget time.Duration, asks []Ask) ([]Grant, error) {
	if len(asks) == 0 {
		return nil, nil
	}
	keys := make([]string, len(asks))
	args := make([]any, 1, 1+2*len(asks))
	args[0] = budget.Seconds()
	for i, a := range asks {
		keys[i] = l.prefix + a.Key
		args = append(args, max(a.PerSecond, 1), a.N)
	}
	res, err := reserve.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("rate limit of %d endpoints: %w", len(asks), err)
	}
	if len(res) != 2*len(asks) {
		return nil, fmt.Errorf("rate limit: %d values for %d endpoints", len(res), len(asks))
	}
	grants := make([]Grant, len(asks))
	for i, a := range asks {
		grants[i] = Grant{
			Reserved: int(res[2*i]),
			Wait:     time.Duration(res[2*i+1]) * time.Microsecond,
			Interval: time.Second / time.Duration(max(a.PerSecond, 1)),
		}
	}
	return grants, nil
}
