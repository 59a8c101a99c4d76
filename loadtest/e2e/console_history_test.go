package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/stack"
)

// TestConsoleHistoryInABrowser is the delivery history in the portal,
// against the four services, the logs service and real Kafka, Redis and
// PostgreSQL: a test event's attempt appears in the Logs tab while it is
// open; an endpoint answering HTML fails and its answer shows as text;
// once fixed, re-run and "recover failed since" deliver what failed;
// events are found and sent to another endpoint; the overview draws its
// charts; a portal restricted to one endpoint cannot open another's logs.
func TestConsoleHistoryInABrowser(t *testing.T) {
	chromium(t) // before the stack: fail or skip at once
	rc := newReceiver(t)
	var broken atomic.Bool
	const htmlAnswer = `<h1 id="injected">down</h1><script>document.title="pwned"</script><img src=x onerror="window.__xss=1">`
	rc.respond = func(r *http.Request, _ []byte, _ int) (int, http.Header) {
		if broken.Load() && r.URL.Path == "/shop" {
			return http.StatusInternalServerError, http.Header{"Content-Type": {"text/html"}}
		}
		return http.StatusNoContent, nil
	}
	rc.answer = func(r *http.Request) []byte {
		if broken.Load() && r.URL.Path == "/shop" {
			return []byte(htmlAnswer)
		}
		return nil
	}
	s := startStack(t, rc.Cert.PEM, "1s,2s", withHistory(t))
	link := s.portal(t, s.Key, map[string]any{})
	base := strings.Split(link.URL, "#")[0]
	b := newBrowser(t)

	// A new endpoint with an AND/OR condition, at most 2 attempts.
	b.do("open the portal link", chromedp.Navigate(link.URL))
	b.waitText("No endpoints yet", 20*time.Second)
	b.press("n") // a new endpoint
	b.waitFor("the form", `!!document.querySelector("#subscription-form")`, 10*time.Second)
	b.typeInto(`[name=url]`, rc.URL+"/shop")
	b.typeInto(`[name=name]`, "Shop")
	b.typeInto(`[name=event_types]`, "order.*")
	b.setValue(`[name=max_attempts]`, "2")
	buildCondition(b)
	b.click("Create endpoint")
	b.waitText("Copy the signing secret now", 20*time.Second)
	subID := eval[string](b, `location.hash.split("/")[2]`)

	// The Logs tab open and empty; a test event's attempt appears in it
	// without a reload.
	b.press("l") // the Logs tab
	b.waitText("No attempts yet", 20*time.Second)
	if got := eval[string](b, `location.hash`); got != "#/subscriptions/"+subID+"/logs" {
		t.Errorf("l went to %s", got)
	}
	if code := s.postJSON("/v1/subscriptions/"+subID+"/test", nil, nil); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("test event: %d", code)
	}
	b.waitFor("the test's attempt in the open Logs tab", `!!document.querySelector('#attempts tbody tr[data-outcome="delivered"]')`, 60*time.Second)
	if got := eval[string](b, `document.querySelector("#logs-live").textContent`); !strings.HasPrefix(got, "Live") {
		t.Errorf("the live line says %q", got)
	}

	// The endpoint breaks, answering HTML: two orders fail, with the
	// answer shown as text.
	broken.Store(true)
	order := func(n int) string {
		var ev created
		if code := s.postJSON("/v1/events", map[string]any{"type": "order.created", "subject": fmt.Sprintf("ord_%d", n),
			"data": map[string]any{"total": 150, "currency": "EUR", "note": "<b>bold</b>"}}, &ev); code != http.StatusAccepted {
			t.Fatalf("post event: %d", code)
		}
		return ev.ID
	}
	ev1, ev2 := order(1), order(2)
	b.waitFor("two given-up attempts in the Logs tab", `document.querySelectorAll('#attempts tbody tr[data-outcome="failed"]').length === 2`, 90*time.Second)
	if n := eval[int](b, `document.querySelectorAll('#attempts tbody tr[data-outcome="retrying"]').length`); n != 2 {
		t.Errorf("%d attempts to be retried listed, want 2", n)
	}
	b.choose("#logs-status", "failed")
	b.click("Filter")
	b.waitFor("the filtered list", `location.hash.includes("status=failed") && document.querySelectorAll("#attempts tbody tr").length === 2 && !document.querySelector('#attempts tbody tr:not([data-outcome="failed"])')`, 20*time.Second)
	b.screenshot("logs")
	failed := s.waitDelivery(t, "/v1/deliveries?status=failed&event_id="+ev1, func(p historyPage) bool { return len(p.Data) == 1 })
	dlv1 := failed.Data[0].ID
	b.do("open the first order's attempt", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#attempts tr[data-delivery=%q] td a`, dlv1))))
	b.waitFor("the attempt's page", `!!document.querySelector("#response-body")`, 20*time.Second)
	if got := eval[string](b, `document.querySelector("#response-body").textContent`); got != htmlAnswer {
		t.Errorf("the endpoint's answer shows as %q, want its HTML as text", got)
	}
	if n := eval[int](b, `document.querySelectorAll("#injected, main img").length`); n != 0 {
		t.Errorf("%d elements of the endpoint's answer were rendered as HTML", n)
	}
	b.noScriptRan()
	for sel, want := range map[string]string{
		"#attempt-status":  "500",
		"#request-body":    `"note": "<b>bold</b>"`,
		"#request-headers": "Webhook-Id: " + dlv1,
	} {
		if got := eval[string](b, `document.querySelector(`+jsString(sel)+`).textContent`); !strings.Contains(got, want) {
			t.Errorf("%s shows %q, want %q in it", sel, got, want)
		}
	}
	b.screenshot("attempt")

	// Fixed: re-run the first order from its page, and see it delivered.
	broken.Store(false)
	b.click("Re-run")
	b.waitFor("the re-run's attempt", `document.querySelector("#attempt").innerText.includes("Delivered") && document.querySelector("#attempt").innerText.includes("re-run")`, 60*time.Second)
	rc.waitFor(t, 10*time.Second, "the re-run at the endpoint", func(reqs []*http.Request, _ [][]byte) bool {
		return countID(reqs, dlv1) == 3 // two failed attempts, and the re-run
	})

	// And the second with "recover failed since…".
	b.do("open the Logs tab", chromedp.Navigate(base+"#/subscriptions/"+subID+"/logs"))
	b.waitFor("the recover control", `!!document.querySelector("#recover")`, 20*time.Second)
	b.do("open the recover panel", chromedp.Click(chromedp.CSS(`details.panel summary`)))
	b.click("Recover failed deliveries")
	b.waitFor("the recover's answer", `!!document.querySelector("#recover-result")`, 30*time.Second)
	if got := eval[string](b, `document.querySelector("#recover-result").textContent`); !strings.Contains(got, "1 failed delivery sent again") {
		t.Errorf("recover says %q", got)
	}
	s.waitDelivery(t, "/v1/deliveries?status=delivered&event_id="+ev2, func(p historyPage) bool { return len(p.Data) == 1 })

	// Events: found by type and subject, with their deliveries; one sent
	// to another endpoint.
	var other created
	if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + "/other", "event_types": []string{"invoice.*"}, "name": "Archive"}, &other); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	b.do("open the events", chromedp.Navigate(base+"#/events"))
	b.waitFor("the events list", `document.querySelectorAll("#events tbody tr:not(.deliveries)").length >= 3`, 20*time.Second)
	b.typeInto("#ev-subject", "ord_1")
	b.click("Find")
	b.waitFor("the events of ord_1", `location.hash.includes("subject=ord_1") && document.querySelectorAll("#events tbody tr:not(.deliveries)").length === 1`, 20*time.Second)
	b.click("Deliveries")
	b.waitFor("the event's deliveries", `!!document.querySelector("#events tr.deliveries td table")`, 20*time.Second)
	if got := eval[string](b, `document.querySelector("#events tr.deliveries").innerText`); !strings.Contains(got, subID) || !strings.Contains(got, "Delivered") {
		t.Errorf("the event's deliveries show %q, want %s delivered", got, subID)
	}
	b.screenshot("events")
	b.do("open the event", chromedp.Navigate(base+"#/events/"+ev1))
	b.waitFor("the endpoints to pick from", `!!document.querySelector('#send-to option[value="`+other.ID+`"]')`, 20*time.Second)
	if got := eval[string](b, `document.querySelector("#event-data").textContent`); !strings.Contains(got, `"note": "<b>bold</b>"`) {
		t.Errorf("the event's data shows as %q", got)
	}
	b.choose("#send-to", other.ID)
	b.click("Send")
	b.waitFor("the send's answer", `!!document.querySelector("#send-result")`, 30*time.Second)
	if got := eval[string](b, `document.querySelector("#send-result").textContent`); !strings.Contains(got, "Sent to the endpoint as delivery") {
		t.Errorf("send says %q", got)
	}
	rc.waitFor(t, 60*time.Second, "the old event at the other endpoint", func(reqs []*http.Request, _ [][]byte) bool {
		for _, r := range reqs {
			if r.URL.Path == "/other" {
				return true
			}
		}
		return false
	})
	b.screenshot("event")

	// The overview: charts drawn, the endpoint that failed first.
	b.do("open the overview", chromedp.Navigate(base+"#/overview"))
	b.waitFor("the charts", `document.querySelectorAll("svg.chart rect.bar").length > 0 && document.querySelectorAll("svg.chart polyline").length === 2`, 20*time.Second)
	if got := eval[string](b, `document.querySelector("#overview-endpoints tbody tr").innerText`); !strings.Contains(got, "Shop") {
		t.Errorf("the first endpoint of the overview is %q, want Shop, which failed", got)
	}
	if got := eval[string](b, `document.querySelector("#stat-success .value").textContent`); !strings.HasSuffix(got, "%") || got == "100%" {
		t.Errorf("the success rate shows %q, want a share below 100%%", got)
	}
	b.screenshot("overview")

	// A portal restricted to the other endpoint cannot open Shop's logs,
	// nor its deliveries.
	restricted := s.portal(t, s.Key, map[string]any{"subscription_ids": []string{other.ID}})
	b.do("open the restricted link", chromedp.Navigate("about:blank"), chromedp.Navigate(restricted.URL))
	b.waitText("Archive", 20*time.Second)
	b.do("ask for Shop's logs", chromedp.Navigate(base+"#/subscriptions/"+subID+"/logs"))
	b.waitText("no subscription "+subID, 20*time.Second)
	b.do("ask for Shop's delivery", chromedp.Navigate(base+"#/deliveries/"+dlv1))
	b.waitText("no delivery "+dlv1, 20*time.Second)
	b.do("open the events", chromedp.Navigate(base+"#/events"))
	b.waitText("Look an event up by its id", 20*time.Second)
}

