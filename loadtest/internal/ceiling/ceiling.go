// Package ceiling measures the bare ceiling of a benchmark: a plain Go
// http.Client posting the bodies Hookline delivered, signed the same way,
// to the same sink with the same concurrency. A scenario's throughput over
// the ceiling says how much of what this machine and sink allow Hookline
// achieves.
package ceiling

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/loadtest/internal/report"
	"github.com/hookline/hookline/loadtest/internal/sink"
	"github.com/hookline/hookline/pkg/signature"
)

// Run posts n requests, cycling through samples, concurrency at a time,
// to sk, and stops early at maxDuration. Each request gets a fresh
// webhook-id so that the sink counts it.
func Run(ctx context.Context, sk *sink.Sink, samples []sink.Sample, n, concurrency int, maxDuration time.Duration) (report.Ceiling, error) {
	if len(samples) == 0 || n == 0 {
		return report.Ceiling{}, nil
	}
	concurrency = max(1, concurrency)
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: sk.Cert.Pool(), MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: concurrency,
		},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, maxDuration)
	defer cancel()
	// Connect before the clock starts, as Hookline's sender had.
	if err := post(ctx, client, sk, samples[0], "ceil_warmup"); err != nil {
		return report.Ceiling{}, fmt.Errorf("ceiling: %w", err)
	}

	return drive(ctx, n, concurrency, "ceiling", func(i int) error {
		return post(ctx, client, sk, samples[i%len(samples)], "ceil_"+strconv.Itoa(i))
	})
}

// drive makes n requests, concurrency at a time, each by calling do with
// its number, until ctx ends, and reports how many succeeded and how
// fast; the first failure is returned (named by what) unless ctx ended.
func drive(ctx context.Context, n, concurrency int, what string, do func(i int) error) (report.Ceiling, error) {
	var next, ok atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	c := report.Ceiling{Requests: int(ok.Load()), Concurrency: concurrency, Seconds: took.Seconds()}
	c.PerSecond = float64(c.Requests) / took.Seconds()
	if firstErr != nil && ctx.Err() == nil {
		return c, fmt.Errorf("%s: %w", what, firstErr)
	}
	return c, nil
}

func post(ctx context.Context, client *http.Client, sk *sink.Sink, s sink.Sample, id string) error {
	secret, ok := sk.Secret(s.Path)
	if !ok {
		return fmt.Errorf("no secret for %s", s.Path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sk.URL+s.Path, bytes.NewReader(s.Body))
	if err != nil {
		return err
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signature.HeaderID, id)
	req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(signature.HeaderSignature, signature.Sign(id, now, s.Body, secret))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %d", s.Path, resp.StatusCode)
	}
	return nil
}
