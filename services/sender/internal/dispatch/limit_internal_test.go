package dispatch

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		start   int
		ceiling int
		answers []struct {
			took   time.Duration
			failed bool
		}
		want int
	}{
		{name: "slow start: one more per answer while latency is flat", start: 4, ceiling: 64,
			answers: repeat(10, 20*ms, false), want: 14},
		{name: "never past the ceiling", start: 4, ceiling: 8, answers: repeat(50, 20*ms, false), want: 8},
		{name: "a failure halves it", start: 16, ceiling: 64, answers: repeat(1, 20*ms, true), want: 8},
		{name: "failures of one round halve it once", start: 16, ceiling: 64, answers: repeat(16, 20*ms, true), want: 8},
		{name: "failures over many rounds bring it to one", start: 16, ceiling: 64, answers: repeat(200, time.Second, true), want: 1},
		{name: "a 3 s endpoint answering steadily grows like a fast one", start: 16, ceiling: 64, answers: repeat(48, 3*time.Second, false), want: 64},
		{name: "rising latency shrinks it", start: 16, ceiling: 64,
			answers: append(repeat(20, 10*ms, false), repeat(5, 2*time.Second, false)...), want: 18},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(tc.start, tc.ceiling)
			// The answers of a round come back together: requests of one
			// moment, each started one round after the previous.
			now := time.Unix(0, 0)
			for i, a := range tc.answers {
				if i%tc.start == 0 {
					now = now.Add(a.took + time.Millisecond)
				}
				l.observe(now.Add(-a.took), a.took, a.failed)
			}
			if got := l.max(); got != tc.want {
				t.Errorf("limit %d, want %d", got, tc.want)
			}
		})
	}
}

// TestLimiterGrowsByOnePerRoundAfterACut: after its first decrease the
// limit grows additively, one per round of answers.
func TestLimiterGrowsByOnePerRoundAfterACut(t *testing.T) {
	l := newLimiter(16, 64)
	at := time.Unix(0, 0)
	l.observe(at, 10*time.Millisecond, true) // 8, slow start over
	for range 8 {                            // one round at 8
		l.observe(at, 10*time.Millisecond, false)
	}
	if got := l.max(); got != 8 && got != 9 {
		t.Fatalf("limit %d after a round, want 8 or 9", got)
	}
	for range 9 * 4 {
		l.observe(at, 10*time.Millisecond, false)
	}
	if got := l.max(); got < 11 || got > 13 {
		t.Errorf("limit %d after five rounds from 8, want about 12", got)
	}
}

func repeat(n int, took time.Duration, failed bool) []struct {
	took   time.Duration
	failed bool
} {
	out := make([]struct {
		took   time.Duration
		failed bool
	}, n)
	for i := range out {
		out[i].took, out[i].failed = took, failed
	}
	return out
}

func TestPoolKeepsAQuarterForIdleEndpoints(t *testing.T) {
	p := newPool(8) // reserve 2
	a, b := &partition{wake: make(chan struct{}, 1)}, &partition{wake: make(chan struct{}, 1)}
	for i := range 6 {
		if !p.acquire(a, i+1) { // a busy endpoint: held i+1
			t.Fatalf("slot %d refused while more than the reserve was free", i)
		}
	}
	if p.acquire(a, 7) {
		t.Fatal("a busy endpoint took a slot of the reserve")
	}
	if !p.acquire(b, 0) || !p.acquire(b, 0) {
		t.Fatal("an endpoint with nothing in flight was refused a reserved slot")
	}
	if p.acquire(b, 0) {
		t.Fatal("a slot beyond the pool's size")
	}
	p.release()
	select {
	case <-a.wake:
	default:
		t.Error("the partition that waited was not told of the freed slot")
	}
	select {
	case <-b.wake:
	default:
		t.Error("every waiting partition is told")
	}
	if got := p.inUse(); got != 7 {
		t.Errorf("%d in use, want 7", got)
	}
}

func TestTopLanes(t *testing.T) {
	all := []laneFigures{
		{subscription: "idle"},
		{subscription: "a", backlog: 5},
		{subscription: "b", backlog: 50},
		{subscription: "c", inFlight: 3},
		{subscription: "a", backlog: 60, limit: 2}, // a's lane on another partition
		{subscription: "d", parked: 9},
	}
	got := topLanes(all, 3)
	var names []string
	for _, f := range got {
		names = append(names, f.subscription)
	}
	if len(got) != 3 || names[0] != "a" || names[1] != "b" || names[2] != "c" {
		t.Fatalf("top lanes %v, want a (65 waiting over two lanes), b, c", names)
	}
	if got[0].backlog != 65 {
		t.Errorf("a's backlog %d, want both lanes' 65", got[0].backlog)
	}
	if n := len(topLanes(all, 100)); n != 4 {
		t.Errorf("%d lanes shown, want the 4 that hold something", n)
	}
}
