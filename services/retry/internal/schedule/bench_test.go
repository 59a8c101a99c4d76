package schedule_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// BenchmarkRetryRelease moves deliveries from a retry tier back to
// hookline.deliveries through the real broker, with transactions, and
// reports the throughput (records/s) and how late after its due time each
// delivery reached a read-committed consumer of deliveries (ms).
//
//	paced:   records come due at 1,000/s, as in the load target
//	all-due: everything is due at once: the scheduler's ceiling
func BenchmarkRetryRelease(b *testing.B) {
	cases := []struct {
		name string
		n    int
		rate float64 // records falling due per second; 0: all due already
	}{
		{"paced_1000_per_s", 20000, 1000},
		{"all_due", 50000, 0},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			var late []time.Duration
			var moved int
			var took time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				l, n, d := releaseRun(b, bc.n, bc.rate)
				late, moved, took = append(late, l...), moved+n, took+d
			}
			b.ReportMetric(float64(moved)/took.Seconds(), "records/s")
			if len(late) == 0 {
				return
			}
			slices.Sort(late)
			pct := func(p float64) float64 {
				return float64(late[min(len(late)-1, int(p*float64(len(late))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-late-ms")
			b.ReportMetric(pct(0.99), "p99-late-ms")
			b.ReportMetric(pct(1), "max-late-ms")
		})
	}
}

// releaseRun schedules n deliveries and runs a scheduler until all of them
// arrive; it returns each one's lateness (receive time minus due time; none
// when all were due before the scheduler started), how many moved and over
// how long: from the first due time (paced) or the first release produced
// (all due) to the last release received.
func releaseRun(b *testing.B, n int, rate float64) (late []time.Duration, moved int, took time.Duration) {
	e := newEnv(b)
	col := e.collect()
	group := e.cfg.Topics.Prefix + "retry"
	var ds []scheduled
	if rate == 0 {
		past := time.Now().Add(-time.Minute)
		for i := range n {
			ds = append(ds, scheduled{id: fmt.Sprint(i), partition: int32(i % 3), due: past})
		}
		e.produceMany(ds)
		b.StartTimer()
		e.start(group, e.cfg.Topics.Prefix+"txn-1")
	} else {
		// Join first, so that the group's first rebalance is not measured.
		e.start(group, e.cfg.Topics.Prefix+"txn-1")
		waitAssigned(b, kadm.NewClient(e.prod), group)
		first := time.Now().Add(3 * time.Second)
		for i := range n {
			ds = append(ds, scheduled{id: fmt.Sprint(i), partition: int32(i % 3), due: first.Add(time.Duration(float64(i) / rate * float64(time.Second)))})
		}
		e.produceMany(ds)
		if time.Now().After(first) {
			b.Logf("producing took until %v after the first due time", time.Since(first))
		}
		b.StartTimer()
	}
	got := col.waitFor(b, time.Duration(float64(n)/max(rate, 1000)*float64(time.Second))+60*time.Second, ids(ds)...)
	b.StopTimer()
	var firstAt, lastAt time.Time // first produced, last received
	for _, s := range ds {
		r := got[s.id][0]
		if firstAt.IsZero() || r.stamp.Before(firstAt) {
			firstAt = r.stamp
		}
		if r.received.After(lastAt) {
			lastAt = r.received
		}
		if rate > 0 {
			late = append(late, r.received.Sub(s.due.Truncate(time.Millisecond)))
		}
	}
	if rate == 0 {
		return nil, n, lastAt.Sub(firstAt)
	}
	return late, n, lastAt.Sub(ds[0].due)
}

// produceMany schedules ds in chunks.
func (e *env) produceMany(ds []scheduled) {
	e.t.Helper()
	for len(ds) > 0 {
		k := min(len(ds), 2000)
		e.schedule(ds[:k]...)
		ds = ds[k:]
	}
}

func waitAssigned(tb testing.TB, adm *kadm.Client, group string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		groups, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err == nil && groups[group].State == "Stable" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("group %s did not stabilize in 30s", group)
}
