// Package wire is Hookline's contract on the wire, declared once: which
// record lives on which topic with what retention, compaction and size
// limit, the schema subject of each topic, the record headers Hookline
// reads and writes, how a poison record is diverted with its reason, the
// namespace of Hookline's Redis keys, and the default consumer-group and
// transactional-id names. Everything is derived from one prefix, so that
// two installations (or two test runs) can share a Kafka cluster and a
// Redis. docs/wire.md is the operators' reading of it.
//
// (In the spirit of Watermill's poison middleware, which declares the
// metadata keys of its poison path in one place.)
package wire

import (
	"strconv"
	"strings"
	"time"
)

// DefaultPrefix starts every topic name unless HOOKLINE_TOPIC_PREFIX says
// otherwise.
const DefaultPrefix = "hookline."

// Topics names every topic Hookline uses, and through Keys, Group and
// TransactionalID everything else an installation names: all from one
// prefix.
type Topics struct {
	Prefix         string
	IngestJSON     string
	IngestRejected string
	Events         string
	Subscriptions  string
	// EndpointStatus holds, per subscription, Hookline's own decision to
	// disable it (a 410, or failing past the disable window): the sender
	// is its only writer, the API the only writer of Subscriptions, and
	// every reader of subscriptions reads both (pkg/subscription).
	EndpointStatus string
	Deliveries     string
	DLQ            string
	DeliveryLog    string
	EventTypes     string
	Notifications  string
	// Redeliveries holds old events to send again to one subscription
	// (the history API's redeliver), which the matcher shapes for it.
	Redeliveries string
}

// NewTopics names the topics under prefix (DefaultPrefix by default).
func NewTopics(prefix string) Topics {
	return Topics{
		Prefix:         prefix,
		IngestJSON:     prefix + "ingest.json",
		IngestRejected: prefix + "ingest.rejected",
		Events:         prefix + "events",
		Subscriptions:  prefix + "subscriptions",
		EndpointStatus: prefix + "endpoint-status",
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

// stem is the prefix without its trailing separator: "hookline" for
// "hookline.". Names that are not topics (groups, transactional ids,
// Redis keys) are built on it with their own separators.
func (t Topics) stem() string { return strings.TrimRight(t.Prefix, ".-_:") }

// Group is the default consumer group of a service: hookline-<service>
// under the default prefix. Group("") is what every one starts with.
func (t Topics) Group(service string) string { return t.stem() + "-" + service }

// TransactionalID is the default transactional id of one instance of a
// service (its host name, or a pod name): hookline-<service>-<instance>
// under the default prefix. It must be stable over the instance's
// restarts, so that a new incarnation fences its predecessor's
// unfinished transaction, and unique among running instances.
func (t Topics) TransactionalID(service, instance string) string {
	return t.stem() + "-" + service + "-" + instance
}
