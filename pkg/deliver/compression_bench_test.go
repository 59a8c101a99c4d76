package deliver_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/deliver"
	"github.com/hookline/hookline/pkg/selfsigned"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/testreceiver"
)

// BenchmarkCompression measures what compression "gzip" does to a
// subscription's throughput: in one run, the same number of signed
// requests with and without gzip to a local HTTPS/HTTP2 sink, 16 at a
// time, over loopback (where bandwidth is free and gzip is pure CPU) and
// over a link shaped to 100 Mbit/s (a remote endpoint). It reports each
// rate, ratio = gzip/plain requests per second, wire-ratio = bytes sent
// gzip/plain, and the test process's CPU per request of each (the sink's
// decompression included, as a receiver would pay it). Run it with a fixed
// count, e.g.
//
//	go test -run '^$' -bench BenchmarkCompression -benchtime 2000x ./internal/deliver
func BenchmarkCompression(b *testing.B) {
	for _, size := range []int{2 << 10, 16 << 10} {
		for _, link := range []struct {
			name        string
			bytesPerSec int64 // 0: unshaped
		}{{"loopback", 0}, {"100Mbit", 100_000_000 / 8}} {
			b.Run(fmt.Sprintf("body=%dKiB/link=%s", size>>10, link.name), func(b *testing.B) {
				benchmarkCompression(b, eventBody(size), link.bytesPerSec)
			})
		}
	}
}

func benchmarkCompression(b *testing.B, body []byte, bytesPerSec int64) {
	url, cert := shapedSink(b, bytesPerSec)
	client := deliver.NewClient(deliver.ClientOptions{Guard: testreceiver.Guard(b), RootCAs: cert.Pool(), MaxConnsPerHost: 16})
	b.Cleanup(client.CloseIdleConnections)
	key, _, _ := signature.NewSecret()
	run := func(gzip bool, n int) (rate float64, wire int64, cpu time.Duration) {
		var next, sent atomic.Int64
		var wg sync.WaitGroup
		cpu0, start := testinfra.CPUTime(), time.Now()
		for range 16 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					res := deliver.Send(context.Background(), client, deliver.Request{URL: url, ID: "msg_bench", Body: body,
						Secrets: []signature.Secret{key}, Timeout: 30 * time.Second, Gzip: gzip}, time.Now())
					if res.Class != deliver.Delivered {
						b.Errorf("result %+v", res)
						return
					}
					sent.Add(res.RequestBytes)
				}
			})
		}
		wg.Wait()
		return float64(n) / time.Since(start).Seconds(), sent.Load(), testinfra.CPUTime() - cpu0
	}
	run(false, 64) // warm the connections up
	b.ResetTimer()
	plain, plainWire, plainCPU := run(false, b.N)
	gz, gzWire, gzCPU := run(true, b.N)
	b.StopTimer()
	b.ReportMetric(plain, "plain-req/s")
	b.ReportMetric(gz, "gzip-req/s")
	b.ReportMetric(gz/plain, "ratio")
	b.ReportMetric(float64(gzWire)/float64(plainWire), "wire-ratio")
	b.ReportMetric(float64(plainCPU.Microseconds())/float64(b.N), "plain-cpu-µs/req")
	b.ReportMetric(float64(gzCPU.Microseconds())/float64(b.N), "gzip-cpu-µs/req")
}

// eventBody is a JSON event of about size bytes, shaped like an order
// with line items: repetitive keys, varied values.
func eventBody(size int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"id":"evt_2bT9xk3LQm7vR1pZ","type":"order.created","timestamp":"2025-01-01T12:00:00Z","subject":"order_81723","data":{"order_id":"order_81723","items":[`)
	for i := 0; sb.Len() < size-40; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"sku":"SKU-%05d","name":"Widget model %d","qty":%d,"price":%d,"warehouse":"eu-west-%d"}`, i*7919%100000, i, i%5+1, 999+i*37%5000, i%3)
	}
	sb.WriteString(`]}}`)
	return []byte(sb.String())
}

// shapedSink is an HTTPS/HTTP2 endpoint that reads each body (gunzipping
// it, as a receiver would) and answers 204, its connections sharing a
// link of bytesPerSec (0: unshaped) in the client-to-server direction.
func shapedSink(b *testing.B, bytesPerSec int64) (string, selfsigned.Cert) {
	b.Helper()
	cert, err := selfsigned.New()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if bytesPerSec > 0 {
		ln = &shapedListener{Listener: ln, link: &link{bytesPerSec: bytesPerSec}}
	}
	srv := &http.Server{TLSConfig: cert.ServerConfig(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzipReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		_, _ = io.Copy(io.Discard, body)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	b.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/hook", cert
}

// link is a shared bottleneck: every byte read through it waits for its
// turn at bytesPerSec. A reader sleeps only once the link is a
// millisecond behind, so that timer granularity does not slow it further.
type link struct {
	bytesPerSec int64
	mu          sync.Mutex
	free        time.Time // when the link is next idle
}

func (l *link) pass(n int) {
	l.mu.Lock()
	now := time.Now()
	if l.free.Before(now) {
		l.free = now
	}
	l.free = l.free.Add(time.Duration(int64(n) * int64(time.Second) / l.bytesPerSec))
	wait := l.free.Sub(now)
	l.mu.Unlock()
	if wait > time.Millisecond {
		time.Sleep(wait)
	}
}

type shapedListener struct {
	net.Listener
	link *link
}

func (s *shapedListener) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &shapedConn{Conn: c, link: s.link}, nil
}

type shapedConn struct {
	net.Conn
	link *link
}

func (c *shapedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.link.pass(n)
	}
	return n, err
}

func gzipReader(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }

// BenchmarkGzipLevel compresses a 16 KiB event at gzip's fastest and
// default levels, to justify the sender's choice (gzipLevel): it reports
// the compressed size over the original (ratio) beside the time.
func BenchmarkGzipLevel(b *testing.B) {
	body := eventBody(16 << 10)
	for _, level := range []int{gzip.BestSpeed, gzip.DefaultCompression} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			var out countingWriter
			zw, _ := gzip.NewWriterLevel(&out, level)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				out = 0
				zw.Reset(&out)
				_, _ = zw.Write(body)
				_ = zw.Close()
			}
			b.ReportMetric(float64(out)/float64(len(body)), "ratio")
		})
	}
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
