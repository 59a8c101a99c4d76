package wire

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
	specs := topics.All([]time.Duration{5 * time.Second, 24 * time.Hour, 30 * day})
	byName := map[string]Topic{}
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
		{"endpoint status is compacted and never expires", topics.EndpointStatus, map[string]string{"cleanup.policy": "compact", "retention.ms": ""}},
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
			configs := spec.Configs()
			if got := configs[MaxMessageBytes]; got == nil || *got != strconv.Itoa(MaxRecordBytes) {
				t.Errorf("%s: %s = %v, want %d", tc.topic, MaxMessageBytes, got, MaxRecordBytes)
			}
			for key, want := range tc.configs {
				got, set := configs[key]
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

func TestSubjects(t *testing.T) {
	got := NewTopics("p.").Subjects([]time.Duration{5 * time.Second, 2 * time.Minute})
	want := map[string]string{
		"p.events-value":          "dev.hookline.Event",
		"p.subscriptions-value":   "dev.hookline.Subscription",
		"p.endpoint-status-value": "dev.hookline.EndpointStatus",
		"p.deliveries-value":      "dev.hookline.Delivery",
		"p.retry.5s-value":        "dev.hookline.Delivery",
		"p.retry.2m-value":        "dev.hookline.Delivery",
		"p.dlq-value":             "dev.hookline.Delivery",
		"p.delivery-log-value":    "dev.hookline.DeliveryAttempt",
		"p.event-types-value":     "dev.hookline.EventType",
		"p.notifications-value":   "dev.hookline.Notification",
		"p.redeliveries-value":    "dev.hookline.Event",
	}
	if len(got) != len(want) {
		t.Errorf("Subjects = %v, want %v", got, want)
	}
	for s, name := range want {
		if got[s] != name {
			t.Errorf("subject %s holds %q, want %s", s, got[s], name)
		}
	}
}

// TestNamesFromThePrefix: topics, consumer groups, transactional ids and
// Redis keys all follow the one prefix, and the default prefix gives the
// names Hookline always used.
func TestNamesFromThePrefix(t *testing.T) {
	tests := []struct {
		name, prefix                    string
		events, group, txn, keys, crash string
	}{
		{"default", DefaultPrefix, "hookline.events", "hookline-sender", "hookline-matcher-pod-0", "hookline:", "hookline:crash:"},
		{"another installation", "acme.", "acme.events", "acme-sender", "acme-matcher-pod-0", "acme:", "acme:crash:"},
		{"a dashed prefix", "test-42-", "test-42-events", "test-42-sender", "test-42-matcher-pod-0", "test-42:", "test-42:crash:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp := NewTopics(tc.prefix)
			got := []string{tp.Events, tp.Group("sender"), tp.TransactionalID("matcher", "pod-0"), tp.Keys().Namespace(), tp.Keys().Crash()}
			want := []string{tc.events, tc.group, tc.txn, tc.keys, tc.crash}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("got %q, want %q", got[i], want[i])
				}
			}
		})
	}
}

// TestKeysDoNotOverlap: no kind of key is a prefix of another, so a scan
// of one kind never picks up another's keys.
func TestKeysDoNotOverlap(t *testing.T) {
	k := NewTopics(DefaultPrefix).Keys()
	kinds := []string{k.EventIDs(), k.Delivered(), k.Claims(), k.Parked(), k.Rate(), k.Health(), k.Notify(), k.Crash(), k.EventRedeliveries()}
	for i, a := range kinds {
		if !strings.HasPrefix(a, k.Namespace()) {
			t.Errorf("%q is outside the namespace %q", a, k.Namespace())
		}
		for j, b := range kinds {
			if i != j && strings.HasPrefix(b, a) {
				t.Errorf("%q is a prefix of %q", a, b)
			}
		}
	}
}
