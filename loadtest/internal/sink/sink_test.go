package sink

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/signature"
)

// newSink starts a sink with one endpoint, /t/e, and returns its secret.
func newSink(t *testing.T) (*Sink, signature.Secret) {
	t.Helper()
	s, err := Start(42)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	sec, _, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoint("/t/e", sec)
	return s, sec
}

func client(s *Sink, http2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Cert.Pool()}, ForceAttemptHTTP2: http2}
	if !http2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// post sends a signed webhook with an event timestamp, returning the status
// (0 and the error when no answer came).
func post(t *testing.T, c *http.Client, s *Sink, path, id string, occurred time.Time, sec signature.Secret) (int, http.Header, error) {
	t.Helper()
	body := fmt.Appendf(nil, `{"id":"evt_1","type":"a.b","timestamp":%q,"subject":"s","data":{}}`, occurred.UTC().Format(time.RFC3339Nano))
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
	now := time.Now()
	req.Header.Set(signature.HeaderID, id)
	req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(signature.HeaderSignature, signature.Sign(id, now, body, sec))
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

func TestCountsUniqueDuplicatesAndLatency(t *testing.T) {
	s, sec := newSink(t)
	tally := s.Begin(Faults{})
	c := client(s, true)
	occurred := time.Now().Add(-250 * time.Millisecond)
	for _, id := range []string{"dlv_a", "dlv_b", "dlv_a", "dlv_c", "dlv_a"} {
		if code, _, err := post(t, c, s, "/t/e", id, occurred, sec); err != nil || code != http.StatusNoContent {
			t.Fatalf("post %s: %d %v", id, code, err)
		}
	}
	got := tally.Counts()
	if got.Delivered != 3 || got.Duplicates != 2 || got.Retries != 0 || got.BadSignatures != 0 {
		t.Errorf("counts %+v, want 3 delivered and 2 duplicates", got)
	}
	lat := tally.Latencies()
	if len(lat) != 3 {
		t.Fatalf("%d latencies, want one per unique id", len(lat))
	}
	for _, d := range lat {
		if d < 250*time.Millisecond || d > 5*time.Second {
			t.Errorf("latency %v, want at least the 250ms the event is old", d)
		}
	}
	lost, unexpected := tally.Compare(map[string]struct{}{"dlv_a": {}, "dlv_b": {}, "dlv_x": {}})
	if lost != 1 || unexpected != 1 {
		t.Errorf("lost %d unexpected %d, want dlv_x lost and dlv_c unexpected", lost, unexpected)
	}
	if n := len(tally.Samples()); n != 3 {
		t.Errorf("%d samples kept, want 3", n)
	}
}

func TestRefusesBadSignaturesAndUnknownPaths(t *testing.T) {
	s, sec := newSink(t)
	tally := s.Begin(Faults{})
	c := client(s, false)
	other, _, _ := signature.NewSecret()
	if code, _, _ := post(t, c, s, "/t/e", "dlv_1", time.Now(), other); code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d, want 401", code)
	}
	if code, _, _ := post(t, c, s, "/t/nope", "dlv_2", time.Now(), sec); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
	if got := tally.Counts(); got.BadSignatures != 2 || got.Delivered != 0 {
		t.Errorf("counts %+v, want 2 refused and nothing delivered", got)
	}
}

func TestBarrierPingsAreNotCounted(t *testing.T) {
	s, _ := newSink(t)
	sec, _, _ := signature.NewSecret()
	s.Barrier("/barrier", sec)
	tally := s.Begin(Faults{ErrorRate: 1})
	if code, _, _ := post(t, client(s, true), s, "/barrier", "dlv_p", time.Now(), sec); code != http.StatusNoContent {
		t.Errorf("barrier ping: %d, want 204 even while every request fails", code)
	}
	if s.Pings("/barrier") != 1 || tally.Counts() != (Counts{}) {
		t.Errorf("pings %d counts %+v, want one ping and nothing in the tally", s.Pings("/barrier"), tally.Counts())
	}
}

func TestPickSplitsTheRollIntoDisjointFaults(t *testing.T) {
	f := Faults{ResetRate: 0.1, TimeoutRate: 0.1, ErrorRate: 0.2, ThrottleRate: 0.1, SlowRate: 0.1}
	tests := []struct {
		u    float64
		want fault
	}{
		{0, faultReset}, {0.099, faultReset}, {0.1, faultTimeout}, {0.25, faultError},
		{0.399, faultError}, {0.45, faultThrottle}, {0.55, faultSlow}, {0.6, faultNone}, {0.999, faultNone},
	}
	for _, tc := range tests {
		if got := f.pick(tc.u); got != tc.want {
			t.Errorf("pick(%v) = %v, want %v", tc.u, got, tc.want)
		}
	}
	if (Faults{}).pick(0) != faultNone {
		t.Error("no faults must never fault")
	}
}

