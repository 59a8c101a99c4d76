package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	hookstack "github.com/hookline/hookline/pkg/stack"
	"github.com/hookline/hookline/pkg/telemetry"
	"github.com/hookline/hookline/pkg/testinfra"
)

// BenchmarkPostEvent measures POST /v1/events with one event per request,
// as the api load scenario sends them: 64 concurrent clients over HTTP on
// loopback, events carrying their own ids (so each request checks and
// marks its id in Redis) and 1 KiB of data, against the real broker and
// Redis (acks=all). Its sub-benchmark bare is the same clients against a
// bare server that only reads and decodes each body (as hookload's API
// ceiling does), so that one run gives the ratio. Each reports events per
// second and the CPU per event of this process (server and clients) and,
// when HOOKLINE_BENCH_BROKER_PIDS names them, of the brokers. Take
// profiles with -cpuprofile, -blockprofile and -mutexprofile:
//
//	go test -run '^$' -bench BenchmarkPostEvent/ingest -benchtime 20000x \
//	  -cpuprofile cpu.out ./internal/api/
func BenchmarkPostEvent(b *testing.B) {
	var counts produceCounts
	// The producer as main builds it: tracing and metrics hooks too.
	tel, err := telemetry.New(context.Background(), "ingest-bench")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	st := newStack(b, tel.KafkaHooks(), kgo.WithHooks(&counts))
	var ids atomic.Int64
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var ev map[string]any
		if err == nil {
			err = json.Unmarshal(body, &ev)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":"evt_bench_%d"}`, ids.Add(1))
	}))
	defer bare.Close()
	b.Run("ingest", func(b *testing.B) {
		counts.reset()
		benchPosts(b, st.url)
		reqs, batches, recs := counts.reset()
		b.ReportMetric(float64(recs)/float64(max(1, reqs)), "records/request")
		b.ReportMetric(float64(recs)/float64(max(1, batches)), "records/batch")
	})
	b.Run("bare", func(b *testing.B) { benchPosts(b, bare.URL) })
}

// produceCounts counts a producer's produce requests, the partition
// batches in them and their records: how well concurrent requests share
// produce requests.
type produceCounts struct{ requests, batches, records atomic.Int64 }

func (c *produceCounts) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 0 && err == nil { // 0: Produce
		c.requests.Add(1)
	}
}

func (c *produceCounts) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	c.batches.Add(1)
	c.records.Add(int64(m.NumRecords))
}

// reset zeroes the counts and returns them.
func (c *produceCounts) reset() (requests, batches, records int64) {
	return c.requests.Swap(0), c.batches.Swap(0), c.records.Swap(0)
}

// benchPosts posts b.N single events to url from 64 clients.
func benchPosts(b *testing.B, url string) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	pad := strings.Repeat("x", 1024-len(`{"id":"s-0000000","bucket":00,"region":"eu","pad":""}`))
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	var n atomic.Int64
	post := func() error {
		i := n.Add(1)
		body := fmt.Sprintf(`{"id":"evt_bench_%s_%d","type":"bench.t%d","subject":"s-%07d","source":"bench",`+
			`"occurred_at":%q,"data":{"id":"s-%07d","bucket":%d,"region":"eu","pad":%q}}`,
			run, i, i%10, i, time.Now().UTC().Format(time.RFC3339Nano), i, i%100, pad)
		req, err := http.NewRequest(http.MethodPost, url+"/v1/events", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer key-acme")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted || !bytes.Contains(out, []byte(`"evt_bench_`)) {
			return fmt.Errorf("status %d: %s", resp.StatusCode, out)
		}
		return nil
	}
	if err := post(); err != nil { // the producer's first metadata, outside the timing
		b.Fatal(err)
	}
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	brokers := brokerPIDs(b)
	b.ResetTimer()
	start, cpu0, broker0 := time.Now(), testinfra.CPUTime(), brokersCPU(b, brokers)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := post(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	took, cpu, broker := time.Since(start), testinfra.CPUTime()-cpu0, brokersCPU(b, brokers)-broker0
	b.ReportMetric(float64(b.N)/took.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	if len(brokers) > 0 {
		b.ReportMetric(float64(broker.Microseconds())/float64(b.N), "broker-cpu-µs/event")
	}
}

// brokerPIDs are the process ids in HOOKLINE_BENCH_BROKER_PIDS
// (comma-separated), as hookload's -broker-pids takes them.
func brokerPIDs(b *testing.B) []int {
	b.Helper()
	var pids []int
	for _, f := range strings.FieldsFunc(os.Getenv("HOOKLINE_BENCH_BROKER_PIDS"), func(r rune) bool { return r == ',' }) {
		pid, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			b.Fatalf("HOOKLINE_BENCH_BROKER_PIDS: %v", err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// brokersCPU is the CPU the processes pids have used so far.
func brokersCPU(b *testing.B, pids []int) time.Duration {
	b.Helper()
	var sum time.Duration
	for _, pid := range pids {
		d, err := hookstack.ProcessCPU(pid)
		if err != nil {
			b.Fatalf("broker %d: %v", pid, err)
		}
		sum += d
	}
	return sum
}
