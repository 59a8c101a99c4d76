package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

type pingAnswer struct {
	DeliveryID string `json:"delivery_id"`
	EventID    string `json:"event_id"`
	Result     *struct {
		Outcome       string     `json:"outcome"`
		StatusCode    int        `json:"status_code"`
		DurationMS    int64      `json:"duration_ms"`
		Error         string     `json:"error"`
		Response      string     `json:"response"`
		URL           string     `json:"url"`
		NextAttemptAt *time.Time `json:"next_attempt_at"`
	} `json:"result"`
}

// TestPingWaitsForItsOutcome: a test ping with ?wait answers with what
// the endpoint did to it (a console's "send test" button); one whose
// answer takes longer than the wait answers 202 with its delivery id.
func TestPingWaitsForItsOutcome(t *testing.T) {
	rc := newReceiver(t)
	rc.respond = func(r *http.Request, _ []byte, _ int) (int, http.Header) {
		switch r.URL.Path {
		case "/broken":
			return http.StatusInternalServerError, nil
		case "/slow":
			time.Sleep(3 * time.Second)
		}
		return http.StatusNoContent, nil
	}
	s := startStack(t, rc.Cert.PEM, "1h")
	subscribe := func(path string) string {
		var sub created
		if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + path, "event_types": []string{"order.*"}}, &sub); code != http.StatusCreated {
			t.Fatalf("create subscription: %d", code)
		}
		return sub.ID
	}
	ok, broken, slow := subscribe("/ok"), subscribe("/broken"), subscribe("/slow")
	time.Sleep(2 * time.Second) // the sender's view learns of them

	ping := func(id, query string) (int, pingAnswer) {
		t.Helper()
		var a pingAnswer
		code, _ := s.call(http.MethodPost, "/v1/subscriptions/"+id+"/test"+query, s.Key, "application/json", []byte(`{}`), &a)
		return code, a
	}
	code, a := ping(ok, "?wait=true")
	if code != http.StatusOK || a.Result == nil || a.Result.Outcome != "delivered" || a.Result.StatusCode != 204 || !strings.HasSuffix(a.Result.URL, "/ok") {
		t.Errorf("ping of a working endpoint: %d %+v, want 200 delivered 204", code, a.Result)
	}
	code, a = ping(broken, "?wait_ms=20000")
	if code != http.StatusOK || a.Result == nil || a.Result.Outcome != "retrying" || a.Result.StatusCode != 500 ||
		a.Result.Error != "HTTP 500" || a.Result.NextAttemptAt == nil {
		t.Errorf("ping of a failing endpoint: %d %+v, want 200 with the 500, retrying", code, a.Result)
	}
	code, a = ping(slow, "?wait_ms=500")
	if code != http.StatusAccepted || a.Result != nil || !strings.HasPrefix(a.DeliveryID, "dlv_") {
		t.Errorf("ping outwaited: %d %+v, want 202 with the delivery id only", code, a)
	}
	code, a = ping(ok, "")
	if code != http.StatusAccepted || a.Result != nil {
		t.Errorf("ping without wait: %d %+v, want 202 at once", code, a)
	}
}
