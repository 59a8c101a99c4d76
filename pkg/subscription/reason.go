package subscription

import (
	"fmt"
	"time"
)

// Why a subscription is disabled. The reason is kept in its
// disabled_reason, shown by the API, and repeated in the dead letters of
// the deliveries it stops, so it always says who disabled it and why.
const (
	// ReasonOwner is written by the API when the owner turns it off
	// (PATCH or PUT with "enabled": false, or created disabled).
	ReasonOwner = "disabled by its owner through the API"
	// ReasonGone is written by the sender when the endpoint answers 410.
	ReasonGone = "disabled by Hookline: the endpoint answered 410 Gone"
	// noReason stands in for the empty reason of a subscription disabled
	// before reasons were always written.
	noReason = "no reason recorded"
)

// ReasonFailing is written by the sender when the endpoint has failed
// without a success since since, longer than the disable window.
func ReasonFailing(since time.Time, window time.Duration) string {
	return fmt.Sprintf("disabled by Hookline: the endpoint has failed without a success since %s, longer than the disable window (%s)",
		since.UTC().Format(time.RFC3339), window)
}

// DisabledError is the last_error of a delivery dead-lettered unsent
// because its subscription is disabled for reason.
func DisabledError(reason string) string {
	if reason == "" {
		reason = noReason
	}
	return "subscription disabled: " + reason
}
