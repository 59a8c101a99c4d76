package sink

import (
	"sync"
	"time"
)

// Faults are the sink's injected misbehaviours, each the fraction of
// verified requests it hits. The fractions are disjoint slices of one roll,
// so together they must not exceed 1.
type Faults struct {
	ErrorRate    float64       // answered 503
	ThrottleRate float64       // answered 429 with Retry-After
	RetryAfter   time.Duration // of the 429s, whole seconds (at least 1)
	SlowRate     float64       // answered 204 after Slow
	Slow         time.Duration
	TimeoutRate  float64       // not answered until the client gives up, or Hang passes
	Hang         time.Duration // 30s when zero
	ResetRate    float64       // connection (HTTP/1.1) or stream (HTTP/2) reset
}

type fault int

const (
	faultNone fault = iota
	faultReset
	faultTimeout
	faultError
	faultThrottle
	faultSlow
)

// pick maps a roll u in [0,1) to the fault it lands on.
func (f Faults) pick(u float64) fault {
	for _, c := range []struct {
		rate float64
		f    fault
	}{{f.ResetRate, faultReset}, {f.TimeoutRate, faultTimeout}, {f.ErrorRate, faultError}, {f.ThrottleRate, faultThrottle}, {f.SlowRate, faultSlow}} {
		if u < c.rate {
			return c.f
		}
		u -= c.rate
	}
	return faultNone
}

// Sample is one delivered request, kept so that the ceiling client can post
// the same bodies.
type Sample struct {
	Path string
	Body []byte
}

// maxSamples bounds the bodies a Tally keeps.
const maxSamples = 10000

// Tally counts what the sink received during one scenario.
type Tally struct {
	faults Faults

	mu         sync.Mutex
	seen       map[string]struct{}  // webhook-ids answered 2xx
	arrived    map[string]time.Time // when each webhook-id was first answered 2xx
	latencies  []time.Duration      // of first deliveries
	duplicates int
	faulted    int
	badSig     int
	first      time.Time // first and last 2xx answer
	last       time.Time
	inFlight   int
	peak       int
	samples    []Sample
	paths      map[string]*PathTally
}

// PathTally is what one endpoint (sink path) received.
type PathTally struct {
	Delivered int
	Latencies []time.Duration // of first deliveries
	First     time.Time       // first and last first delivery
	Last      time.Time
}

func newTally(f Faults) *Tally {
	return &Tally{faults: f, seen: map[string]struct{}{}, arrived: map[string]time.Time{}, paths: map[string]*PathTally{}}
}

// Paths returns a copy of what each endpoint received, by path, for the
// paths where keep is true.
func (t *Tally) Paths(keep func(path string) bool) map[string]PathTally {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]PathTally{}
	for path, p := range t.paths {
		if keep(path) {
			c := *p
			c.Latencies = append([]time.Duration(nil), p.Latencies...)
			out[path] = c
		}
	}
	return out
}

// Counts is a snapshot of a Tally.
type Counts struct {
	Delivered     int // unique webhook-ids answered 2xx
	Duplicates    int // 2xx answers for an id already delivered
	Retries       int // requests answered with a fault
	BadSignatures int // requests refused: unknown path or bad signature
	PeakInFlight  int // most requests in the handler at once
}

// Counts returns the current counts.
func (t *Tally) Counts() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Counts{Delivered: len(t.seen), Duplicates: t.duplicates, Retries: t.faulted, BadSignatures: t.badSig, PeakInFlight: t.peak}
}

// Has reports whether id was delivered.
func (t *Tally) Has(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.seen[id]
	return ok
}

// Compare counts the expected ids never delivered and the delivered ids
// not expected.
func (t *Tally) Compare(expected map[string]struct{}) (lost, unexpected int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range expected {
		if _, ok := t.seen[id]; !ok {
			lost++
		}
	}
	for id := range t.seen {
		if _, ok := expected[id]; !ok {
			unexpected++
		}
	}
	return lost, unexpected
}

// Missing returns up to n expected ids never delivered, for diagnosis.
func (t *Tally) Missing(expected map[string]struct{}, n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for id := range expected {
		if _, ok := t.seen[id]; !ok && len(out) < n {
			out = append(out, id)
		}
	}
	return out
}

// Latencies returns a copy of the end-to-end latencies of first deliveries.
func (t *Tally) Latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.latencies...)
}

// Arrived returns when each delivery (webhook-id) first arrived, for the
// ids where keep is true.
func (t *Tally) Arrived(keep func(id string) bool) map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]time.Time{}
	for id, at := range t.arrived {
		if keep(id) {
			out[id] = at
		}
	}
	return out
}

// Last is when the latest delivery arrived (zero before the first).
func (t *Tally) Last() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Samples returns the bodies kept for the ceiling client.
func (t *Tally) Samples() []Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Sample(nil), t.samples...)
}

func (t *Tally) enter() {
	t.mu.Lock()
	t.inFlight++
	t.peak = max(t.peak, t.inFlight)
	t.mu.Unlock()
}

func (t *Tally) leave() {
	t.mu.Lock()
	t.inFlight--
	t.mu.Unlock()
}

func (t *Tally) fault() {
	t.mu.Lock()
	t.faulted++
	t.mu.Unlock()
}

func (t *Tally) badSignature() {
	t.mu.Lock()
	t.badSig++
	t.mu.Unlock()
}

// delivered records a 2xx answer for id; occurred is the event's time from
// the body (zero when absent).
func (t *Tally) delivered(id string, occurred, now time.Time, path string, body []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.seen[id]; dup {
		t.duplicates++
		return
	}
	t.seen[id] = struct{}{}
	t.arrived[id] = now
	if t.first.IsZero() {
		t.first = now
	}
	t.last = now
	p := t.paths[path]
	if p == nil {
		p = &PathTally{First: now}
		t.paths[path] = p
	}
	p.Delivered++
	p.Last = now
	if !occurred.IsZero() {
		t.latencies = append(t.latencies, now.Sub(occurred))
		p.Latencies = append(p.Latencies, now.Sub(occurred))
	}
	if len(t.samples) < maxSamples {
		t.samples = append(t.samples, Sample{Path: path, Body: body})
	}
}
