package wire

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDocumented: docs/wire.md, the operators' reading of this package,
// lists every topic with its key, record and retention, every header and
// every kind of Redis key as declared here.
func TestDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/wire.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	row := func(first string) string {
		for _, line := range strings.Split(doc, "\n") {
			if strings.HasPrefix(line, "| `"+first+"`") {
				return line
			}
		}
		return ""
	}
	tiers := []time.Duration{5 * time.Second}
	for _, tp := range NewTopics(DefaultPrefix).All(tiers) {
		name := strings.Replace(tp.Name, "retry.5s", "retry.<tier>", 1)
		t.Run(name, func(t *testing.T) {
			r := row(name)
			if r == "" {
				t.Fatalf("no row for %s", name)
			}
			want := []string{"| " + tp.Key + " |"}
			if tp.Record != "" {
				want = append(want, "`"+tp.Record+"`")
			}
			if tp.Compacted {
				want = append(want, "compacted")
			} else {
				want = append(want, strconv.Itoa(int(tp.Retention/day))+" days")
			}
			for _, w := range want {
				if !strings.Contains(r, w) {
					t.Errorf("the row of %s lacks %q:\n%s", name, w, r)
				}
			}
		})
	}
	for _, h := range []string{HeaderError, HeaderSource, HeaderTenant, HeaderParked, HeaderSubscription, HeaderRedelivery, HeaderImmediate} {
		if row(h) == "" {
			t.Errorf("no row for the header %s", h)
		}
	}
	if !strings.Contains(row(HeaderError), "at most "+strconv.Itoa(MaxReasonBytes)+" bytes") {
		t.Errorf("the row of %s does not give its bound, %d bytes", HeaderError, MaxReasonBytes)
	}
	k := NewTopics(DefaultPrefix).Keys()
	for _, kind := range []string{k.EventIDs(), k.Delivered(), k.Claims(), k.Rate(), k.Health(), k.Parked(), k.Notify(), k.Crash(), k.EventRedeliveries()} {
		if !strings.Contains(doc, "| `"+kind) {
			t.Errorf("no row for the Redis keys %s...", kind)
		}
	}
}