// A client that retries every failure until it gets a 2xx must see every id
// delivered once, and the sink's retry count must equal the failures the
// client saw, which must be near the configured rate.
func TestErrorRateRetriedToCompletion(t *testing.T) {
	s, sec := newSink(t)
	tally := s.Begin(Faults{ErrorRate: 0.2, ThrottleRate: 0.05, RetryAfter: 2 * time.Second})
	c := client(s, true)
	const ids = 500
	failures, answers := 0, 0
	for i := range ids {
		for attempt := 0; ; attempt++ {
			if attempt == 50 {
				t.Fatalf("dlv_%d never delivered", i)
			}
			code, h, err := post(t, c, s, "/t/e", fmt.Sprintf("dlv_%d", i), time.Now(), sec)
			if err != nil {
				t.Fatal(err)
			}
			answers++
			if code == http.StatusTooManyRequests && h.Get("Retry-After") != "2" {
				t.Errorf("429 with Retry-After %q, want 2", h.Get("Retry-After"))
			}
			if code == http.StatusNoContent {
				break
			}
			if code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
				t.Fatalf("status %d", code)
			}
			failures++
		}
	}
	got := tally.Counts()
	if got.Delivered != ids || got.Duplicates != 0 || got.Retries != failures {
		t.Errorf("counts %+v, want %d delivered and %d retries", got, ids, failures)
	}
	if rate := float64(failures) / float64(answers); rate < 0.18 || rate > 0.32 {
		t.Errorf("failure rate %.3f, want about 0.25", rate)
	}
}

func TestResetAndTimeoutGiveNoAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults Faults
		http2  bool
	}{
		{"reset HTTP/1.1", Faults{ResetRate: 1}, false},
		{"reset HTTP/2", Faults{ResetRate: 1}, true},
		{"timeout", Faults{TimeoutRate: 1, Hang: 3 * time.Second}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sec := newSink(t)
			tally := s.Begin(tc.faults)
			c := client(s, tc.http2)
			c.Timeout = 300 * time.Millisecond
			if code, _, err := post(t, c, s, "/t/e", "dlv_1", time.Now(), sec); err == nil {
				t.Fatalf("answered %d, want no answer", code)
			}
			// The sink notices the timeout only when the client goes away.
			deadline := time.Now().Add(2 * time.Second)
			for tally.Counts().Retries != 1 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := tally.Counts(); got.Retries != 1 || got.Delivered != 0 {
				t.Errorf("counts %+v, want one retry and nothing delivered", got)
			}
		})
	}
}

func TestSlowStillDelivers(t *testing.T) {
	s, sec := newSink(t)
	tally := s.Begin(Faults{SlowRate: 1, Slow: 200 * time.Millisecond})
	start := time.Now()
	if code, _, err := post(t, client(s, true), s, "/t/e", "dlv_1", time.Now(), sec); err != nil || code != http.StatusNoContent {
		t.Fatalf("slow answer: %d %v", code, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("answered in %v, want at least the 200ms delay", took)
	}
	if tally.Counts().Delivered != 1 {
		t.Error("a slow 204 is a delivery")
	}
}

func TestDownRefusesConnectionsThenComesBack(t *testing.T) {
	s, sec := newSink(t)
	tally := s.Begin(Faults{})
	c := client(s, true)
	if code, _, err := post(t, c, s, "/t/e", "dlv_before", time.Now(), sec); err != nil || code != http.StatusNoContent {
		t.Fatalf("before: %d %v", code, err)
	}
	if err := s.Down(500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Down(time.Second); err == nil {
		t.Error("a second Down while down must fail")
	}
	if _, _, err := post(t, c, s, "/t/e", "dlv_during", time.Now(), sec); err == nil {
		t.Error("a request got an answer while the sink was down")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.IsDown() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, err := post(t, c, s, "/t/e", "dlv_after", time.Now(), sec); err != nil || code != http.StatusNoContent {
		t.Fatalf("after: %d %v", code, err)
	}
	if got := tally.Counts(); got.Delivered != 2 || !tally.Has("dlv_after") || tally.Has("dlv_during") {
		t.Errorf("counts %+v: want before and after delivered, during not", got)
	}
}

// TestBehaveFaultsOneEndpoint: an endpoint given faults of its own answers
// with them while the others answer with the scenario's, and each
// endpoint's deliveries are tallied apart.
func TestBehaveFaultsOneEndpoint(t *testing.T) {
	s, sec := newSink(t)
	s.Endpoint("/t/bad", sec)
	if err := s.Behave("/t/bad", Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Behave("/t/unknown", Faults{}); err == nil {
		t.Error("Behave of an unregistered path did not fail")
	}
	tally := s.Begin(Faults{})
	c := client(s, true)
	if code, _, _ := post(t, c, s, "/t/bad", "dlv_bad", time.Now(), sec); code != http.StatusServiceUnavailable {
		t.Errorf("the endpoint with its own faults answered %d, want 503", code)
	}
	for _, id := range []string{"dlv_1", "dlv_2"} {
		if code, _, _ := post(t, c, s, "/t/e", id, time.Now().Add(-time.Second), sec); code != http.StatusNoContent {
			t.Errorf("a healthy endpoint answered %d, want 204", code)
		}
	}
	paths := tally.Paths(func(string) bool { return true })
	if len(paths) != 1 || paths["/t/e"].Delivered != 2 || len(paths["/t/e"].Latencies) != 2 {
		t.Errorf("per path %+v, want /t/e with 2 deliveries and their latencies", paths)
	}
	if got := tally.Counts(); got.Retries != 1 || got.Delivered != 2 {
		t.Errorf("counts %+v, want 1 fault and 2 delivered", got)
	}
	if !s.Behaving("/t/bad") || s.Behaving("/t/e") {
		t.Errorf("Behaving: /t/bad %v, /t/e %v; want only /t/bad", s.Behaving("/t/bad"), s.Behaving("/t/e"))
	}
}
