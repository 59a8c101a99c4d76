// Package report turns one benchmark run into numbers people compare:
// deliveries per second, end-to-end latency percentiles, lost and duplicate
// deliveries, retries, CPU per process and the ratio to the bare ceiling.
// It prints them as a markdown table and writes them as JSON.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Latency is a summary of end-to-end latencies, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize sorts ds in place and returns its percentiles by the
// nearest-rank method: the p-th percentile is the smallest value that at
// least p% of the values do not exceed, so it is always an observed value.
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{
		Count: len(ds),
		P50:   ms(Percentile(ds, 50)),
		P90:   ms(Percentile(ds, 90)),
		P95:   ms(Percentile(ds, 95)),
		P99:   ms(Percentile(ds, 99)),
		Max:   ms(ds[len(ds)-1]),
	}
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted;
// zero when sorted is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Ceiling is what a plain Go client achieved against the same sink with the
// same bodies and concurrency.
type Ceiling struct {
	Requests    int     `json:"requests"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"per_second"`
}

// Result is one scenario's outcome.
type Result struct {
	Scenario string `json:"scenario"`
	Via      string `json:"via"` // kafka or http
	// Subscriptions is how many the scenario created.
	Subscriptions int `json:"subscriptions"`
	Events        int `json:"events"`   // events the broker (or API) acknowledged
	Expected      int `json:"expected"` // deliveries those events owe
	Delivered     int `json:"delivered"`
	// Lost is expected deliveries never answered 2xx: must be 0.
	Lost int `json:"lost"`
	// Unexpected is delivered ids no event owed (a matching bug).
	Unexpected int `json:"unexpected"`
	// Duplicates is 2xx answers for an id already delivered.
	Duplicates int `json:"duplicates"`
	// Retries is requests the sink did not answer 2xx (faults injected).
	Retries       int     `json:"retries"`
	BadSignatures int     `json:"bad_signatures"`
	Seconds       float64 `json:"seconds"` // first event sent to last delivery
	PerSecond     float64 `json:"deliveries_per_second"`
	Latency       Latency `json:"latency"`
	// CPU is CPU seconds per process over the scenario (services, and
	// hookload itself: generator and sink).
	CPU     map[string]float64 `json:"cpu_seconds"`
	Ceiling Ceiling            `json:"ceiling"`
	// Ratio is PerSecond over the ceiling's.
	Ratio float64 `json:"ceiling_ratio"`
	// Groups are what each set of the scenario's endpoints got, when it
	// has sets that behave differently (fast, slow, timing out, ...).
	Groups []Group `json:"groups,omitempty"`
	// Hops break the end-to-end latency down by where the time went
	// (scenarios that ask for it: latency).
	Hops []Hop `json:"hops,omitempty"`
	// Accepted is the events the API accepted per second over the time
	// spent sending (the api scenario), whose ceiling is a bare Go HTTP
	// server's in the same run: then Ratio is Accepted over it.
	Accepted float64 `json:"accepted_per_second,omitempty"`
	// Requests is the API's answer time per request, as its clients saw
	// it (the api scenario).
	Requests Latency `json:"requests"`
	// Immediate is what immediate-mode requests got (the immediate
	// scenario); nil for the others.
	Immediate *Immediate `json:"immediate,omitempty"`
	// Actions are the faults a fault suite inflicted, in order, or what a
	// scenario compared.
	Actions  []string `json:"actions,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Immediate is the figures of POST /v1/events?mode=immediate.
type Immediate struct {
	// Overhead is each delivered request's answer time less its attempt's
	// own time (duration_ms, whole milliseconds, so it overstates the
	// overhead by under a millisecond): what immediate mode adds to the
	// receiver's response time (validation, Kafka, Redis, matching).
	Overhead Latency `json:"overhead"`
	// Attempt is the delivered attempts' own time (duration_ms).
	Attempt Latency `json:"attempt"`
	// Queued is the answer time of requests whose delivery was queued:
	// the same request without an attempt, a baseline in the same run.
	Queued Latency `json:"queued"`
	// Outcomes counts the answers' outcomes (delivered, queued, ...).
	Outcomes map[string]int `json:"outcomes"`
}

// Hop is the latency of one stretch of a delivery's way, from one
// timestamp to the next (Kafka's record timestamps and the delivery log's
// have millisecond resolution).
type Hop struct {
	Name    string  `json:"name"`
	About   string  `json:"about"`
	Latency Latency `json:"latency"`
}

// Group is what one set of a scenario's endpoints got.
type Group struct {
	Name      string `json:"name"`
	Endpoints int    `json:"endpoints"`
	// Expected is what the events owed the group: 0 for endpoints that
	// never take a delivery (timing out, refusing connections).
	Expected  int `json:"expected"`
	Delivered int `json:"delivered"`
	Lost      int `json:"lost"`
	// PerSecond is Delivered over the time from the first event sent to
	// the group's last delivery.
	PerSecond float64 `json:"deliveries_per_second"`
	Latency   Latency `json:"latency"`
}

// Group returns the group called name, and whether there is one.
func (r *Result) Group(name string) (Group, bool) {
	for _, g := range r.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return Group{}, false
}

// Finish fills the derived fields: throughput and the ceiling ratio.
func (r *Result) Finish() {
	if r.Seconds > 0 {
		r.PerSecond = float64(r.Delivered) / r.Seconds
	}
	switch {
	case r.Ceiling.PerSecond > 0 && r.Accepted > 0:
		r.Ratio = r.Accepted / r.Ceiling.PerSecond
	case r.Ceiling.PerSecond > 0:
		r.Ratio = r.PerSecond / r.Ceiling.PerSecond
	}
	if r.Lost > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d deliveries lost", r.Lost))
	}
	if r.Unexpected > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d unexpected deliveries", r.Unexpected))
	}
	if r.BadSignatures > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d bad signatures", r.BadSignatures))
	}
}

// Run is a whole benchmark run.
type Run struct {
	Started time.Time         `json:"started"`
	Size    string            `json:"size"`
	Host    map[string]string `json:"host"`
	Results []Result          `json:"results"`
}

// OK reports whether no scenario had a problem.
func (r *Run) OK() bool {
	for _, res := range r.Results {
		if len(res.Problems) > 0 {
			return false
		}
	}
	return true
}

// Processes whose CPU the table shows, in order.
var Processes = []string{"ingest", "matcher", "sender", "retry", "broker", "hookload"}

// Markdown writes the results as a markdown table.
func (r *Run) Markdown(w io.Writer) {
	cpu := make([]string, len(Processes))
	for i, p := range Processes {
		cpu[i] = "cpu " + p
	}
	head := append([]string{"scenario", "via", "subs", "events", "deliveries", "deliv/s", "ceiling/s", "ratio",
		"p50 ms", "p95 ms", "p99 ms", "max ms", "lost", "dup", "retries"}, cpu...)
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(head)))
	for _, res := range r.Results {
		row := []string{res.Scenario, res.Via, fmt.Sprint(res.Subscriptions), fmt.Sprint(res.Events),
			fmt.Sprintf("%d/%d", res.Delivered, res.Expected),
			fmt.Sprintf("%.0f", res.PerSecond), "-", "-",
			fmt.Sprintf("%.0f", res.Latency.P50), fmt.Sprintf("%.0f", res.Latency.P95),
			fmt.Sprintf("%.0f", res.Latency.P99), fmt.Sprintf("%.0f", res.Latency.Max),
			fmt.Sprint(res.Lost), fmt.Sprint(res.Duplicates), fmt.Sprint(res.Retries)}
		if res.Ceiling.PerSecond > 0 {
			row[6], row[7] = fmt.Sprintf("%.0f", res.Ceiling.PerSecond), fmt.Sprintf("%.2f", res.Ratio)
		}
		for _, p := range Processes {
			row = append(row, fmt.Sprintf("%.1f", res.CPU[p]))
		}
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
	}
	for _, res := range r.Results {
		for _, g := range res.Groups {
			fmt.Fprintf(w, "\n%s, %s (%d endpoints): %d/%d delivered, lost %d, %.0f/s, p50 %.0f ms, p99 %.0f ms",
				res.Scenario, g.Name, g.Endpoints, g.Delivered, g.Expected, g.Lost, g.PerSecond, g.Latency.P50, g.Latency.P99)
		}
		if len(res.Groups) > 0 {
			fmt.Fprintln(w)
		}
		if res.Accepted > 0 {
			fmt.Fprintf(w, "\n%s: %.0f events/s accepted, %.0f/s for a bare Go HTTP server (ratio %.2f); request p50 %.1f ms, p99 %.1f ms\n",
				res.Scenario, res.Accepted, res.Ceiling.PerSecond, res.Ratio, res.Requests.P50, res.Requests.P99)
		}
		if im := res.Immediate; im != nil {
			fmt.Fprintf(w, "\n%s: answer p50 %.1f ms, p99 %.1f ms; the attempt's own time p50 %.0f ms, p99 %.0f ms; answer less the attempt's own time p50 %.1f ms, p99 %.1f ms; queued answers (no attempt) p50 %.1f ms, p99 %.1f ms; outcomes %v\n",
				res.Scenario, res.Requests.P50, res.Requests.P99, im.Attempt.P50, im.Attempt.P99, im.Overhead.P50, im.Overhead.P99, im.Queued.P50, im.Queued.P99, im.Outcomes)
		}
		if len(res.Hops) > 0 {
			fmt.Fprintf(w, "\n%s, per hop (ms):\n\n| hop | from → to | count | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|\n", res.Scenario)
			for _, h := range res.Hops {
				l := h.Latency
				fmt.Fprintf(w, "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f |\n", h.Name, h.About, l.Count, l.P50, l.P90, l.P99, l.Max)
			}
		}
		if len(res.Actions) > 0 {
			fmt.Fprintf(w, "\n%s: %s\n", res.Scenario, strings.Join(res.Actions, "; "))
		}
		for _, p := range res.Problems {
			fmt.Fprintf(w, "\n**%s: %s**\n", res.Scenario, p)
		}
	}
}

// WriteJSON writes the run to dir/<start time>-<size>.json and returns the
// file's path.
func (r *Run) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.Started.UTC().Format("20060102T150405Z")+"-"+r.Size+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}
