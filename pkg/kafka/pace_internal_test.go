package kafka

import (
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	const interval = 15 * time.Millisecond
	t0 := time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	t.Run("a low rate never waits", func(t *testing.T) {
		p := pacer{interval: interval}
		for i := range 50 {
			now := at(20 * i) // 50 calls a second
			p.called(now)
			if w := p.begin(now); w != 0 {
				t.Fatalf("call %d waited %s", i, w)
			}
		}
	})

	t.Run("a burst after a quiet spell does not wait", func(t *testing.T) {
		p := pacer{interval: interval}
		p.called(at(0))
		p.begin(at(0))
		for i := range 5 { // five calls a millisecond apart, a second later
			now := at(1000 + i)
			p.called(now)
			if w := p.begin(now); w != 0 {
				t.Fatalf("burst call %d waited %s", i, w)
			}
		}
	})

	t.Run("a steady load is paced from the last start", func(t *testing.T) {
		p := pacer{interval: interval}
		ms := 0
		for ; ms < 200; ms++ { // a call every millisecond
			p.called(at(ms))
		}
		if p.gap >= interval {
			t.Fatalf("average gap %s after 200 calls 1 ms apart, want under %s", p.gap, interval)
		}
		if w := p.begin(at(ms)); w != 0 {
			t.Fatalf("first transaction waited %s; nothing began within the interval", w)
		}
		p.called(at(ms + 4))
		if w, want := p.begin(at(ms+4)), interval; w != want-4*time.Millisecond {
			t.Fatalf("a transaction 4 ms after the last began waits %s, want %s", w, want-4*time.Millisecond)
		}
		// It is taken to begin when its wait ends: the next is paced from there.
		p.called(at(ms + 20))
		if w := p.begin(at(ms + 20)); w != 10*time.Millisecond {
			t.Fatalf("the next transaction waits %s, want 10ms (15 ms after the last began, at +15)", w)
		}
	})

	t.Run("until tells the wait without beginning", func(t *testing.T) {
		p := pacer{interval: interval}
		for ms := range 200 {
			p.called(at(ms))
		}
		p.begin(at(200))
		for range 3 { // asking twice changes nothing
			if w := p.until(at(205)); w != 10*time.Millisecond {
				t.Fatalf("until 5 ms after a start: %s, want 10ms", w)
			}
		}
		if w := p.until(at(230)); w != 0 {
			t.Fatalf("until past the interval: %s, want 0", w)
		}
		if w := p.begin(at(206)); w != 9*time.Millisecond {
			t.Fatalf("begin after until: waits %s, want 9ms (until did not count as a start)", w)
		}
		q := pacer{interval: interval}
		for i := range 10 {
			q.called(at(20 * i)) // a low rate
		}
		q.begin(at(180))
		if w := q.until(at(181)); w != 0 {
			t.Fatalf("until at a low rate: %s, want 0", w)
		}
	})

	t.Run("pacing stops when the load does", func(t *testing.T) {
		p := pacer{interval: interval}
		for ms := range 200 {
			p.called(at(ms))
		}
		p.begin(at(200))
		ms := 200
		for range 30 { // then a call every 50 ms
			ms += 50
			p.called(at(ms))
		}
		p.begin(at(ms))
		p.called(at(ms + 1))
		if w := p.begin(at(ms + 1)); w != 0 {
			t.Fatalf("waited %s at a low rate after a busy spell (average gap %s)", w, p.gap)
		}
	})
}
