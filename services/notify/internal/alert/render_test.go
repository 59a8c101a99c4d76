package alert

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/record"
)

var (
	since     = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	recovered = since.Add(2 * time.Hour)
	console   = mustURL("https://hooks.example.com/console/")
)

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func alertJob(kind string, a health.EndpointAlert) *Job {
	return &Job{ID: "ntf_1", Kind: kind, Tenant: "acme", SubscriptionID: "sub_1", Alert: &Alert{Trigger: "evt_1", At: since, EndpointAlert: a}}
}

func TestRenderEachKind(t *testing.T) {
	sub := &record.Subscription{ID: "sub_1", Tenant: "acme", Name: "Shop orders", URL: "https://shop.example.com/hooks?token=secret"}
	failing := health.EndpointAlert{SubscriptionID: "sub_1", URL: sub.URL, ConsecutiveFailures: 5, FailingSince: since, LastStatus: 503, LastError: "503 Service Unavailable"}
	critical := failing
	critical.ConsecutiveFailures, critical.LastStatus, critical.LastError = 20, 0, "dial tcp: connection refused"
	rec := failing
	rec.ConsecutiveFailures, rec.RecoveredAt = 23, &recovered
	items := []Item{
		{Trigger: "evt_a", At: since, DeliveryExhausted: health.DeliveryExhausted{DeliveryID: "dlv_a", EventID: "evt_order1", EventType: "order.created", Attempts: 8, LastStatus: 500, LastError: "boom"}},
		{Trigger: "evt_b", At: since.Add(time.Minute), DeliveryExhausted: health.DeliveryExhausted{DeliveryID: "dlv_b", EventID: "evt_order2", EventType: "order.paid", Attempts: 1, LastStatus: 404}},
	}
	dup := failing
	dup.LastError = "HTTP 503"
	for _, tc := range []struct {
		name    string
		job     *Job
		subject string
		text    []string
	}{
		{"failing", alertJob(KindFailing, failing), "[Hookline] Webhook endpoint failing: Shop orders (5 failures in a row)",
			[]string{"failed 5 times in a row", "Failing since: 2026-03-01 09:30:00 UTC", "Last result:   HTTP 503: 503 Service Unavailable"}},
		{"critical", alertJob(KindCritical, critical), "[Hookline] CRITICAL: webhook endpoint still failing: Shop orders (20 failures in a row)",
			[]string{"20 times in a row", "will be disabled", "Last result:   no response: dial tcp: connection refused"}},
		{"an error that only repeats the status", alertJob(KindFailing, dup), "[Hookline] Webhook endpoint failing: Shop orders (5 failures in a row)",
			[]string{"Last result:   HTTP 503\n"}},
		{"disabled", alertJob(KindDisabled, failing), "[Hookline] Webhook endpoint disabled: Shop orders",
			[]string{"was disabled", "enabled again"}},
		{"recovered", alertJob(KindRecovered, rec), "[Hookline] Webhook endpoint recovered: Shop orders",
			[]string{"after 23 failures in a row", "Recovered at:  2026-03-01 11:30:00 UTC"}},
		{"digest", &Job{ID: "ntf_2", Kind: KindExhausted, Tenant: "acme", SubscriptionID: "sub_1", Items: items},
			"[Hookline] 2 webhook deliveries given up: Shop orders",
			[]string{"2 deliveries were given up", "delivery dlv_a (order.created, event evt_order1): 8 attempts, last HTTP 500: boom",
				"delivery dlv_b (order.paid, event evt_order2): 1 attempts, last HTTP 404", "between 2026-03-01 09:30:00 UTC and 2026-03-01 09:31:00 UTC"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Renderer{ConsoleURL: console}
			subject, text, html, err := r.Render(tc.job, sub)
			if err != nil {
				t.Fatal(err)
			}
			if subject != tc.subject {
				t.Errorf("subject %q, want %q", subject, tc.subject)
			}
			want := append(tc.text, "Subscription:  Shop orders (sub_1)", "Endpoint:      https://shop.example.com/hooks?…",
				"https://hooks.example.com/console/#/subscriptions/sub_1/logs")
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("text lacks %q:\n%s", w, text)
				}
			}
			for _, w := range []string{"Shop orders", `href="https://hooks.example.com/console/#/subscriptions/sub_1/logs"`, "https://shop.example.com/hooks?…"} {
				if !strings.Contains(html, w) {
					t.Errorf("html lacks %q:\n%s", w, html)
				}
			}
			if strings.Contains(text+html+subject, "token=secret") {
				t.Error("the endpoint's query string (a credential, often) is in the email")
			}
		})
	}
}

func TestRenderEscapesWhatTenantsWrite(t *testing.T) {
	sub := &record.Subscription{ID: "sub_x", Tenant: "acme", Name: `<script>alert(1)</script> & "quotes"`, URL: "https://x.example.com/"}
	j := alertJob(KindFailing, health.EndpointAlert{ConsecutiveFailures: 5, LastError: `<img src=x onerror=alert(1)>`, LastStatus: 500})
	j.SubscriptionID = `sub_x"><b>`
	_, _, html, err := (&Renderer{ConsoleURL: console}).Render(j, sub)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "<img", `"><b>`} {
		if strings.Contains(html, bad) {
			t.Errorf("html holds %q unescaped:\n%s", bad, html)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("the name was not escaped:\n%s", html)
	}
	if !strings.Contains(html, "#/subscriptions/sub_x%22%3E%3Cb%3E/logs") {
		t.Errorf("the link does not escape the id:\n%s", html)
	}
}

func TestRenderWithoutTheSubscription(t *testing.T) {
	j := alertJob(KindDisabled, health.EndpointAlert{URL: "https://user:pw@gone.example.com/path?x=1"})
	subject, text, _, err := (&Renderer{}).Render(j, nil)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "[Hookline] Webhook endpoint disabled: https://gone.example.com/path?…" {
		t.Errorf("subject %q", subject)
	}
	if strings.Contains(text, "pw") || strings.Contains(text, "console") {
		t.Errorf("text shows credentials or a console link without a console URL:\n%s", text)
	}
}

func TestRenderLongDigest(t *testing.T) {
	j := &Job{ID: "ntf_3", Kind: KindExhausted, Tenant: "acme", SubscriptionID: "sub_1"}
	for i := range maxDigestItems + 7 {
		j.Items = append(j.Items, Item{Trigger: fmt.Sprint(i), At: since.Add(time.Duration(i) * time.Second),
			DeliveryExhausted: health.DeliveryExhausted{DeliveryID: fmt.Sprintf("dlv_%d", i), URL: "https://a.example.com/", LastError: strings.Repeat("x", 1000)}})
	}
	subject, text, _, err := (&Renderer{}).Render(j, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(subject, "[Hookline] 57 webhook deliveries given up") {
		t.Errorf("subject %q", subject)
	}
	if !strings.Contains(text, "Given up:      57 (50 listed here)") {
		t.Errorf("the digest does not count what it leaves out:\n%.500s", text)
	}
	if strings.Count(text, "- delivery dlv_") != maxDigestItems || strings.Contains(text, strings.Repeat("x", maxErrorLen+1)) {
		t.Errorf("the digest is not bounded")
	}
	if len(j.Items[0].LastError) != 1000 {
		t.Error("Render changed the job it was given")
	}
}
