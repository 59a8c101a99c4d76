package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// The console's browser tests drive Debian's chromium headless through
// chromedp against the four services and the real Kafka and Redis.
//
//	HOOKLINE_CHROMIUM            the browser (default: chromium on PATH)
//	HOOKLINE_CONSOLE_SCREENSHOTS a folder: the main pages are saved there
//	                             (make console-screenshots: docs/screenshots)
//	HOOKLINE_TEST_ARTIFACTS      where a failing test leaves a screenshot and
//	                             the page's HTML (default: a new temp folder)

// chromium finds the browser; it fails under `make test`
// (HOOKLINE_REQUIRE_INFRA) and skips otherwise when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	name := os.Getenv("HOOKLINE_CHROMIUM")
	if name == "" {
		name = "chromium"
	}
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("HOOKLINE_REQUIRE_INFRA") != "" {
		t.Fatalf("%s not found: the console tests need Debian's chromium (make test installs it: deploy/scripts/chromium.sh)", name)
	}
	t.Skipf("%s not found: install Debian's chromium (deploy/scripts/chromium.sh) to run the console's browser tests", name)
	return ""
}

// browser is one headless chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU,
		// Without these, chromium reaches for Google's hosts, which this
		// machine's closed network refuses.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 860), // a laptop screen
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(b.saveArtifacts) // runs before the browser closes
	return b
}

// saveArtifacts leaves the page as it was when a test failed.
func (b *browser) saveArtifacts() {
	if !b.t.Failed() {
		return
	}
	dir := os.Getenv("HOOKLINE_TEST_ARTIFACTS")
	if dir == "" {
		d, err := os.MkdirTemp("", "hookline-console-artifacts-")
		if err != nil {
			b.t.Logf("no artifacts: %v", err)
			return
		}
		dir = d
	}
	_ = os.MkdirAll(dir, 0o755)
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name())
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
	html, herr := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if herr == nil {
		herr = os.WriteFile(filepath.Join(dir, name+".html"), []byte(html), 0o644)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	b.t.Logf("console test failed at %s: screenshot and page HTML in %s (%s.png, %s.html; errors: %v, %v)", loc, dir, name, name, err, herr)
}

// do runs actions, failing the test on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it holds.
func (b *browser) waitFor(what, predicate string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	// The console re-renders a view whole, so an element the predicate
	// reads may be missing for one poll: that is "not yet", not a failure.
	guarded := "(() => { try { return !!(" + predicate + "); } catch (e) { return false; } })()"
	for {
		ctx, cancel := context.WithTimeout(b.ctx, time.Until(deadline)+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](guarded, chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(50*time.Millisecond)))
		cancel()
		switch {
		case err == nil:
			return
		case navigating(err) && time.Now().Before(deadline):
			// The page was replaced while the poll ran in it (a link
			// whose hash starts the console anew): poll the new one.
			time.Sleep(50 * time.Millisecond)
		default:
			b.t.Fatalf("waiting for %s (%s): %v", what, predicate, err)
		}
	}
}

// navigating reports an evaluation lost to a navigation: its JavaScript
// context was destroyed before it answered.
func navigating(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context with specified id") || strings.Contains(msg, "Execution context was destroyed")
}

// waitText waits until the page's main text contains text.
func (b *browser) waitText(text string, timeout time.Duration) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("%q on the page", text), fmt.Sprintf("document.body.innerText.includes(%s)", jsString(text)), timeout)
}

// click clicks the button or link whose text is label.
func (b *browser) click(label string) {
	b.t.Helper()
	b.waitFor("a control labelled "+label, fmt.Sprintf(`[...document.querySelectorAll("button, a")].some((e) => e.textContent.trim() === %s && !e.disabled)`, jsString(label)), 10*time.Second)
	eval[bool](b, fmt.Sprintf(`(() => { const e = [...document.querySelectorAll("button, a")].find((e) => e.textContent.trim() === %s && !e.disabled); e.click(); return true; })()`, jsString(label)))
}

