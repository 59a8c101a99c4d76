package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
)

// TestHooklineDisableThroughTheAPI: a subscription the sender disabled
// (its status on hookline.endpoint-status) reads disabled, with the
// reason; the owner's next edit keeps it disabled and carries the state
// into the owner's own record; enabling it turns it back on; deleting it
// deletes its status too.
func TestHooklineDisableThroughTheAPI(t *testing.T) {
	s := newStack(t)
	created := s.create(t, "key-acme", subBody(t, `{"name":"to be disabled"}`))
	stored := s.stored(t, created.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// What the sender writes on a 410.
	disabledAt := stored.UpdatedAt.Add(time.Second)
	st := record.EndpointStatus{SubscriptionID: created.ID, Tenant: stored.Tenant, DisabledReason: subscription.ReasonGone,
		DisabledAt: disabledAt, SubscriptionUpdatedAt: stored.UpdatedAt}
	value, err := s.srv.Codecs.Status.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.srv.Producer.ProduceSync(ctx, &kgo.Record{Topic: s.cfg.Topics.EndpointStatus, Key: []byte(created.ID), Value: value}).First()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.srv.View.WaitForStatus(ctx, res.Partition, res.Offset); err != nil {
		t.Fatal(err)
	}
	got := s.get(t, "key-acme", created.ID)
	if got.Enabled || got.DisabledReason != subscription.ReasonGone || !got.UpdatedAt.Equal(disabledAt.UTC()) {
		t.Fatalf("after the sender's status: enabled %v, reason %q, updated %v; want disabled for the 410 at %v", got.Enabled, got.DisabledReason, got.UpdatedAt, disabledAt)
	}

	var renamed subscriptionView
	decodeInto(t, s.must(t, http.StatusOK, "PATCH", "/v1/subscriptions/"+created.ID, "key-acme", `{"name":"renamed"}`), &renamed)
	if renamed.Enabled || renamed.DisabledReason != subscription.ReasonGone || !renamed.UpdatedAt.After(disabledAt) {
		t.Errorf("an edit of a disabled subscription: enabled %v, reason %q, updated %v; want still disabled for the 410, updated after %v",
			renamed.Enabled, renamed.DisabledReason, renamed.UpdatedAt, disabledAt)
	}
	if own := s.stored(t, created.ID); own.Enabled || own.DisabledReason != subscription.ReasonGone || own.Name != "renamed" {
		t.Errorf("the owner's record after the edit: %+v, want it to hold the disable", own)
	}

	var enabled subscriptionView
	decodeInto(t, s.must(t, http.StatusOK, "PATCH", "/v1/subscriptions/"+created.ID, "key-acme", `{"enabled":true}`), &enabled)
	if !enabled.Enabled || enabled.DisabledReason != "" || !s.get(t, "key-acme", created.ID).Enabled {
		t.Errorf("after enabling: %+v, want enabled without a reason", enabled)
	}

	s.must(t, http.StatusNoContent, "DELETE", "/v1/subscriptions/"+created.ID, "key-acme", "")
	var last *kgo.Record
	for _, r := range testinfra.Records(t, s.cfg, s.cfg.Topics.EndpointStatus) {
		if string(r.Key) == created.ID {
			last = r
		}
	}
	if last == nil || last.Value != nil {
		t.Errorf("the status of the deleted subscription ends with %v, want a tombstone", last)
	}
}

// TestVersionsMoveForward: every version of a subscription gets an
// updated_at later than the one it replaces, even when this instance's
// clock is behind the version's writer's: the status of an endpoint
// names the version it applies to by it.
func TestVersionsMoveForward(t *testing.T) {
	s := offlineServer(t)
	ahead := testNow.Add(time.Hour)
	if got := s.versionAfter(ahead); !got.After(ahead) {
		t.Errorf("after a version from a clock an hour ahead: %v, want later than %v", got, ahead)
	}
	behind := testNow.Add(-time.Hour)
	if got := s.versionAfter(behind); !got.Equal(testNow.UTC().Truncate(time.Millisecond)) {
		t.Errorf("after an old version: %v, want now (%v)", got, testNow)
	}
}
