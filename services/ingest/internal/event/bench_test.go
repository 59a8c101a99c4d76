package event

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

// BenchmarkAccept is the CPU of POST /v1/events' work on one event of 1
// KiB of data between reading the body and producing it: parse, validate,
// turn into the record and encode it in Avro. It reports the process's
// CPU per event too, which other load on the machine inflates less than
// ns/op.
func BenchmarkAccept(b *testing.B) {
	codecs, err := record.LoadCodecs()
	if err != nil {
		b.Fatal(err)
	}
	pad := strings.Repeat("x", 1024-len(`{"id":"s-0000001","bucket":1,"region":"eu","pad":""}`))
	body := []byte(fmt.Sprintf(`{"id":"evt_bench_1","type":"bench.t1","subject":"s-0000001","source":"bench",`+
		`"occurred_at":"2026-03-04T05:06:07.123456789Z","data":{"id":"s-0000001","bucket":1,"region":"eu","pad":%q}}`, pad))
	now := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu0 := testinfra.CPUTime()
	for b.Loop() {
		ins, _, errs := Parse(body)
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		if errs := ins[0].Validate(""); len(errs) > 0 {
			b.Fatal(errs)
		}
		ev := ins[0].Record("acme", now)
		if _, err := codecs.Event.Marshal(&ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(testinfra.CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
