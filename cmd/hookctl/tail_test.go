package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestTailOrdersByTime: attempts spread over partitions print in the order
// they started, not partition by partition; -n keeps the last ones.
func TestTailOrdersByTime(t *testing.T) {
	cfg := testinfra.Kafka(t)
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	// Partition 0 holds the 1st and 4th, partition 1 the 2nd and 3rd,
	// partition 2 the 5th: read partition by partition, they come 1 4 2 3 5.
	for _, w := range []struct {
		partition int32
		nth       int
	}{{0, 1}, {0, 4}, {1, 2}, {1, 3}, {2, 5}} {
		a := record.DeliveryAttempt{DeliveryID: "dlv_" + string(rune('0'+w.nth)), Tenant: "acme", SubscriptionID: "sub_1",
			Attempt: 1, StartedAt: t0.Add(time.Duration(w.nth) * time.Second), Outcome: record.OutcomeDelivered}
		v, err := codecs.Attempt.Marshal(&a)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: cfg.Topics.DeliveryLog, Partition: w.partition, Key: []byte(a.DeliveryID), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KAFKA_BROKERS", strings.Join(cfg.Brokers, ","))
	t.Setenv("HOOKLINE_TOPIC_PREFIX", cfg.Topics.Prefix)
	t.Setenv("HOOKLINE_ENV_FILE", t.TempDir()+"/none")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tail"}, "dlv_1 dlv_2 dlv_3 dlv_4 dlv_5"},
		{[]string{"tail", "-n", "2"}, "dlv_4 dlv_5"},
		{[]string{"tail", "-n", "3", "-tenant", "acme"}, "dlv_3 dlv_4 dlv_5"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var out bytes.Buffer
		err := run(ctx, append([]string{"-o", "json"}, tc.args...), &out)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		dec := json.NewDecoder(&out)
		for dec.More() {
			var a record.DeliveryAttempt
			if err := dec.Decode(&a); err != nil {
				t.Fatal(err)
			}
			got = append(got, a.DeliveryID)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%v printed %v, want %s", tc.args, got, tc.want)
		}
	}
}
