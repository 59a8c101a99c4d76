package alert

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/hookline/hookline/pkg/record"
)

//go:embed templates
var templates embed.FS

var (
	textTmpl = texttemplate.Must(texttemplate.New("email.txt").Funcs(funcs).ParseFS(templates, "templates/email.txt"))
	// html/template escapes every value by its context (text, attribute,
	// URL): a subscription's name or an endpoint's error cannot add markup.
	htmlTmpl = htmltemplate.Must(htmltemplate.New("email.html").Funcs(funcs).ParseFS(templates, "templates/email.html"))
)

var funcs = map[string]any{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "unknown"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	// result is an attempt's status and error, without saying "HTTP 503"
	// twice when the error is only the status.
	"result": func(code int, err string) string {
		s := "no response"
		if code != 0 {
			s = fmt.Sprintf("HTTP %d", code)
		}
		if err != "" && err != s {
			s += ": " + err
		}
		return s
	},
}

// maxDigestItems is how many given-up deliveries a digest lists; the rest
// are counted.
const maxDigestItems = 50

// maxErrorLen bounds an endpoint's error text in an email.
const maxErrorLen = 300

// Renderer writes the subject and the two bodies of a notification.
type Renderer struct {
	// ConsoleURL is the console's base URL, e.g.
	// https://hooks.example.com/console/; the email links to the
	// subscription's Logs tab under it.
	ConsoleURL *url.URL
}

// content is what the templates see.
type content struct {
	Kind         string
	Title        string
	Intro        string
	Subscription string // the subscription's name, or its id
	ID           string
	Tenant       string
	Endpoint     string // the URL without query or credentials
	Failures     int64
	FailingSince time.Time
	RecoveredAt  time.Time
	LastStatus   int
	LastError    string
	LogsURL      string
	Items        []Item
	Total        int // given-up deliveries in the digest
	More         int // those not listed
	First, Last  time.Time
}

// Render writes j's email. sub is the subscription as the view holds it,
// nil when it is gone.
func (r *Renderer) Render(j *Job, sub *record.Subscription) (subject, text, html string, err error) {
	c := content{Kind: j.Kind, ID: j.SubscriptionID, Tenant: j.Tenant, Subscription: j.SubscriptionID, LogsURL: r.logsURL(j.SubscriptionID)}
	rawURL := ""
	if sub != nil {
		rawURL = sub.URL
		if sub.Name != "" {
			c.Subscription = sub.Name
		}
	}
	if a := j.Alert; a != nil {
		if a.URL != "" {
			rawURL = a.URL
		}
		c.Failures, c.FailingSince, c.LastStatus, c.LastError = a.ConsecutiveFailures, a.FailingSince, a.LastStatus, short(a.LastError)
		if a.RecoveredAt != nil {
			c.RecoveredAt = *a.RecoveredAt
		}
	}
	if n := len(j.Items); n > 0 {
		c.Items = slices.Clone(j.Items[:min(n, maxDigestItems)])
		for i := range c.Items {
			c.Items[i].LastError = short(c.Items[i].LastError)
		}
		c.Total, c.More = n, n-len(c.Items)
		c.First, c.Last = j.Items[0].At, j.Items[n-1].At
		if rawURL == "" {
			rawURL = j.Items[n-1].URL
		}
	}
	c.Endpoint = redactURL(rawURL)
	label := c.Subscription
	if sub == nil || sub.Name == "" {
		label = c.Endpoint
	}
	switch j.Kind {
	case KindFailing:
		c.Title = "Webhook endpoint failing"
		c.Intro = fmt.Sprintf("Deliveries to this endpoint failed %d times in a row. Hookline keeps retrying them.", c.Failures)
		subject = fmt.Sprintf("Webhook endpoint failing: %s (%d failures in a row)", label, c.Failures)
	case KindCritical:
		c.Title = "Webhook endpoint still failing"
		c.Intro = fmt.Sprintf("Deliveries to this endpoint have now failed %d times in a row. If it keeps failing, the subscription will be disabled.", c.Failures)
		subject = fmt.Sprintf("CRITICAL: webhook endpoint still failing: %s (%d failures in a row)", label, c.Failures)
	case KindDisabled:
		c.Title = "Webhook endpoint disabled"
		c.Intro = "This endpoint failed for too long without a single success, so its subscription was disabled: nothing more is sent to it until it is enabled again."
		subject = fmt.Sprintf("Webhook endpoint disabled: %s", label)
	case KindRecovered:
		c.Title = "Webhook endpoint recovered"
		c.Intro = fmt.Sprintf("This endpoint accepted a delivery again, after %d failures in a row.", c.Failures)
		subject = fmt.Sprintf("Webhook endpoint recovered: %s", label)
	case KindExhausted:
		n := len(j.Items)
		c.Title = "Webhook deliveries given up"
		noun := "deliveries were"
		if n == 1 {
			noun = "delivery was"
		}
		c.Intro = fmt.Sprintf("%d %s given up after their last attempt and moved to the dead-letter queue. They can be replayed once the endpoint works.", n, noun)
		subject = fmt.Sprintf("%d webhook %s given up: %s", n, strings.TrimSuffix(noun, " were"), label)
		if n == 1 {
			subject = fmt.Sprintf("1 webhook delivery given up: %s", label)
		}
	default:
		return "", "", "", fmt.Errorf("unknown kind %q", j.Kind)
	}
	subject = "[Hookline] " + subject
	var tb, hb bytes.Buffer
	if err := textTmpl.Execute(&tb, c); err != nil {
		return "", "", "", err
	}
	if err := htmlTmpl.Execute(&hb, c); err != nil {
		return "", "", "", err
	}
	return subject, tb.String(), hb.String(), nil
}

// logsURL links to the subscription's Logs tab in the console.
func (r *Renderer) logsURL(subID string) string {
	if r.ConsoleURL == nil {
		return ""
	}
	u := *r.ConsoleURL
	u.Fragment = "/subscriptions/" + subID + "/logs"
	u.RawFragment = "/subscriptions/" + url.PathEscape(subID) + "/logs"
	return u.String()
}

// redactURL drops what may be a credential from an endpoint's URL (user
// info, the query) before it goes into an email that may be forwarded.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unknown endpoint)"
	}
	redacted := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" {
		redacted += "?…"
	}
	return redacted
}

func short(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
