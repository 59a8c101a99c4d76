package kafka

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTierName(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{"seconds", 5 * time.Second, "5s"},
		{"thirty seconds", 30 * time.Second, "30s"},
		{"minutes", 2 * time.Minute, "2m"},
		{"sixty minutes is an hour", 60 * time.Minute, "1h"},
		{"hours", 24 * time.Hour, "24h"},
		{"ninety seconds stay seconds", 90 * time.Second, "90s"},
		{"ninety minutes stay minutes", 90 * time.Minute, "90m"},
		{"milliseconds", 250 * time.Millisecond, "250ms"},
		{"second and a half", 1500 * time.Millisecond, "1500ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TierName(tc.in); got != tc.want {
				t.Errorf("TierName(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRetryTopicName(t *testing.T) {
	if got, want := NewTopics("hookline.").Retry(30*time.Second), "hookline.retry.30s"; got != want {
		t.Errorf("Retry(30s) = %q, want %q", got, want)
	}
}

func TestSpecs(t *testing.T) {
	topics := NewTopics("x.")
	specs := topics.Specs([]time.Duration{5 * time.Second, 24 * time.Hour, 30 * day})
	byName := map[string]TopicSpec{}
	for _, s := range specs {
		if !strings.HasPrefix(s.Name, "x.") {
			t.Errorf("topic %q lacks the prefix", s.Name)
		}
		if _, dup := byName[s.Name]; dup {
			t.Errorf("topic %q listed twice", s.Name)
		}
		byName[s.Name] = s
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	tests := []struct {
		name    string
		topic   string
		configs map[string]string // wanted configs; "" means must be absent
	}{
		{"subscriptions are compacted and never expire", topics.Subscriptions, map[string]string{"cleanup.policy": "compact", "retention.ms": ""}},
		{"event types are compacted and never expire", topics.EventTypes, map[string]string{"cleanup.policy": "compact", "retention.ms": ""}},
		{"delivery log keeps 30 days", topics.DeliveryLog, map[string]string{"retention.ms": ms(30 * day), "cleanup.policy": ""}},
		{"notifications keep 30 days", topics.Notifications, map[string]string{"retention.ms": ms(30 * day), "cleanup.policy": ""}},
		{"dlq keeps 30 days", topics.DLQ, map[string]string{"retention.ms": ms(30 * day)}},
		{"events keep 7 days", topics.Events, map[string]string{"retention.ms": ms(7 * day)}},
		{"redeliveries keep 7 days", topics.Redeliveries, map[string]string{"retention.ms": ms(7 * day)}},
		{"deliveries keep 7 days", topics.Deliveries, map[string]string{"retention.ms": ms(7 * day)}},
		{"ingest json keeps 7 days", topics.IngestJSON, map[string]string{"retention.ms": ms(7 * day)}},
		{"rejected ingest keeps 14 days", topics.IngestRejected, map[string]string{"retention.ms": ms(14 * day)}},
		{"short tier keeps 7 days", topics.Retry(5 * time.Second), map[string]string{"retention.ms": ms(7 * day)}},
		{"day tier keeps 7 days", topics.Retry(24 * time.Hour), map[string]string{"retention.ms": ms(7 * day)}},
		{"long tier keeps three delays", topics.Retry(30 * day), map[string]string{"retention.ms": ms(90 * day)}},
	}
	if len(byName) != len(tests) {
		t.Errorf("%d topics, want %d", len(byName), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, ok := byName[tc.topic]
			if !ok {
				t.Fatalf("no spec for %s", tc.topic)
			}
			for key, want := range tc.configs {
				got, set := spec.Configs[key]
				switch {
				case want == "" && set:
					t.Errorf("%s: %s = %q, want unset", tc.topic, key, *got)
				case want != "" && !set:
					t.Errorf("%s: %s unset, want %q", tc.topic, key, want)
				case want != "" && *got != want:
					t.Errorf("%s: %s = %q, want %q", tc.topic, key, *got, want)
				}
			}
		})
	}
}
