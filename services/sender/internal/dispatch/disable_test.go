package dispatch_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/testreceiver"
	"github.com/hookline/hookline/services/sender/internal/dispatch"
)

// TestDisableKeepsTheOwnersChanges: a 410 disables the subscription as it
// is now, not as the batch found it, and a change the owner made after
// the failing attempt began wins over disabling.
func TestDisableKeepsTheOwnersChanges(t *testing.T) {
	tests := []struct {
		name string
		// ownerWritesDuring is the delivery (0 or 1) during whose request
		// the owner changes the subscription; delivery 1 answers 410.
		ownerWritesDuring int
		wantEnabled       bool
	}{
		{"changed before the failing attempt: disabled, the change kept", 0, false},
		{"changed during the failing attempt: the owner's change wins", 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var (
				sub *record.Subscription
				ds  []record.Delivery
			)
			rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) {
				n := 0
				if r.Header.Get(signature.HeaderID) == ds[1].ID {
					n = 1
				}
				if n == tc.ownerWritesDuring {
					// What an API PATCH writes: the whole subscription,
					// one field changed, read back before answering.
					changed := *sub
					changed.Description, changed.UpdatedAt = "changed by its owner", time.Now().UTC()
					if err := writeSubscription(e, &changed); err != nil {
						t.Error(err)
					}
					// updated_at is kept in milliseconds: keep the change
					// and a next attempt in different ones.
					time.Sleep(5 * time.Millisecond)
				}
				if n == 1 {
					w.WriteHeader(http.StatusGone)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
			sub, _ = e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Ordered, s.Description = true, "as created" })
			ds = []record.Delivery{e.delivery(sub, `{"n":0}`), e.delivery(sub, `{"n":1}`)}
			e.publish(ds...)
			e.run(e.sender(rcv), "sender").waitHandled(t, len(ds), 30*time.Second)

			got := lastState(t, e, sub.ID)
			if got.Enabled != tc.wantEnabled || got.Description != "changed by its owner" {
				t.Errorf("latest state: enabled %v, description %q; want enabled %v with the owner's description", got.Enabled, got.Description, tc.wantEnabled)
			}
			if !tc.wantEnabled && !strings.Contains(got.DisabledReason, "410") {
				t.Errorf("disabled for %q, want the 410", got.DisabledReason)
			}
		})
	}
}

// TestOwnerChangeBetweenReadAndWriteWins: the owner's PATCH lands after
// the sender read the subscription to disable it and before its write.
// The sender writes only hookline.endpoint-status, for the version it
// read, so the owner's change is kept whole and wins: the subscription
// stays enabled with the owner's description. (When the sender wrote the
// subscription record itself, its copy, read before the PATCH, replaced
// the owner's change.)
func TestOwnerChangeBetweenReadAndWriteWins(t *testing.T) {
	e := newEnv(t)
	rcv := testreceiver.New(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) })
	sub, _ := e.subscribe(rcv.URL, []time.Duration{0}, func(s *record.Subscription) { s.Description = "as created" })
	// Keep the subscription's version and the failure in different
	// milliseconds (updated_at is kept in milliseconds).
	time.Sleep(5 * time.Millisecond)
	s := e.sender(rcv)
	var raced []string
	dispatch.SetBeforeDisable(s, func(id string) {
		changed := *sub
		changed.Description, changed.UpdatedAt = "changed by its owner", time.Now().UTC().Truncate(time.Millisecond)
		if err := writeSubscription(e, &changed); err != nil {
			t.Error(err)
		}
		raced = append(raced, id)
	})
	e.publish(e.delivery(sub, `{"n":0}`))
	e.run(s, "sender").waitHandled(t, 1, 30*time.Second)

	if len(raced) != 1 {
		t.Fatalf("the sender read the subscription to disable it %d times, want once", len(raced))
	}
	var statuses []record.EndpointStatus
	for _, r := range e.read(e.kafka.Topics.EndpointStatus) {
		var st record.EndpointStatus
		if err := e.codecs.Status.Unmarshal(r.Value, &st); err != nil {
			t.Fatal(err)
		}
		if st.SubscriptionID == sub.ID {
			statuses = append(statuses, st)
		}
	}
	if len(statuses) != 1 || !statuses[0].SubscriptionUpdatedAt.Equal(sub.UpdatedAt) || !strings.Contains(statuses[0].DisabledReason, "410") {
		t.Errorf("statuses %+v, want one disabling the version the sender read (updated_at %v) for the 410", statuses, sub.UpdatedAt)
	}
	for _, r := range e.read(e.kafka.Topics.Subscriptions) {
		var rec record.Subscription
		if string(r.Key) == sub.ID && e.codecs.Subscription.Unmarshal(r.Value, &rec) == nil && !rec.Enabled {
			t.Errorf("a disabled subscription record was written (offset %d): the sender must not write the owner's topic", r.Offset)
		}
	}
	got := lastState(t, e, sub.ID)
	if !got.Enabled || got.Description != "changed by its owner" {
		t.Errorf("latest state: enabled %v, description %q; want the owner's change, enabled", got.Enabled, got.Description)
	}
}

// writeSubscription produces sub's new state and waits until the test's
// view has read it.
func writeSubscription(e *env, sub *record.Subscription) error {
	value, err := e.codecs.Subscription.Marshal(sub)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := e.producer.ProduceSync(ctx, &kgo.Record{Topic: e.kafka.Topics.Subscriptions, Key: []byte(sub.ID), Value: value}).First()
	if err != nil {
		return err
	}
	return e.view.WaitFor(ctx, r.Partition, r.Offset)
}
