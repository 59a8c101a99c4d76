package subscription

import (
	"strings"
	"testing"
	"time"
)

func TestDisabledErrorNeverEndsEmpty(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	for reason, want := range map[string]string{
		"":                                  "subscription disabled: no reason recorded",
		ReasonOwner:                         "subscription disabled: disabled by its owner through the API",
		ReasonGone:                          "subscription disabled: disabled by Hookline: the endpoint answered 410 Gone",
		ReasonFailing(since, 120*time.Hour): "subscription disabled: disabled by Hookline: the endpoint has failed without a success since 2026-01-02T02:04:05Z, longer than the disable window (120h0m0s)",
	} {
		if got := DisabledError(reason); got != want {
			t.Errorf("DisabledError(%q) = %q, want %q", reason, got, want)
		}
		if strings.HasSuffix(DisabledError(reason), ": ") {
			t.Errorf("DisabledError(%q) ends without a reason", reason)
		}
	}
}
