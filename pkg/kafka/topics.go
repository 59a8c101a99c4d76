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
		return map[string]*string{"retention.ms": ptr(strconv.FormatInt(d.Milliseconds(), 10)), maxMessageBytes: ptr(recordLimit)}
	}
	specs := []TopicSpec{
		{t.IngestJSON, retention(7 * day)},
		{t.IngestRejected, retention(14 * day)},
		{t.Events, retention(7 * day)},
		{t.Subscriptions, map[string]*string{"cleanup.policy": ptr("compact"), "min.compaction.lag.ms": ptr("60000"), maxMessageBytes: ptr(recordLimit)}},
		{t.EventTypes, map[string]*string{"cleanup.policy": ptr("compact"), "min.compaction.lag.ms": ptr("60000"), maxMessageBytes: ptr(recordLimit)}},
		{t.Deliveries, retention(7 * day)},
		{t.DLQ, retention(30 * day)},
		{t.DeliveryLog, retention(30 * day)},
		{t.Notifications, retention(30 * day)},
	}
	for _, tier := range tiers {
		// A record waits in its tier for the tier's delay; keep it well past that.
		specs = append(specs, TopicSpec{t.Retry(tier), retention(max(7*day, 3*tier))})
	}
	return specs
}

// maxMessageBytes is the topic config that limits a record batch.
const maxMessageBytes = "max.message.bytes"

var recordLimit = strconv.Itoa(MaxRecordBytes)

// EnsureTopics creates the topics that do not exist yet. Existing topics
// keep their partitions and settings, an operator's call, with one
// exception: see RaiseRecordLimit.
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

// RaiseRecordLimit sets max.message.bytes to MaxRecordBytes on each topic
// whose limit is lower, such as a topic created by an older Hookline with
// the broker's default of about 1 MB: without it, the largest events and
// deliveries Hookline accepts would be refused by the broker. It only ever
// raises the limit, and reports the topics it changed. It needs the
// ALTER_CONFIGS permission on the topics; without it, an operator sets the
// limit by hand (docs/operations.md).
func RaiseRecordLimit(ctx context.Context, adm *kadm.Client, topics ...string) ([]string, error) {
	described, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	var low []string
	for _, rc := range described {
		if rc.Err != nil {
			return nil, fmt.Errorf("describe topic %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key != maxMessageBytes || c.Value == nil {
				continue
			}
			if n, err := strconv.Atoi(*c.Value); err == nil && n < MaxRecordBytes {
				low = append(low, rc.Name)
			}
		}
	}
	if len(low) == 0 {
		return nil, nil
	}
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: maxMessageBytes, Value: ptr(recordLimit)}}
	res, err := adm.AlterTopicConfigs(ctx, alter, low...)
	if err == nil {
		for _, r := range res {
			if r.Err != nil {
				err = errors.Join(err, fmt.Errorf("topic %s: %w", r.Name, r.Err))
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("raise %s to %d: %w", maxMessageBytes, MaxRecordBytes, err)
	}
	return low, nil
}
