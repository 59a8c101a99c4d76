// Package backoff is Hookline's retry schedule: one delay per attempt, each
// served by its own delay topic (tier), with jitter so that endpoints that
// failed together are not retried together.
package backoff

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Default is close to what established webhook platforms use.
const Default = "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h"

// Schedule is the delay before each retry: Delays[0] follows the first
// failed attempt.
type Schedule struct {
	Delays []time.Duration
	// Jitter is the fraction of a delay added at random (0.1 = up to +10%).
	Jitter float64
}

// Parse reads a comma-separated list of increasing durations.
func Parse(s string) (Schedule, error) {
	var sch Schedule
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return Schedule{}, fmt.Errorf("retry schedule: %q is not a positive duration", f)
		}
		if n := len(sch.Delays); n > 0 && d <= sch.Delays[n-1] {
			return Schedule{}, fmt.Errorf("retry schedule: %s does not follow %s: delays must increase", f, sch.Delays[n-1])
		}
		sch.Delays = append(sch.Delays, d)
	}
	if len(sch.Delays) == 0 {
		return Schedule{}, fmt.Errorf("retry schedule is empty")
	}
	sch.Jitter = 0.1
	return sch, nil
}

// Tiers are the distinct delays, each a delay topic.
func (s Schedule) Tiers() []time.Duration { return s.Delays }

// Next is the tier and the delay before retry number attempt+1, given that
// attempt attempts (1-based) have failed and that the endpoint asked to wait
// at least minWait (Retry-After). The tier is the first whose delay covers
// both; past the last tier, the last one repeats.
func (s Schedule) Next(attempt int, minWait time.Duration) (tier, delay time.Duration) {
	i := min(max(attempt-1, 0), len(s.Delays)-1)
	if minWait > s.Delays[i] {
		i += sort.Search(len(s.Delays)-i, func(j int) bool { return s.Delays[i+j] >= minWait })
		i = min(i, len(s.Delays)-1)
	}
	tier = s.Delays[i]
	delay = max(tier, minWait)
	if s.Jitter > 0 {
		delay += time.Duration(rand.Float64() * s.Jitter * float64(tier))
	}
	return tier, delay
}
