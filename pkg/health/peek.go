package health

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Peek returns the current streak of each subscription, in order, in one
// round trip: a page of the console's subscription list costs one Redis
// call however long it is. A subscription without a streak is healthy
// (zero State).
func (t *Tracker) Peek(ctx context.Context, subscriptionIDs ...string) ([]State, error) {
	out := make([]State, len(subscriptionIDs))
	if len(subscriptionIDs) == 0 {
		return out, nil
	}
	pipe := t.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(subscriptionIDs))
	for i, id := range subscriptionIDs {
		cmds[i] = pipe.HMGet(ctx, t.key(id), "n", "since")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("health of %d subscriptions: %w", len(subscriptionIDs), err)
	}
	for i, c := range cmds {
		vals := c.Val()
		if v, ok := vals[0].(string); ok {
			out[i].Failures, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := vals[1].(string); ok {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[i].FailingSince = time.UnixMilli(ms)
			}
		}
	}
	return out, nil
}
