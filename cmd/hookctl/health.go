package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/pkg/health"
)

// healthCommand shows each subscription's current failure streak, as the
// senders count it in Redis.
func healthCommand(ctx context.Context, e env, out *printer, ids []string) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: health <subscription-id>...", errUsage)
	}
	rdb := redis.NewClient(e.Redis)
	defer rdb.Close()
	tr := health.New(rdb, e.Kafka.Topics.Keys().Health(), 0)
	rows := make([][]string, 0, len(ids))
	for _, id := range ids {
		st, err := tr.Get(ctx, id)
		if err != nil {
			return err
		}
		since, state := "", "healthy"
		if st.Failures > 0 {
			since = st.FailingSince.UTC().Format(time.RFC3339)
			state = "failing"
			if st.Failures >= health.CriticalAfter {
				state = "critical"
			}
		}
		rows = append(rows, []string{id, state, itoa(st.Failures), since})
	}
	return out.table([]string{"SUBSCRIPTION", "STATE", "CONSECUTIVE_FAILURES", "FAILING_SINCE"}, rows)
}
