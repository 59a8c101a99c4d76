// Package event parses and validates events as producers send them in JSON,
// over the HTTP API or the hookline.ingest.json topic, and turns them into
// record.Event.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
)

// Limits on one event.
const (
	// MaxBodyBytes is the largest body of POST /v1/events and the
	// largest record on hookline.ingest.json: 1 MiB. The record limits of
	// every topic (wire.MaxRecordBytes) are sized so that an event of
	// this size, in its envelope and then in each delivery with the
	// subscription's metadata and derived fields, always fits.
	MaxBodyBytes = 1 << 20
	MaxBatch     = 500
	maxIDLen     = 128
	maxTypeLen   = 128
	maxChanged   = 256
	maxSourceLn  = 256
)

// ReservedTypePrefix starts the types of the events Hookline publishes
// itself (hookline.endpoint.failing...); producers may not use it.
const ReservedTypePrefix = "hookline."

var (
	typePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
)

// Input is an event as a producer sends it.
type Input struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Subject    string          `json:"subject"`
	Source     string          `json:"source"`
	OccurredAt *time.Time      `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
	Changed    []string        `json:"changed"`
	Previous   json.RawMessage `json:"previous"`
	// Tenant is read only from the Kafka bridge; the API takes the tenant
	// from the caller's key.
	Tenant string `json:"tenant"`
}

// Parse reads one event object or an array of them. Unknown fields are
// refused, so that a misspelt field is an error rather than silently lost.
func Parse(body []byte) (ins []Input, batch bool, errs []problem.FieldError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, []problem.FieldError{{Field: "", Detail: "body is empty; send an event object or an array of them"}}
	}
	batch = body[0] == '['
	if fe, deep := problem.TooDeep(body, problem.MaxNesting); deep {
		return nil, batch, []problem.FieldError{fe}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var err error
	if batch {
		err = dec.Decode(&ins)
	} else {
		ins = make([]Input, 1)
		err = dec.Decode(&ins[0])
	}
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON value")
	}
	if err != nil {
		fe := problem.JSONError(err)
		if fe.Field == "" && strings.Contains(err.Error(), "parsing time") {
			fe.Field = "occurred_at"
		}
		return nil, batch, []problem.FieldError{fe}
	}
	if batch && len(ins) == 0 {
		return nil, batch, []problem.FieldError{{Field: "", Detail: "batch is empty"}}
	}
	if len(ins) > MaxBatch {
		return nil, batch, []problem.FieldError{{Field: "", Detail: fmt.Sprintf("batch holds %d events, at most %d are allowed", len(ins), MaxBatch)}}
	}
	return ins, batch, nil
}

// Validate checks one event; prefix is prepended to field names (e.g.
// "[3]." inside a batch).
func (in *Input) Validate(prefix string) []problem.FieldError {
	var errs []problem.FieldError
	bad := func(field, detail string) {
		errs = append(errs, problem.FieldError{Field: prefix + field, Detail: detail})
	}
	switch {
	case in.Type == "":
		bad("type", "is required")
	case len(in.Type) > maxTypeLen || !typePattern.MatchString(in.Type):
		bad("type", "must be dot-separated words of letters, digits, _ or -, at most 128 characters, e.g. order.created")
	case strings.HasPrefix(strings.ToLower(in.Type), ReservedTypePrefix):
		// Subscribers and notify trust these to come from Hookline:
		// a producer's hookline.endpoint.failing would email people.
		bad("type", "the hookline. prefix is reserved for the events Hookline publishes about itself")
	}
	if in.ID != "" && (len(in.ID) > maxIDLen || !idPattern.MatchString(in.ID)) {
		bad("id", "must be at most 128 characters of letters, digits, _ . : or -")
	}
	if len(in.Subject) > maxIDLen {
		bad("subject", "must be at most 128 characters")
	}
	if len(in.Source) > maxSourceLn {
		bad("source", "must be at most 256 characters")
	}
	if len(in.Data) == 0 || bytes.Equal(in.Data, []byte("null")) {
		bad("data", "is required and must be a JSON object")
	} else if msg := checkObject(in.Data); msg != "" {
		bad("data", msg)
	}
	if len(in.Previous) > 0 && !bytes.Equal(in.Previous, []byte("null")) {
		if msg := checkObject(in.Previous); msg != "" {
			bad("previous", msg)
		}
	}
	if len(in.Changed) > maxChanged {
		bad("changed", "lists at most 256 field names")
	}
	for i, c := range in.Changed {
		if c == "" {
			bad(fmt.Sprintf("changed[%d]", i), "must not be empty")
		}
	}
	return errs
}

// checkObject refuses what encoding/json lets through but the record's
// readers cannot take: invalid UTF-8 (Avro strings are UTF-8) and numbers
// beyond float64, which the matcher could not decode, so the event would be
// accepted and never delivered.
func checkObject(raw json.RawMessage) string {
	if raw[0] != '{' {
		return "must be a JSON object"
	}
	if !utf8.Valid(raw) {
		return "must be valid UTF-8"
	}
	if _, err := condition.DecodeValue(raw); err != nil {
		return "cannot be read: " + err.Error()
	}
	return ""
}

// Record turns a valid input into the record written to hookline.events,
// assigning an id and defaulting the subject to it and occurred_at to now.
func (in *Input) Record(tenant string, now time.Time) record.Event {
	ev := record.Event{
		ID:         in.ID,
		Tenant:     tenant,
		Type:       in.Type,
		Subject:    in.Subject,
		Source:     in.Source,
		OccurredAt: now,
		ReceivedAt: now,
		Data:       string(compact(in.Data)),
		Changed:    in.Changed,
	}
	if ev.ID == "" {
		ev.ID = id.New("evt")
	}
	if ev.Subject == "" {
		ev.Subject = ev.ID
	}
	if in.OccurredAt != nil {
		ev.OccurredAt = *in.OccurredAt
	}
	if ev.Changed == nil {
		ev.Changed = []string{}
	}
	if len(in.Previous) > 0 && !bytes.Equal(in.Previous, []byte("null")) {
		p := string(compact(in.Previous))
		ev.Previous = &p
	}
	return ev
}

// compact is json.Compact for JSON the decoder has already validated:
// insignificant whitespace is exactly the whitespace outside strings, so
// it is found by skipping from quote to quote, where json.Compact runs its
// scanner over every byte again (a fifth of an event's CPU from parse to
// Avro). raw itself is returned when there is nothing to remove.
func compact(raw json.RawMessage) []byte {
	var out []byte // nil until the first byte to leave out
	kept := 0      // raw[kept:i] is still to be copied to out
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			// Skip the string: to its closing quote, past escapes.
			for i++; i < len(raw); i++ {
				j := bytes.IndexAny(raw[i:], `"\`)
				if j < 0 {
					i = len(raw)
					break
				}
				i += j
				if raw[i] == '"' {
					break
				}
				i++ // the escaped byte
			}
		case ' ', '\t', '\n', '\r':
			if out == nil {
				out = make([]byte, 0, len(raw))
			}
			out = append(out, raw[kept:i]...)
			kept = i + 1
		}
	}
	if out == nil {
		return raw
	}
	return append(out, raw[kept:]...)
}
