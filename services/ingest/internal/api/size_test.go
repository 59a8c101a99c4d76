package api

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/ingest/internal/event"
)

// bodyOf is an event body of exactly n bytes, its data padded with
// random letters, digits and characters JSON encoders like to escape, so
// that compression does not shrink its record below the topic's limit.
func bodyOf(t *testing.T, n int) string {
	t.Helper()
	head, tail := `{"type":"blob.stored","subject":"big","data":{"pad":"`, `"}}`
	if n < len(head)+len(tail) {
		t.Fatalf("body of %d bytes is too small", n)
	}
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<>&"
	pad := make([]byte, n-len(head)-len(tail))
	for i := range pad {
		pad[i] = chars[rand.IntN(len(chars))]
	}
	return head + string(pad) + tail
}

// TestBodiesUpToTheLimit sends events at the documented 1 MiB body limit
// through the real broker: every body up to it is accepted (before, those
// above about 1,000,000 bytes were answered 503 "retry" forever), one byte
// more is 413, and a topic still at the broker's old ~1 MB record limit
// makes the largest bodies 413, never 503, until RaiseRecordLimit raises
// it, as every service's start does.
func TestBodiesUpToTheLimit(t *testing.T) {
	st := newStack(t)
	if st.srv.MaxBody != event.MaxBodyBytes {
		t.Fatalf("the test server's body limit is %d, want %d", st.srv.MaxBody, event.MaxBodyBytes)
	}
	sizes := []int{1_000_000, 1_040_000, event.MaxBodyBytes}
	for _, n := range sizes {
		st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme", bodyOf(t, n))
	}
	half := bodyOf(t, event.MaxBodyBytes/2-2)
	st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme", "["+half+","+half+"]")
	if status, out := st.call(t, "POST", "/v1/events", "key-acme", bodyOf(t, event.MaxBodyBytes+1)); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body of 1 MiB + 1: %d %s, want 413", status, out)
	}
	var largest int
	for _, r := range testinfra.Records(t, st.cfg, st.cfg.Topics.Events) {
		var ev record.Event
		if err := st.srv.Codecs.Event.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		largest = max(largest, len(ev.Data))
	}
	if want := event.MaxBodyBytes - len(`{"type":"blob.stored","subject":"big","data":}`); largest != want {
		t.Errorf("largest event data in the topic is %d bytes, want %d", largest, want)
	}

	// A topic made before the record limit was raised.
	cl, err := kafka.NewClient(st.cfg, testinfra.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := "1000012" // the broker's default message.max.bytes
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &old}}, st.cfg.Topics.Events); err != nil {
		t.Fatal(err)
	}
	waitTopicLimit(ctx, t, adm, st.cfg.Topics.Events, old)
	status, out := st.call(t, "POST", "/v1/events", "key-acme", bodyOf(t, event.MaxBodyBytes))
	var p struct{ Status int }
	if status != http.StatusRequestEntityTooLarge || json.Unmarshal(out, &p) != nil || p.Status != status {
		t.Fatalf("a 1 MiB body over an old topic: %d %s, want a 413 problem", status, out)
	}
	raised, err := kafka.RaiseRecordLimit(ctx, adm, st.cfg.Topics.Events, st.cfg.Topics.Deliveries)
	if err != nil || len(raised) != 1 || raised[0] != st.cfg.Topics.Events {
		t.Fatalf("RaiseRecordLimit = %v, %v; want the events topic raised alone", raised, err)
	}
	waitTopicLimit(ctx, t, adm, st.cfg.Topics.Events, strconv.Itoa(wire.MaxRecordBytes))
	st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme", bodyOf(t, event.MaxBodyBytes))
}

// waitTopicLimit waits until the broker reports topic's max.message.bytes
// as want.
func waitTopicLimit(ctx context.Context, t *testing.T, adm *kadm.Client, topic, want string) {
	t.Helper()
	for {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err == nil {
			if c, err := rcs.On(topic, nil); err == nil {
				for _, kv := range c.Configs {
					if kv.Key == "max.message.bytes" && kv.Value != nil && *kv.Value == want {
						return
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s max.message.bytes never became %s", topic, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