// typeInto types text into the element sel.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// press presses a key as a keyboard does: one keyDown carrying its text,
// then keyUp. (chromedp.KeyEvent sends the text as a separate char event,
// which a shortcut's preventDefault cannot stop: after "n" opens the form
// and focuses its URL field, that "n" would land in the field.)
func (b *browser) press(key string) {
	b.t.Helper()
	b.do("press "+key, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, k := range []input.DispatchKeyEventParams{
			{Type: input.DispatchKeyEventTypeKeyDown, Key: key, Text: key, UnmodifiedText: key},
			{Type: input.DispatchKeyEventTypeKeyUp, Key: key},
		} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, k); err != nil {
				return err
			}
		}
		return nil
	}))
}

// setValue replaces the value of the input sel, as select-all and typing
// would.
func (b *browser) setValue(sel, value string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s; e.dispatchEvent(new Event("input")); return true; })()`,
		jsString(sel), jsString(value)))
}

// choose picks a value of the select sel, as a person would.
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s; e.dispatchEvent(new Event("change")); return e.value === %s; })()`,
		jsString(sel), jsString(value), jsString(value)))
}

// screenshot saves the page as docs/screenshots/<name>.png when asked to.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("HOOKLINE_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	// From the top, without a passing toast, as a person first sees it.
	eval[bool](b, `(() => { window.scrollTo(0, 0); document.querySelectorAll(".toast").forEach((t) => t.remove()); return true; })()`)
	// Let the page paint after the scroll: a capture at once can show
	// tiles not yet drawn.
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// noScriptRan checks that nothing injected ran: every payload of the test
// sets window.__xss or the title if it ever executes.
func (b *browser) noScriptRan() {
	b.t.Helper()
	if v := eval[string](b, `String(window.__xss) + "|" + document.title`); strings.HasPrefix(v, "1|") || strings.HasPrefix(v, "2|") || strings.Contains(v, "pwned") {
		b.t.Fatalf("injected markup ran: %s", v)
	}
}

