package wire

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

type ctxKey struct{}

func TestDivert(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey{}, "trace")
	in := &kgo.Record{
		Topic: "hookline.events", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"), Context: ctx,
		Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte("00-abc")},
			{Key: HeaderError, Value: []byte("an older reason")},
			{Key: HeaderSource, Value: []byte("hookline.ingest.json/0/1")},
			{Key: HeaderTenant, Value: []byte("acme")},
		},
	}
	out := Divert(in, "hookline.ingest.rejected", "quarantined:\nthe matcher crashed\t3 times")
	if out.Topic != "hookline.ingest.rejected" || string(out.Key) != "k" || string(out.Value) != "v" || out.Context != ctx {
		t.Errorf("diverted record = %+v, want the original's key, value and context on the rejected topic", out)
	}
	want := []kgo.RecordHeader{
		{Key: HeaderError, Value: []byte("quarantined: the matcher crashed 3 times")},
		{Key: HeaderSource, Value: []byte("hookline.events/3/42")},
		{Key: "traceparent", Value: []byte("00-abc")},
		{Key: HeaderTenant, Value: []byte("acme")},
	}
	if len(out.Headers) != len(want) {
		t.Fatalf("headers = %q, want %q", out.Headers, want)
	}
	for i := range want {
		if out.Headers[i].Key != want[i].Key || string(out.Headers[i].Value) != string(want[i].Value) {
			t.Errorf("header %d = %s: %q, want %s: %q", i, out.Headers[i].Key, out.Headers[i].Value, want[i].Key, want[i].Value)
		}
	}
	if got := Reason(out); got != "quarantined: the matcher crashed 3 times" {
		t.Errorf("Reason = %q", got)
	}
	if len(in.Headers) != 4 || string(in.Headers[1].Value) != "an older reason" {
		t.Errorf("the original's headers changed: %q", in.Headers)
	}
}

func TestDivertBoundsTheReason(t *testing.T) {
	long := strings.Repeat("é", MaxReasonBytes) // two bytes each
	got := Reason(Divert(&kgo.Record{}, "t", long+"\xff"))
	if len(got) > MaxReasonBytes || !utf8.ValidString(got) || !strings.HasPrefix(long, got) || len(got) < MaxReasonBytes-1 {
		t.Errorf("reason of %d bytes, valid %v; want at most %d bytes of valid UTF-8 cut on a character", len(got), utf8.ValidString(got), MaxReasonBytes)
	}
	if got := Reason(&kgo.Record{}); got != "" {
		t.Errorf("Reason of an undiverted record = %q, want empty", got)
	}
}

func TestImmediate(t *testing.T) {
	r := &kgo.Record{Headers: []kgo.RecordHeader{{Key: HeaderTenant, Value: []byte("acme")}}}
	if Immediate(r) {
		t.Fatal("a record without the header is immediate")
	}
	MarkImmediate(r)
	if !Immediate(r) || len(r.Headers) != 2 || r.Headers[1].Key != HeaderImmediate || string(r.Headers[1].Value) != "1" {
		t.Errorf("marked headers = %q, want %s: 1 after the tenant", r.Headers, HeaderImmediate)
	}
}
