package api

import (
	"testing"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/subscription"
)

// TestDisabledReasonSaysWho: turning a subscription off through the API
// records that its owner did, so its dead letters never read
// "subscription disabled: " with nothing after it; a subscription already
// disabled keeps the reason it has, and enabling clears it.
func TestDisabledReasonSaysWho(t *testing.T) {
	s := offlineServer(t)
	tests := []struct {
		name       string
		enabled    bool
		reason     string
		patch      string
		wantReason string
	}{
		{"owner disables", true, "", `{"enabled":false}`, subscription.ReasonOwner},
		{"already disabled by a 410 keeps its reason", false, subscription.ReasonGone, `{"enabled":false}`, subscription.ReasonGone},
		{"disabled without a reason gets the owner's", false, "", `{"enabled":false}`, subscription.ReasonOwner},
		{"enabling clears it", false, subscription.ReasonGone, `{"enabled":true}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := newSubscription("sub_1", "acme", testNow)
			sub.URL, sub.EventTypes = "https://example.com/hook", []string{"a"}
			sub.Enabled, sub.DisabledReason = tc.enabled, tc.reason
			var in subscriptionInput
			if errs := decodeStrict([]byte(tc.patch), &in); errs != nil {
				t.Fatal(errs)
			}
			if errs := s.apply(&in, sub, false); len(errs) > 0 {
				t.Fatal(errs)
			}
			if sub.DisabledReason != tc.wantReason {
				t.Errorf("disabled_reason %q, want %q", sub.DisabledReason, tc.wantReason)
			}
		})
	}
	t.Run("created disabled", func(t *testing.T) {
		sub := &record.Subscription{Enabled: true}
		var in subscriptionInput
		if errs := decodeStrict([]byte(subBody(t, `{"enabled":false}`)), &in); errs != nil {
			t.Fatal(errs)
		}
		if errs := s.apply(&in, sub, true); len(errs) > 0 {
			t.Fatal(errs)
		}
		if sub.Enabled || sub.DisabledReason != subscription.ReasonOwner {
			t.Errorf("enabled %v, reason %q", sub.Enabled, sub.DisabledReason)
		}
	})
}
