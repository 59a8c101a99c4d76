package history

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Metrics are the logs service's figures: what it wrote and how far
// behind the topics it is.
type Metrics struct {
	Records       *prometheus.CounterVec // by topic: records stored
	Rows          *prometheus.CounterVec // by table: rows created or moved forward
	Expired       prometheus.Counter
	Diverted      *prometheus.CounterVec // by topic: sent to the rejected topic
	Skipped       *prometheus.CounterVec // by topic: not history (undecodable dead letters)
	WriteSeconds  prometheus.Histogram
	BatchRecords  prometheus.Histogram
	WriteFailures prometheus.Counter
	StoreUp       prometheus.Gauge
	Lag           *prometheus.GaugeVec // by topic: records not yet committed
	Written       *prometheus.GaugeVec // by topic: Kafka timestamp of the newest record stored

	mu     sync.Mutex
	newest map[string]time.Time // what Written says, by topic
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_logs_records_total", Help: "Records of each topic stored in the delivery history (a repeat counts again, storing nothing).",
		}, []string{"topic"}),
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_logs_rows_total", Help: "Rows the history's writes created or moved forward, by table: its write rate.",
		}, []string{"table"}),
		Expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_logs_expired_total", Help: "Records older than HOOKLINE_LOG_RETENTION, not stored.",
		}),
		Diverted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_logs_diverted_total", Help: "Records that cannot be stored, written to the rejected topic with the reason.",
		}, []string{"topic"}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookline_logs_skipped_total", Help: "Records that are not history: undecodable dead letters, which stay in the DLQ.",
		}, []string{"topic"}),
		WriteSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookline_logs_write_seconds", Help: "Time of one batch write, transaction included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		BatchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookline_logs_batch_records", Help: "Records in one batch write.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		WriteFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookline_logs_write_failures_total", Help: "Batch writes that failed (then retried: nothing is committed before it is written).",
		}),
		StoreUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookline_logs_store_up", Help: "1 while the history's database takes writes, 0 while the service pauses for it.",
		}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_logs_lag_records", Help: "Records of each topic not yet in the history (end offset minus the group's committed offset).",
		}, []string{"topic"}),
		Written: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookline_logs_written_timestamp_seconds", Help: "Kafka timestamp of the newest record of each topic stored: time() minus it is how far behind the history is.",
		}, []string{"topic"}),
	}
	m.StoreUp.Set(1)
	m.newest = map[string]time.Time{}
	reg.MustRegister(m.Records, m.Rows, m.Expired, m.Diverted, m.Skipped, m.WriteSeconds, m.BatchRecords,
		m.WriteFailures, m.StoreUp, m.Lag, m.Written)
	return m
}

func (m *Metrics) written(topic string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Several writes of one topic may end in any order: keep the newest.
	if at.After(m.newest[topic]) {
		m.newest[topic] = at
		m.Written.WithLabelValues(topic).Set(float64(at.UnixMilli()) / 1000)
	}
}

// LagEvery is how often WatchLag measures the group's lag.
const LagEvery = 10 * time.Second

// WatchLag sets Lag every LagEvery until ctx ends: for each topic, the sum
// over its partitions of the end offset minus the group's commit.
func (m *Metrics) WatchLag(ctx context.Context, adm *kadm.Client, group string, topics []string, log zerolog.Logger) {
	t := time.NewTicker(LagEvery)
	defer t.Stop()
	for {
		m.measureLag(ctx, adm, group, topics, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Metrics) measureLag(ctx context.Context, adm *kadm.Client, group string, topics []string, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, LagEvery)
	defer cancel()
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn().Err(err).Msg("measuring lag")
		}
		return
	}
	sums := map[string]int64{}
	for _, t := range topics {
		sums[t] = 0
	}
	lags.Each(func(l kadm.DescribedGroupLag) {
		for topic, parts := range l.Lag {
			if _, ours := sums[topic]; !ours {
				continue
			}
			for _, p := range parts {
				if p.Lag >= 0 {
					sums[topic] += p.Lag
				}
			}
		}
	})
	for topic, n := range sums {
		m.Lag.WithLabelValues(topic).Set(float64(n))
	}
}
