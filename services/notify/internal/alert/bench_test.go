package alert

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
)

// BenchmarkHandleOtherEvents is notify's cost per event of hookline.events
// that is not an endpoint event: nearly every event. It decodes each one
// to read its type, and touches nothing else (no Redis).
func BenchmarkHandleOtherEvents(b *testing.B) {
	codecs, err := record.LoadCodecs()
	if err != nil {
		b.Fatal(err)
	}
	h := &Handler{Codecs: codecs, Metrics: NewMetrics(prometheus.NewRegistry()), Log: zerolog.Nop(), Now: time.Now}
	recs := make([]*kgo.Record, 500)
	for i := range recs {
		ev := record.Event{ID: fmt.Sprintf("evt_%d", i), Tenant: "acme", Type: "order.created", Subject: "ord_1", Source: "shop",
			OccurredAt: time.Now(), ReceivedAt: time.Now(), Changed: []string{},
			Data: `{"id":"ord_1","total":4200,"currency":"EUR","customer":{"id":"cus_1","email":"a@example.com"},"items":[{"sku":"A","qty":2},{"sku":"B","qty":1}]}`}
		v, err := codecs.Event.Marshal(&ev)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = &kgo.Record{Value: v}
	}
	batch := kafka.Batch{Records: recs}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := h.Handle(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/event")
}