type portalSession struct {
	URL       string    `json:"url"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *pipeline) portal(t *testing.T, key string, body map[string]any) portalSession {
	t.Helper()
	raw, _ := json.Marshal(body)
	var p portalSession
	if code, _ := s.call(http.MethodPost, "/v1/portal/sessions", key, "application/json", raw, &p); code != http.StatusCreated || p.Token == "" {
		t.Fatalf("portal session: %d %+v", code, p)
	}
	return p
}

// TestConsoleInABrowser is a customer's afternoon in the portal: open the
// link, create an endpoint with an AND/OR condition, send a test, rotate
// the secret, disable and enable it, look at a dead letter whose event
// holds a script and replay it; an endpoint answering HTML and names with
// markup show as text; a foreign, tampered or expired link gets nowhere.
func TestConsoleInABrowser(t *testing.T) {
	chromium(t) // before the stack: fail or skip at once
	rc := newReceiver(t)
	var dlqCalls atomic.Int32
	rc.respond = func(r *http.Request, _ []byte, _ int) (int, http.Header) {
		switch r.URL.Path {
		case "/html":
			return http.StatusOK, http.Header{"Content-Type": {"text/html"}}
		case "/dlq":
			if dlqCalls.Add(1) == 1 {
				return http.StatusBadRequest, nil // permanent: dead-lettered at once
			}
		}
		return http.StatusNoContent, nil
	}
	rc.answer = func(r *http.Request) []byte {
		if r.URL.Path == "/html" {
			return []byte(`<h1 id="injected">hi</h1><script>document.title="pwned"</script><img src=x onerror="window.__xss=1">`)
		}
		return nil
	}
	s := startStack(t, rc.Cert.PEM, "1h")
	short := s.portal(t, s.Key, map[string]any{"expires_in": 60}) // expires while the test runs
	link := s.portal(t, s.Key, map[string]any{})
	b := newBrowser(t)

	// The portal link opens the console signed in, and leaves the
	// address bar without the token.
	b.do("open the portal link", chromedp.Navigate(link.URL))
	b.waitText("No endpoints yet", 20*time.Second)
	if loc := eval[string](b, "location.href"); strings.Contains(loc, link.Token) {
		t.Errorf("the token stays in the address bar: %s", loc)
	}
	if !strings.Contains(eval[string](b, "document.querySelector('header').innerText"), "acme") {
		t.Error("the header does not name the portal's tenant")
	}

	// Create an endpoint: (total >= 100 AND currency = EUR) OR vip = true.
	const markupName = `<img src=x onerror="window.__xss=1">Orders <b>EU</b>`
	b.press("n") // a new endpoint
	b.waitFor("the form", `!!document.querySelector("#subscription-form")`, 10*time.Second)
	b.typeInto(`[name=url]`, rc.URL+"/ok")
	b.typeInto(`[name=name]`, markupName)
	b.typeInto(`[name=event_types]`, "order.*")
	want := buildCondition(b)
	var preview map[string]any
	if err := json.Unmarshal([]byte(eval[string](b, `document.querySelector("#condition-preview").textContent`)), &preview); err != nil || !jsonEqual(preview, want) {
		t.Fatalf("the form shows the condition as %v (%v), want %v", preview, err, want)
	}
	b.screenshot("subscription-form")
	b.click("Create endpoint")
	b.waitText("Copy the signing secret now", 20*time.Second)
	secret := eval[string](b, `document.querySelector("#secret").textContent`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("the secret shown is %q", secret)
	}
	subID := eval[string](b, `location.hash.split("/")[2]`)
	if got := eval[string](b, `document.querySelector("main h1").textContent`); got != markupName {
		t.Errorf("the name with markup shows as %q, want it as text", got)
	}
	b.noScriptRan()
	var stored struct {
		Condition map[string]any `json:"condition"`
		Enabled   bool           `json:"enabled"`
	}
	s.call(http.MethodGet, "/v1/subscriptions/"+subID, s.Key, "", nil, &stored)
	if !jsonEqual(stored.Condition, want) {
		t.Errorf("the API stored the condition %v, want %v", stored.Condition, want)
	}

	// Send a test and see its outcome.
	b.click("Send test event")
	b.waitFor("the test's outcome", `!!document.querySelector("#test-result")`, 20*time.Second)
	if got := eval[string](b, `document.querySelector("#test-result").innerText`); !strings.Contains(got, "delivered") || !strings.Contains(got, "204") {
		t.Errorf("test outcome shows %q, want delivered 204", got)
	}
	b.screenshot("subscription-test")

	// Rotate: a new secret, shown once.
	b.click("Rotate secret")
	b.click("Rotate now")
	b.waitText("The signing secret was rotated", 20*time.Second)
	if rotated := eval[string](b, `document.querySelector("#secret").textContent`); !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Errorf("the rotated secret is %q (before: %q)", rotated, secret)
	}

	// Disable, then enable again.
	b.click("Disable")
	b.waitFor("the disabled state", `document.querySelector("#health").innerText.includes("Disabled")`, 20*time.Second)
	s.call(http.MethodGet, "/v1/subscriptions/"+subID, s.Key, "", nil, &stored)
	if stored.Enabled {
		t.Error("Disable left the subscription enabled")
	}
	b.click("Enable")
	b.waitFor("the enabled state", `[...document.querySelectorAll("button")].some((e) => e.textContent === "Disable")`, 20*time.Second)
	s.call(http.MethodGet, "/v1/subscriptions/"+subID, s.Key, "", nil, &stored)
	if !stored.Enabled {
		t.Error("Enable left the subscription disabled")
	}

	// Edit: a refused value is shown at its field; the condition built
	// earlier comes back into the builder and is kept.
	b.click("Edit")
	b.waitFor("the edit form", `!!document.querySelector("#subscription-form [name=timeout_ms]")`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll(".cond-field").length`); n != 3 {
		t.Errorf("the edit form's builder shows %d conditions, want the 3 saved", n)
	}
	b.setValue(`[name=timeout_ms]`, "500")
	b.click("Save changes")
	b.waitFor("the field error", `[...document.querySelectorAll(".fielderror")].some((e) => e.textContent.startsWith("timeout_ms"))`, 10*time.Second)
	if got := eval[string](b, `document.querySelector("[name=timeout_ms]").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("the refused field is not marked invalid (%q)", got)
	}
	b.setValue(`[name=timeout_ms]`, "5000")
	b.do("add a header", chromedp.Click(chromedp.CSS(`[data-field=headers] button.link`)))
	b.typeInto(`[data-field=headers] .row input[aria-label="headers name"]`, "X-Team")
	b.typeInto(`[data-field=headers] .row input[aria-label="headers value"]`, "billing")
	b.click("Save changes")
	b.waitFor("the endpoint page", `!!document.querySelector("#health")`, 20*time.Second)
	var edited struct {
		TimeoutMS int               `json:"timeout_ms"`
		Headers   map[string]string `json:"headers"`
		Condition map[string]any    `json:"condition"`
	}
	s.call(http.MethodGet, "/v1/subscriptions/"+subID, s.Key, "", nil, &edited)
	if edited.TimeoutMS != 5000 || edited.Headers["X-Team"] != "billing" || !jsonEqual(edited.Condition, want) {
		t.Errorf("after the edit the API has %+v", edited)
	}

	// Without the history (no HOOKLINE_POSTGRES_URL) the Logs tab, where
	// alert emails link, the events and the overview say so rather than
	// showing nothing.
	for _, page := range []string{"#/subscriptions/" + subID + "/logs", "#/events", "#/overview"} {
		b.do("open "+page, chromedp.Navigate(strings.Split(link.URL, "#")[0]+page))
		b.waitText("The delivery history is not enabled on this Hookline", 20*time.Second)
	}

	// An endpoint answering HTML: its answer shows as text.
	var htmlSub created
	if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + "/html", "event_types": []string{"misc.*"}, "name": "answers HTML"}, &htmlSub); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	b.do("open the HTML endpoint", chromedp.Navigate(strings.Split(link.URL, "#")[0]+"#/subscriptions/"+htmlSub.ID))
	b.click("Send test event")
	b.waitFor("the test's outcome", `!!document.querySelector("#test-response")`, 20*time.Second)
	if got := eval[string](b, `document.querySelector("#test-response").textContent`); !strings.Contains(got, `<script>document.title="pwned"</script>`) {
		t.Errorf("the endpoint's HTML answer shows as %q, want its text", got)
	}
	if n := eval[int](b, `document.querySelectorAll("#injected, main img").length`); n != 0 {
		t.Errorf("%d elements of the endpoint's answer were rendered as HTML", n)
	}
	b.noScriptRan()

	// A dead letter whose event holds a script; replay it.
	var dlqSub created
	if code := s.postJSON("/v1/subscriptions", map[string]any{"url": rc.URL + "/dlq", "event_types": []string{"invoice.*"}, "name": "billing"}, &dlqSub); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	time.Sleep(2 * time.Second) // the matcher and sender learn of it
	const scriptData = `<script>window.__xss=2</script>`
	var ev created
	if code := s.postJSON("/v1/events", map[string]any{"type": "invoice.failed", "subject": "inv_1", "data": map[string]any{"note": scriptData}}, &ev); code != http.StatusAccepted {
		t.Fatalf("post event: %d", code)
	}
	rc.waitFor(t, 30*time.Second, "the first /dlq attempt", func(reqs []*http.Request, _ [][]byte) bool { return dlqCalls.Load() >= 1 })
	base := strings.Split(link.URL, "#")[0]
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.do("open the dead letters", chromedp.Navigate(base+"#/dead-letters"), chromedp.Reload())
		b.waitFor("the dead letters page", `!!document.querySelector("main h1")`, 10*time.Second)
		if eval[bool](b, `!!document.querySelector("input.pick")`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead letter is not listed within 30s")
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.screenshot("dead-letters")
	b.do("open the dead letter", chromedp.Click(chromedp.CSS(`main table a.mono`)))
	b.waitFor("the dead letter's body", `!!document.querySelector("#dl-payload")`, 20*time.Second)
	if got := eval[string](b, `document.querySelector("#dl-payload").textContent`); !strings.Contains(got, scriptData) {
		t.Errorf("the dead letter's body shows as %q, want the script as text", got)
	}
	b.noScriptRan()
	b.screenshot("dead-letter")
	b.do("back to the list", chromedp.NavigateBack())
	b.waitFor("the list", `!!document.querySelector("input.pick")`, 10*time.Second)
	b.do("select the dead letter", chromedp.Click(chromedp.CSS(`input.pick`)))
	b.click("Replay selected")
	b.waitFor("the replay's answer", `!!document.querySelector("#replay-result")`, 30*time.Second)
	if got := eval[string](b, `document.querySelector("#replay-result").innerText`); !strings.Contains(got, "1 dead letter sent again") {
		t.Errorf("replay says %q", got)
	}
	rc.waitFor(t, 30*time.Second, "the replayed delivery", func(reqs []*http.Request, _ [][]byte) bool {
		var ids []string
		for _, r := range reqs {
			if r.URL.Path == "/dlq" {
				ids = append(ids, r.Header.Get("webhook-id"))
			}
		}
		return len(ids) == 2 && ids[0] == ids[1]
	})

	// The event type catalog, and the list of endpoints with their health.
	s.postJSON("/v1/event-types", map[string]any{"name": "order.created", "description": "an order was placed",
		"schema": map[string]any{"type": "object", "required": []string{"id"}}}, nil)
	b.do("open the catalog", chromedp.Navigate(base+"#/event-types"))
	b.waitText("an order was placed", 20*time.Second)
	b.screenshot("event-types")
	b.do("open the endpoints", chromedp.Navigate(base+"#/subscriptions"))
	b.waitText("billing", 20*time.Second)
	if got := eval[string](b, `document.querySelector("main table").innerText`); !strings.Contains(got, markupName) || !strings.Contains(got, "Healthy") {
		t.Errorf("the list shows %q", got)
	}
	b.noScriptRan()
	b.screenshot("subscriptions")

	// Another tenant's link sees none of this tenant's endpoints, even by id.
	foreign := s.portal(t, "other-"+s.Key, map[string]any{})
	b.do("open another tenant's link", chromedp.Navigate(foreign.URL))
	b.waitText("No endpoints yet", 20*time.Second)
	b.do("ask for this tenant's endpoint", chromedp.Navigate(strings.Split(foreign.URL, "#")[0]+"#/subscriptions/"+subID))
	b.waitText("no subscription "+subID, 20*time.Second)

	// A tampered link and an expired one are refused.
	tampered := strings.Replace(link.URL, "#portal=hlp_", "#portal=hlp_x", 1)
	b.do("open a tampered link", chromedp.Navigate("about:blank"), chromedp.Navigate(tampered))
	b.waitText("This link is not valid", 20*time.Second)
	if wait := time.Until(short.ExpiresAt) + time.Second; wait > 0 {
		time.Sleep(wait)
	}
	b.do("open an expired link", chromedp.Navigate("about:blank"), chromedp.Navigate(short.URL))
	b.waitText("This link has expired", 20*time.Second)
	b.screenshot("portal-expired")

	// An operator signs in with the API key; a wrong key is refused.
	b.do("open the console afresh", chromedp.Navigate("about:blank"), chromedp.Navigate(base))
	b.waitFor("the sign-in form", `!!document.querySelector("#apikey")`, 20*time.Second)
	b.screenshot("sign-in")
	b.typeInto("#apikey", "not-a-key")
	b.click("Sign in")
	b.waitText("send an API key", 20*time.Second)
	b.typeInto("#apikey", s.Key)
	b.click("Sign in")
	b.waitText("billing", 20*time.Second)
	if got := eval[string](b, `document.querySelector("header").innerText`); !strings.Contains(got, "Sign out") {
		t.Errorf("signed in with a key, the header shows %q", got)
	}
}

// buildCondition fills the endpoint form's condition builder with
// (total >= 100 AND currency = EUR) OR vip = true, and returns the
// condition the API should store.
func buildCondition(b *browser) map[string]any {
	b.t.Helper()
	b.click("+ Add a condition")
	b.typeInto(`.group[data-group="0"] .row:nth-child(2) .cond-field`, "data.total")
	b.choose(`.group[data-group="0"] .row:nth-child(2) .cond-op`, "gte")
	b.typeInto(`.group[data-group="0"] .row:nth-child(2) .cond-value`, "100")
	b.click("+ AND condition")
	b.typeInto(`.group[data-group="0"] .row:nth-child(3) .cond-field`, "data.currency")
	b.typeInto(`.group[data-group="0"] .row:nth-child(3) .cond-value`, "EUR")
	b.click("+ OR group")
	b.typeInto(`.group[data-group="1"] .cond-field`, "data.vip")
	b.typeInto(`.group[data-group="1"] .cond-value`, "true")
	return map[string]any{"any": []any{
		map[string]any{"all": []any{
			map[string]any{"field": "data.total", "op": "gte", "value": 100.0},
			map[string]any{"field": "data.currency", "op": "eq", "value": "EUR"}}},
		map[string]any{"all": []any{map[string]any{"field": "data.vip", "op": "eq", "value": true}}},
	}}
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
