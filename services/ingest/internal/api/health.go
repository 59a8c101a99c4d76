package api

import (
	"net/http"
	"time"

	"github.com/hookline/hookline/pkg/health"
)

// Health states of a subscription's endpoint, as the console shows them.
const (
	HealthHealthy  = "healthy"
	HealthFailing  = "failing"  // health.FailingAfter failures in a row or more
	HealthCritical = "critical" // health.CriticalAfter or more
	HealthDisabled = "disabled"
	HealthUnknown  = "unknown" // Redis did not answer
)

// healthView is where an endpoint stands. The failure streak lives in
// Redis (pkg/health, counted by every sender); disabled lives on the
// subscription itself.
type healthView struct {
	State string `json:"state"`
	// Since is when the state began: the first failure of the streak, or
	// for a disabled subscription its last change, which is when it was
	// disabled unless it was edited after.
	Since               *time.Time `json:"since,omitempty"`
	ConsecutiveFailures int64      `json:"consecutive_failures"`
	Reason              string     `json:"reason,omitempty"`
}

// addHealth fills in the health of views, with one Redis round trip. If
// Redis does not answer the views are still shown, with health unknown:
// a page must not fail for it.
func (s *Server) addHealth(r *http.Request, views []subscriptionView) {
	if s.Health == nil || len(views) == 0 {
		return
	}
	ids := make([]string, len(views))
	for i, v := range views {
		ids[i] = v.ID
	}
	states, err := s.Health.Peek(r.Context(), ids...)
	if err != nil {
		s.Log.Warn().Err(err).Msg("endpoint health unavailable")
	}
	for i := range views {
		v := &views[i]
		h := &healthView{State: HealthUnknown}
		if err == nil {
			h = healthOf(v, states[i])
		} else if !v.Enabled {
			h = healthOf(v, health.State{})
		}
		v.Health = h
	}
}

func healthOf(v *subscriptionView, st health.State) *healthView {
	h := &healthView{State: HealthHealthy, ConsecutiveFailures: st.Failures}
	if st.Failures > 0 {
		since := st.FailingSince.UTC()
		h.Since = &since
	}
	switch {
	case !v.Enabled:
		since := v.UpdatedAt
		h.State, h.Since, h.Reason = HealthDisabled, &since, v.DisabledReason
	case st.Failures >= health.CriticalAfter:
		h.State = HealthCritical
	case st.Failures >= health.FailingAfter:
		h.State = HealthFailing
	}
	return h
}
