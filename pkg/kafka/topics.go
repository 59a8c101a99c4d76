package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Topics names every topic Hookline uses. All names share one prefix, so
// that several installations (or test runs) can share a cluster.
type Topics struct {
	Prefix         string
	IngestJSON     string
	IngestRejected string
	Events         string
	Subscriptions  string
	Deliveries     string
	DLQ            string
	DeliveryLog    string
	EventTypes     string
	Notifications  string
	// Redeliveries holds old events to send again to one subscription
	// (POST /v1/events/{id}/redeliver), which the matcher shapes for it.
	Redeliveries string
}

// NewTopics names the topics under prefix ("hookline." by default).
func NewTopics(prefix string) Topics {
	return Topics{
		Prefix:         prefix,
		IngestJSON:     prefix + "ingest.json",
		IngestRejected: prefix + "ingest.rejected",
		Events:         prefix + "events",
		Subscriptions:  prefix + "subscriptions",
		Deliveries:     prefix + "deliveries",
		DLQ:            prefix + "dlq",
		DeliveryLog:    prefix + "delivery-log",
		EventTypes:     prefix + "event-types",
		Notifications:  prefix + "notifications",
		Redeliveries:   prefix + "redeliveries",
	}
}

// Retry names the delay topic of one backoff tier, e.g. hookline.retry.30s.
func (t Topics) Retry(tier time.Duration) string {
	return t.Prefix + "retry." + TierName(tier)
}

// TierName writes a tier's delay in its shortest exact unit: 5s, 2m, 1h, 250ms.
func TierName(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d >= time.Second && d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	default:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
}

// TopicSpec is a topic Hookline creates and the configs it sets.
type TopicSpec struct {
	Name    string
	Configs map[string]*string
}

func ptr(s string) *string { return &s }

const day = 24 * time.Hour

// Specs lists every topic with its settings: the subscriptions and event
// types topics are compacted (their latest record per key is the truth),
// the delivery log and the notifications sent keep 30 days for analysts
// and audits, the rest keep 7 days.
func (t Topics) Specs(tiers []time.Duration) []TopicSpec {
	retention := func(d time.Duration) map[string]*string {
		return map[string]*string{"retention.ms": ptr(strconv.FormatInt(d.Milliseconds(), 10))}
	}
	specs := []TopicSpec{
		{t.IngestJSON, retention(7 * day)},
		{t.IngestRejected, retention(14 * day)},
		{t.Events, retention(7 * day)},
		{t.Subscriptions, map[string]*string{"cleanup.policy": ptr("compact"), "min.compaction.lag.ms": ptr("60000")}},
		{t.EventTypes, map[string]*string{"cleanup.policy": ptr("compact"), "min.compaction.lag.ms": ptr("60000")}},
		{t.Deliveries, retention(7 * day)},
		{t.DLQ, retention(30 * day)},
		{t.DeliveryLog, retention(30 * day)},
		{t.Notifications, retention(30 * day)},
		{t.Redeliveries, retention(7 * day)},
	}
	for _, tier := range tiers {
		// A record waits in its tier for the tier's delay; keep it well past that.
		specs = append(specs, TopicSpec{t.Retry(tier), retention(max(7*day, 3*tier))})
	}
	return specs
}

// EnsureTopics creates the topics that do not exist yet. Existing topics
// are left as they are: changing partitions or configs is an operator's call.
func EnsureTopics(ctx context.Context, adm *kadm.Client, specs []TopicSpec, partitions int32, replication int16) error {
	var errs []error
	for _, s := range specs {
		// CreateTopic reports the topic's own error as its error too.
		_, err := adm.CreateTopic(ctx, partitions, replication, s.Configs, s.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}
