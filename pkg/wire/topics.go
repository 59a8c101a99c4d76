package wire

import (
	"strconv"
	"time"

	"github.com/hookline/hookline/pkg/record"
)

// MaxRecordBytes is the largest record batch every Hookline topic takes
// (its max.message.bytes) and every client produces and fetches. The
// broker's and franz-go's default, about 1 MB, is less than a 1 MiB event
// in its envelope, so bodies near the API's documented limit failed to
// produce and were answered 503 ("retry") for a permanent condition. 2 MiB
// holds the largest delivery: a 1 MiB event's data plus the bounded
// envelope, metadata and derived fields (docs/limits.md has the sum).
const MaxRecordBytes = 2 << 20

// Retention of the topics that are not compacted.
const (
	day = 24 * time.Hour
	// ShortRetention is for topics that are work in passing: read within
	// seconds normally, kept a week for an outage and for replays.
	ShortRetention = 7 * day
	// RejectedRetention gives whoever fixes a producer two weeks to look.
	RejectedRetention = 14 * day
	// AuditRetention is for what analysts and audits read back: the
	// delivery log, the dead letters and the alert emails sent.
	AuditRetention = 30 * day
	// minCompactionLag keeps the latest few versions of a compacted
	// record readable for a minute, so a view that is a little behind
	// still reads each change in order.
	minCompactionLag = time.Minute
)

// Topic is one topic as Hookline declares it.
type Topic struct {
	Name string
	// Key says what keys its records, for people reading it.
	Key string
	// Record is the full Avro name of its values (Confluent wire format);
	// "" when they are not Avro: producers' JSON, and records diverted as
	// they came with the reason in headers (Divert).
	Record string
	// Compacted topics keep the latest record of each key for ever (a
	// tombstone deletes it): they hold state. The others keep Retention.
	Compacted bool
	Retention time.Duration
}

// All lists every topic Hookline uses, with one delay topic per retry
// tier. A record waits in its tier for the tier's delay: a tier keeps
// three delays' worth, a week at least.
func (t Topics) All(tiers []time.Duration) []Topic {
	topics := []Topic{
		{Name: t.IngestJSON, Key: "any (the producer's)", Retention: ShortRetention},
		{Name: t.IngestRejected, Key: "the original's", Retention: RejectedRetention},
		{Name: t.Events, Key: "subject", Record: record.EventName, Retention: ShortRetention},
		{Name: t.Subscriptions, Key: "subscription id", Record: record.SubscriptionName, Compacted: true},
		{Name: t.EndpointStatus, Key: "subscription id", Record: record.EndpointStatusName, Compacted: true},
		{Name: t.EventTypes, Key: "tenant/name", Record: record.EventTypeName, Compacted: true},
		{Name: t.Deliveries, Key: "subscription id", Record: record.DeliveryName, Retention: ShortRetention},
		{Name: t.DLQ, Key: "subscription id", Record: record.DeliveryName, Retention: AuditRetention},
		{Name: t.DeliveryLog, Key: "delivery id", Record: record.DeliveryAttemptName, Retention: AuditRetention},
		{Name: t.Notifications, Key: "subscription id", Record: record.NotificationName, Retention: AuditRetention},
		{Name: t.Redeliveries, Key: "subscription id", Record: record.EventName, Retention: ShortRetention},
	}
	for _, tier := range tiers {
		topics = append(topics, Topic{Name: t.Retry(tier), Key: "subscription id", Record: record.DeliveryName,
			Retention: max(ShortRetention, 3*tier)})
	}
	return topics
}

// Configs are the topic configs Hookline creates the topic with.
func (tp Topic) Configs() map[string]*string {
	c := map[string]*string{MaxMessageBytes: new(strconv.Itoa(MaxRecordBytes))}
	if tp.Compacted {
		c["cleanup.policy"] = new("compact")
		c["min.compaction.lag.ms"] = new(strconv.FormatInt(minCompactionLag.Milliseconds(), 10))
	} else {
		c["retention.ms"] = new(strconv.FormatInt(tp.Retention.Milliseconds(), 10))
	}
	return c
}

// MaxMessageBytes is the topic config that limits a record batch.
const MaxMessageBytes = "max.message.bytes"

// Subject is the schema registry subject of the topic's values, by
// TopicNameStrategy (the default of Confluent's serializers): <topic>-value.
func (tp Topic) Subject() string { return tp.Name + "-value" }

// Subjects maps the value subject of every topic that holds Avro records
// to the full name of its record.
func (t Topics) Subjects(tiers []time.Duration) map[string]string {
	m := map[string]string{}
	for _, tp := range t.All(tiers) {
		if tp.Record != "" {
			m[tp.Subject()] = tp.Record
		}
	}
	return m
}