// countID is how many requests carried the webhook-id id.
func countID(reqs []*http.Request, id string) int {
	n := 0
	for _, r := range reqs {
		if r.Header.Get(signature.HeaderID) == id {
			n++
		}
	}
	return n
}

// TestConsoleHistoryUnavailable: with the history's database down (ingest
// given one that does not answer), the history pages say it is
// unavailable and show nothing, rather than an empty list; the rest of
// the console works.
func TestConsoleHistoryUnavailable(t *testing.T) {
	chromium(t)
	rc := newReceiver(t)
	s := startStack(t, rc.Cert.PEM, "1h", func(c *stack.Config) {
		c.Postgres = "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	})
	var sub created
	if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + "/ok", "event_types": []string{"order.*"}, "name": "Shop"}, &sub); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	link := s.portal(t, s.Key, map[string]any{})
	base := strings.Split(link.URL, "#")[0]
	b := newBrowser(t)
	b.do("open the portal link", chromedp.Navigate(link.URL))
	b.waitText("Shop", 20*time.Second)
	for _, page := range []string{"#/subscriptions/" + sub.ID + "/logs", "#/events", "#/overview", "#/deliveries/dlv_x"} {
		b.do("open "+page, chromedp.Navigate(base+page))
		b.waitText("The delivery history is unavailable right now", 30*time.Second)
		if n := eval[int](b, `document.querySelectorAll("main table").length`); n != 0 {
			t.Errorf("%s shows %d tables while the history is down", page, n)
		}
	}
	b.click("Try again")
	b.waitText("The delivery history is unavailable right now", 30*time.Second)
}
