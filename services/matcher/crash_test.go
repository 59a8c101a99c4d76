package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
)

// childEnv marks the test binary run as the matcher itself (TestMain).
const childEnv = "HOOKLINE_TEST_MATCHER_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCrashQuarantine runs the matcher as a real process over an event
// that makes it SIGKILL itself, as an out-of-memory kill would, and
// restarts it each time it dies, as a supervisor does. The matcher must
// die exactly HOOKLINE_CRASH_LIMIT times, then put the event on the
// rejected topic with the reason and go on: every other event, the other
// tenant's included, is delivered exactly once.
func TestCrashQuarantine(t *testing.T) {
	kcfg := testinfra.Kafka(t)
	testinfra.Redis(t) // the crash guard's
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kafka.NewClient(kcfg, testinfra.Logger(),
		kgo.ConsumeTopics(kcfg.Topics.Deliveries, kcfg.Topics.IngestRejected), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	subs := []*record.Subscription{
		{ID: "sub_a", Tenant: "acme", URL: "https://example.com/a", EventTypes: []string{"*"}, Payload: "full", Enabled: true},
		{ID: "sub_g", Tenant: "globex", URL: "https://example.com/g", EventTypes: []string{"*"}, Payload: "full", Enabled: true},
	}
	for _, s := range subs {
		produceValue(ctx, t, cl, kcfg.Topics.Subscriptions, s.ID, mustMarshal(t, codecs.Subscription.Marshal, s))
	}
	// One key, so one partition: the poison sits between good events.
	events := []*record.Event{
		{ID: "evt_1", Tenant: "acme", Type: "order.created", Subject: "k", OccurredAt: time.Now(), Data: `{}`},
		{ID: "evt_poison", Tenant: "acme", Type: "test.crash", Subject: "k", OccurredAt: time.Now(), Data: `{}`},
		{ID: "evt_2", Tenant: "globex", Type: "order.created", Subject: "k", OccurredAt: time.Now(), Data: `{}`},
		{ID: "evt_3", Tenant: "acme", Type: "order.created", Subject: "k", OccurredAt: time.Now(), Data: `{}`},
	}
	for _, ev := range events {
		produceValue(ctx, t, cl, kcfg.Topics.Events, ev.Subject, mustMarshal(t, codecs.Event.Marshal, ev))
	}
	want := map[string]bool{
		id.Delivery("evt_1", "sub_a"): true, id.Delivery("evt_2", "sub_g"): true, id.Delivery("evt_3", "sub_a"): true,
	}

	const limit = 3
	scfg := testinfra.StackConfig(t, kcfg)
	scfg.Programs = map[string]string{"matcher": os.Args[0]}
	scfg.Schedule = "1s,2s"
	// Static membership: a restarted matcher takes its partitions back at
	// once instead of after the dead one's session timeout.
	scfg.StaticMembers = true
	scfg.Env = []string{childEnv + "=1", "HOOKLINE_TEST_CRASH_EVENT_TYPE=test.crash", fmt.Sprintf("HOOKLINE_CRASH_LIMIT=%d", limit)}
	st := testinfra.Stack(t, scfg)
	var (
		deaths   int
		got      = map[string]int{}
		rejected []*kgo.Record
	)
	if err := st.Start("matcher"); err != nil {
		t.Fatal(err)
	}
	for len(got) < len(want) || len(rejected) == 0 {
		pollCtx, stopPoll := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := cl.PollFetches(pollCtx)
		stopPoll()
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Topic == kcfg.Topics.IngestRejected {
				rejected = append(rejected, r)
				return
			}
			var d record.Delivery
			if err := codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
				t.Fatal(err)
			}
			got[d.ID]++
		})
		select {
		case x := <-st.Exits():
			var ee *exec.ExitError
			if !errors.As(x.Err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the matcher exited with %v, want it to kill itself", x.Err)
			}
			deaths++
			if deaths > limit {
				t.Fatalf("the matcher died %d times; the poison event was not quarantined after %d", deaths, limit)
			}
			if err := st.Start("matcher"); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("after %d deaths: deliveries %v, %d rejected; want %v and the poison rejected", deaths, got, len(rejected), want)
		default:
		}
	}
	if err := st.Term("matcher"); err != nil {
		t.Errorf("the matcher did not stop cleanly after the quarantine: %v", err)
	}
	if deaths != limit {
		t.Errorf("the matcher died %d times, want %d before the quarantine", deaths, limit)
	}
	for d := range want {
		if got[d] != 1 {
			t.Errorf("delivery %s committed %d times, want once (all: %v)", d, got[d], got)
		}
	}
	if len(rejected) != 1 || string(rejected[0].Key) != "k" {
		t.Fatalf("%d rejected records, want the poison event", len(rejected))
	}
	var ev record.Event
	if err := codecs.Event.Unmarshal(rejected[0].Value, &ev); err != nil || ev.ID != "evt_poison" {
		t.Fatalf("rejected record is %+v (%v), want evt_poison unchanged", ev, err)
	}
	reason := ""
	for _, h := range rejected[0].Headers {
		if h.Key == wire.HeaderError {
			reason = string(h.Value)
		}
	}
	if reason != fmt.Sprintf("quarantined: the matcher crashed %d times while processing this record", limit) {
		t.Errorf("rejected with reason %q", reason)
	}
}
