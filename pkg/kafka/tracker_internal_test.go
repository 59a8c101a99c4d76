package kafka

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func offsets(recs []*kgo.Record) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

func TestTracker(t *testing.T) {
	recs := func(offs ...int64) []*kgo.Record {
		out := make([]*kgo.Record, len(offs))
		for i, o := range offs {
			out[i] = &kgo.Record{Offset: o, LeaderEpoch: int32(o)}
		}
		return out
	}
	tr := tracker{through: -1}
	tr.add(recs(10, 11, 13, 14)) // gaps: control records, compaction
	tr.add(recs(13, 14, 15))     // an overlapping fetch adds only 15
	if tr.len() != 5 {
		t.Fatalf("tracking %d records, want 5", tr.len())
	}
	steps := []struct {
		name       string
		do         func()
		through    int64
		unfinished []int64
	}{
		{"finish a later one: nothing moves", func() { tr.finish(13) }, -1, []int64{10, 11, 14, 15}},
		{"finish an offset never taken: ignored", func() { tr.finish(12) }, -1, []int64{10, 11, 14, 15}},
		{"finish the oldest: through it", func() { tr.finish(10) }, 10, []int64{11, 14, 15}},
		{"finish the next: past the finished one", func() { tr.finish(11) }, 13, []int64{14, 15}},
		{"finish through 15", func() { tr.finishThrough(15) }, 15, nil},
	}
	for _, s := range steps {
		s.do()
		if tr.through != s.through || tr.throughEpoch != int32(max(s.through, 0)) && s.through >= 0 {
			t.Errorf("%s: through %d (epoch %d), want %d", s.name, tr.through, tr.throughEpoch, s.through)
		}
		if got := offsets(tr.unfinished()); !slices.Equal(got, s.unfinished) {
			t.Errorf("%s: unfinished %v, want %v", s.name, got, s.unfinished)
		}
	}
	if tr.done != 5 || tr.len() != 0 {
		t.Errorf("done %d, tracking %d; want 5 and 0", tr.done, tr.len())
	}
}

// TestTrackerCompacts: a long run of finished records behind a stuck one
// is dropped once the stuck one finishes, and memory is reused.
func TestTrackerCompacts(t *testing.T) {
	tr := tracker{through: -1}
	var all []*kgo.Record
	for o := range int64(5000) {
		all = append(all, &kgo.Record{Offset: o})
	}
	tr.add(all)
	for _, r := range all[1:] {
		tr.finish(r.Offset)
	}
	if tr.through != -1 || tr.len() != 5000 {
		t.Fatalf("through %d tracking %d, want -1 and 5000 behind the stuck record", tr.through, tr.len())
	}
	tr.finish(0)
	if tr.through != 4999 || tr.len() != 0 || len(tr.entries) != 0 {
		t.Errorf("through %d, tracking %d (%d entries kept), want 4999 and none", tr.through, tr.len(), len(tr.entries))
	}
	tr.add(all[:0])
	tr.add([]*kgo.Record{{Offset: 4999}, {Offset: 5000}})
	if tr.len() != 1 {
		t.Errorf("tracking %d, want only the new offset 5000", tr.len())
	}
}
