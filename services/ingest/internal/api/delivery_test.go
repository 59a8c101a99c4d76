package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestCompressionSetting(t *testing.T) {
	s := offlineServer(t)
	for body, want := range map[string]string{
		`{"compression":"gzip"}`: "gzip",
		`{"compression":""}`:     "",
		`{"compression":"br"}`:   "error",
		`{"compression":"GZIP"}`: "error",
	} {
		var in subscriptionInput
		if errs := decodeStrict([]byte(body), &in); errs != nil {
			t.Fatal(errs)
		}
		sub := newSubscription("sub_1", "acme", testNow)
		errs := s.apply(&in, sub, false)
		if want == "error" {
			if len(errs) != 1 || errs[0].Field != "compression" {
				t.Errorf("%s: errors %+v, want compression", body, errs)
			}
			continue
		}
		shown, _ := json.Marshal(viewOf(sub))
		if len(errs) > 0 || sub.Compression != want || !strings.Contains(string(shown), `"compression":"`+want+`"`) {
			t.Errorf("%s: errors %+v, stored %q, shown %s", body, errs, sub.Compression, shown)
		}
	}
}

func TestPingWaitParameter(t *testing.T) {
	s := offlineServer(t)
	for query, field := range map[string]string{
		"?wait_ms=30001": "wait_ms",
		"?wait_ms=-1":    "wait_ms",
		"?wait_ms=soon":  "wait_ms",
		"?wait=yes":      "wait",
		// Present but empty is not "no wait": the document says integer
		// and boolean.
		"?wait_ms=": "wait_ms",
		"?wait=":    "wait",
	} {
		rec := do(t, s.Handler(), http.MethodPost, "/v1/subscriptions/sub_1/test"+query, "key-acme", "{}")
		p := problemOf(t, http.StatusBadRequest, rec.Header(), rec.Body.Bytes())
		if len(p.Errors) != 1 || p.Errors[0].Field != field {
			t.Errorf("%s: %+v, want %s named", query, p.Errors, field)
		}
	}
}
