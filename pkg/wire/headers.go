package wire

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record headers Hookline reads and writes. Trace context travels in the
// W3C headers (traceparent, tracestate) that pkg/telemetry writes.
const (
	// HeaderError is why a record was diverted (Divert): one line of
	// plain text, on every record of hookline.ingest.rejected and on the
	// records of hookline.dlq that could not be decoded.
	HeaderError = "hookline-error"
	// HeaderSource is where a diverted record was read:
	// <topic>/<partition>/<offset>.
	HeaderSource = "hookline-source"
	// HeaderTenant is the tenant of a JSON event on hookline.ingest.json
	// when its body does not name one.
	HeaderTenant = "hookline-tenant"
	// HeaderParked marks a delivery a sender's lane parked in a retry
	// tier: how many times it was parked so far (a decimal number).
	HeaderParked = "hookline-parked"
	// HeaderSubscription names the one subscription a record of
	// hookline.redeliveries (an Event to send again) is for; the matcher
	// shapes the event for it.
	HeaderSubscription = "hookline-subscription"
	// HeaderRedelivery, on a record of hookline.redeliveries, is the
	// redelivery id the Delivery gets (Delivery.Redelivery): the caller
	// asked for a new attempt even if the event was delivered to that
	// subscription before.
	HeaderRedelivery = "hookline-redelivery"
	// HeaderImmediate marks an event ingest wrote in immediate mode
	// (POST /v1/events?mode=immediate) and every delivery the matcher
	// made of it: only such a delivery can have a claim (pkg/claim), so
	// the sender reads claims for those alone and queue mode costs no
	// Redis read for them. Its value is "1"; its presence is the mark.
	HeaderImmediate = "hookline-immediate"
)

// MarkImmediate adds HeaderImmediate to r.
func MarkImmediate(r *kgo.Record) {
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderImmediate, Value: []byte("1")})
}

// Immediate reports whether r carries HeaderImmediate.
func Immediate(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == HeaderImmediate {
			return true
		}
	}
	return false
}

// MaxReasonBytes bounds the reason Divert writes: enough to say why,
// while a diverted record stays within the topic's limit.
const MaxReasonBytes = 1024

// Divert returns poison, a record that cannot be processed, as a record of
// topic (a rejected or dead-letter topic) so that the partition it came
// from moves on and nothing is dropped silently: key, value, headers and
// trace context as they were, with HeaderError (reason, on one line,
// bounded) and HeaderSource in front. Headers of an earlier diversion are
// replaced, so a record diverted twice says the latest why and where.
func Divert(r *kgo.Record, topic, reason string) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+2)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(oneLine(reason, MaxReasonBytes))},
		kgo.RecordHeader{Key: HeaderSource, Value: []byte(r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10))},
	)
	for _, h := range r.Headers {
		if h.Key != HeaderError && h.Key != HeaderSource {
			headers = append(headers, h)
		}
	}
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: headers, Context: r.Context}
}

// Reason returns the HeaderError of a diverted record; "" when it has none.
func Reason(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == HeaderError {
			return string(h.Value)
		}
	}
	return ""
}

// oneLine folds s onto one line of valid UTF-8 of at most n bytes, so a
// reason reads whole in kcat and in logs.
func oneLine(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
