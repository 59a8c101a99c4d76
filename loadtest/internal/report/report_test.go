package report

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100 is 50", hundred, 50, 50 * time.Millisecond},
		{"p95 of 1..100 is 95", hundred, 95, 95 * time.Millisecond},
		{"p99 of 1..100 is 99", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p50 of four rounds the rank up", ms(10, 20, 30, 40), 50, 20 * time.Millisecond},
		{"p51 of four takes the third", ms(10, 20, 30, 40), 51, 30 * time.Millisecond},
		{"p99 of ten is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 1000), 99, time.Second},
		{"tiny p is the min", ms(5, 6, 7), 0.001, 5 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeSortsAndReportsObservedValues(t *testing.T) {
	// One slow outlier among 200 fast values: p50..p99 stay fast, max shows it.
	ds := ms(3000)
	for i := range 199 {
		ds = append(ds, time.Duration(10+i%7)*time.Millisecond)
	}
	l := Summarize(ds)
	if l.Count != 200 || l.Max != 3000 {
		t.Fatalf("count %d max %v, want 200 and 3000", l.Count, l.Max)
	}
	if !(l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
		t.Fatalf("percentiles not ordered: %+v", l)
	}
	if l.P99 > 16 {
		t.Errorf("p99 %v ms: one outlier in 200 must not reach p99", l.P99)
	}
	if Summarize(nil) != (Latency{}) {
		t.Error("empty input must give a zero summary")
	}
}

func TestFinishDerivesRatesAndFlagsProblems(t *testing.T) {
	r := Result{Delivered: 5000, Seconds: 2, Ceiling: Ceiling{PerSecond: 10000}, Lost: 1, Unexpected: 2, BadSignatures: 3}
	r.Finish()
	if r.PerSecond != 2500 || r.Ratio != 0.25 {
		t.Errorf("per second %v ratio %v, want 2500 and 0.25", r.PerSecond, r.Ratio)
	}
	if len(r.Problems) != 3 {
		t.Errorf("problems %q, want lost, unexpected and bad signatures", r.Problems)
	}
	run := Run{Results: []Result{r}}
	if run.OK() {
		t.Error("a run with lost deliveries is not OK")
	}

	clean := Result{Delivered: 10}
	clean.Finish()
	if clean.PerSecond != 0 || clean.Ratio != 0 || len(clean.Problems) != 0 {
		t.Errorf("no time and no ceiling must leave rates at 0 without problems: %+v", clean)
	}
}

func TestMarkdownAndJSON(t *testing.T) {
	run := &Run{Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Size: "quick", Results: []Result{{
		Scenario: "fanout", Via: "kafka", Expected: 10, Delivered: 10, Seconds: 1,
		CPU: map[string]float64{"sender": 1.5}, Ceiling: Ceiling{PerSecond: 20},
	}}}
	run.Results[0].Finish()
	var buf bytes.Buffer
	run.Markdown(&buf)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header, rule and one row, got:\n%s", buf.String())
	}
	if cols := strings.Count(lines[0], "|"); cols != strings.Count(lines[2], "|") {
		t.Errorf("header has %d separators, row %d", cols, strings.Count(lines[2], "|"))
	}
	if !strings.Contains(lines[2], "| fanout | kafka |") || !strings.Contains(lines[2], "| 0.50 |") || !strings.Contains(lines[2], "| 1.5 |") {
		t.Errorf("row misses scenario, ratio or sender CPU: %s", lines[2])
	}

	path, err := run.WriteJSON(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, "20260102T030405Z-quick.json") {
		t.Errorf("file %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Run
	if err := json.Unmarshal(b, &back); err != nil || back.Results[0].Ratio != 0.5 {
		t.Errorf("JSON does not round-trip: %v %+v", err, back)
	}
}

func TestAcceptedIsComparedWithTheAPICeiling(t *testing.T) {
	r := Result{Scenario: "api", Delivered: 5000, Seconds: 2, Accepted: 4000, Ceiling: Ceiling{PerSecond: 20000},
		Hops: []Hop{{Name: "matcher", About: "a → b", Latency: Latency{Count: 3, P50: 1, P90: 2, P99: 3, Max: 4}}}}
	r.Finish()
	if r.Ratio != 0.2 {
		t.Errorf("ratio %v, want accepted over the ceiling: 0.2", r.Ratio)
	}
	var b strings.Builder
	(&Run{Results: []Result{r}}).Markdown(&b)
	for _, want := range []string{"4000 events/s accepted", "ratio 0.20", "| matcher | a → b | 3 | 1.0 | 2.0 | 3.0 | 4.0 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}
