package subscription

import (
	"time"

	"github.com/hookline/hookline/pkg/record"
)

// Defaults of a subscription's settings, in one place: the API writes them
// into a subscription whose owner sets none, and the sender applies them
// to a record that holds none (zero: written before the field existed).
const (
	// DefaultTimeoutMS is how long a request waits for an endpoint's
	// answer: longer than most receivers take to queue a webhook, short
	// enough that a hung endpoint holds few of its lane's slots.
	DefaultTimeoutMS = 15000
	// DefaultMaxAttempts on the default retry schedule (5s, 30s, 2m,
	// 10m, 30m, 1h, 3h...) retry a delivery for almost 5 hours before it
	// is given up.
	DefaultMaxAttempts = 8
	// DefaultPayload sends the whole event.
	DefaultPayload = "full"
)

// Timeout is how long the sender waits for sub's endpoint to answer.
func Timeout(sub *record.Subscription) time.Duration {
	if sub.TimeoutMS <= 0 {
		return DefaultTimeoutMS * time.Millisecond
	}
	return time.Duration(sub.TimeoutMS) * time.Millisecond
}

// MaxAttempts is how many attempts a delivery to sub gets before it is
// given up.
func MaxAttempts(sub *record.Subscription) int32 {
	if sub.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return sub.MaxAttempts
}
