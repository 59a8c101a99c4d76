package subscription_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/testinfra"
)

func TestScratchFetchLatency(t *testing.T) {
	for _, sessions := range []bool{true, false} {
		for i := 0; i < 6; i++ {
			cfg := testinfra.Kafka(t)
			topic := cfg.Topics.Subscriptions
			prod, _ := kafka.NewClient(cfg, testinfra.Logger(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			ctx := context.Background()
			prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("a")}, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("b")})
			opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
			if !sessions {
				opts = append(opts, kgo.DisableFetchSessions())
			}
			cl, _ := kafka.NewClient(cfg, testinfra.Logger(), opts...)
			n := 0
			for n < 2 {
				n += len(cl.PollFetches(ctx).Records())
			}
			time.Sleep(200 * time.Millisecond)
			start := time.Now()
			prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 2, Value: []byte("c")})
			for n < 3 {
				n += len(cl.PollFetches(ctx).Records())
			}
			t.Logf("sessions=%v took %v", sessions, time.Since(start))
			cl.Close()
			prod.Close()
		}
	}
}
