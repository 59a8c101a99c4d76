package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
)

// TestCreateValidation sends create bodies through the HTTP handler. A case
// with a field expects 400 naming that field (nothing reaches Kafka); a
// case without one must pass validation, checked on apply directly since a
// valid create would write to Kafka.
func TestCreateValidation(t *testing.T) {
	s := offlineServer(t)
	h := s.Handler()
	long := func(n int) string { return strings.Repeat("a", n) }
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	const leaf = `{"field":"data.status","op":"eq","value":"paid"}`
	tests := []struct {
		name     string
		override string // JSON object merged into a valid body
		field    string // "" for a valid body
	}{
		{"minimal", ``, ""},

		// url
		{"url required", `{"url":null}`, "url"},
		{"url https", `{"url":"https://hooks.example.com:8443/a?b=c"}`, ""},
		{"url http refused", `{"url":"http://example.com/hook"}`, "url"},
		{"url http for allowlisted host", `{"url":"http://allowed.test/hook"}`, ""},
		{"url http for allowlisted IP", `{"url":"http://127.0.0.1:9000/hook"}`, ""},
		{"url other scheme", `{"url":"ftp://example.com/hook"}`, "url"},
		{"url relative", `{"url":"/hook"}`, "url"},
		{"url without host", `{"url":"https://:443/hook"}`, "url"},
		{"url opaque", `{"url":"https:example.com"}`, "url"},
		{"url with credentials", `{"url":"https://user:pw@example.com/hook"}`, "url"},
		{"url with user only", `{"url":"https://user@example.com/hook"}`, "url"},
		{"url with fragment", `{"url":"https://example.com/hook#x"}`, "url"},
		{"url port 0", `{"url":"https://example.com:0/hook"}`, "url"},
		{"url port too large", `{"url":"https://example.com:99999/hook"}`, "url"},
		{"url port leading zero", `{"url":"https://example.com:0443/hook"}`, "url"},
		{"url port 65535", `{"url":"https://example.com:65535/hook"}`, ""},
		{"url empty port", `{"url":"https://example.com:/hook"}`, ""},
		{"route url port 0", `{"routes":[{"condition":` + leaf + `,"url":"https://example.com:0/r"}]}`, "routes[0].url"},
		{"route url template port too large", `{"allowed_hosts":["example.com"],"routes":[{"condition":` + leaf + `,"url":"https://example.com:70000/{{data.x}}"}]}`, "routes[0].url"},
		{"url too long", `{"url":"https://example.com/` + long(2048) + `"}`, "url"},
		{"url public IP literal", `{"url":"https://93.184.215.14/hook"}`, ""},
		{"url loopback literal", `{"url":"https://127.0.0.2/hook"}`, "url"},
		{"url private literal", `{"url":"https://10.1.2.3/hook"}`, "url"},
		{"url CGNAT literal", `{"url":"https://100.64.0.1/hook"}`, "url"},
		{"url metadata literal", `{"url":"https://169.254.169.254/latest/meta-data"}`, "url"},
		{"url IPv6 loopback", `{"url":"https://[::1]/hook"}`, "url"},
		{"url IPv6 unique local", `{"url":"https://[fd00:ec2::254]/hook"}`, "url"},
		{"url IPv4-mapped private", `{"url":"https://[::ffff:10.0.0.1]/hook"}`, "url"},
		{"url unspecified", `{"url":"https://0.0.0.0/hook"}`, "url"},
		{"url localhost", `{"url":"https://localhost/hook"}`, "url"},
		{"url localhost in capitals with dot", `{"url":"https://LOCALHOST./hook"}`, "url"},
		{"url .internal name", `{"url":"https://metadata.google.internal/hook"}`, "url"},
		{"url decimal IP", `{"url":"https://2130706433/hook"}`, "url"},
		{"url short IP", `{"url":"https://127.1/hook"}`, "url"},
		{"url hex IP", `{"url":"https://0x7f.0.0.1/hook"}`, "url"},
		{"url not a string", `{"url":5}`, "url"},

		// event_types
		{"event_types required", `{"event_types":null}`, "event_types"},
		{"event_types empty", `{"event_types":[]}`, "event_types"},
		{"event_types patterns", `{"event_types":["order.created","order.*","*","a.*.c","user_v2.sign-up"]}`, ""},
		{"event_types space", `{"event_types":["order created"]}`, "event_types[0]"},
		{"event_types partial wildcard", `{"event_types":["order.*","order.cr*"]}`, "event_types[1]"},
		{"event_types empty segment", `{"event_types":["order..created"]}`, "event_types[0]"},
		{"event_types trailing dot", `{"event_types":["order."]}`, "event_types[0]"},
		{"event_types empty string", `{"event_types":[""]}`, "event_types[0]"},
		{"event_types too long", `{"event_types":["` + long(129) + `"]}`, "event_types[0]"},
		{"event_types too many", `{"event_types":[` + many(101, func(i int) string { return fmt.Sprintf(`"t%d"`, i) }) + `]}`, "event_types"},
		{"event_types not a list", `{"event_types":"order.*"}`, "event_types"},

		// text
		{"name at bound", `{"name":"` + long(512) + `"}`, ""},
		{"name too long", `{"name":"` + long(513) + `"}`, "name"},
		{"description too long", `{"description":"` + long(2049) + `"}`, "description"},
		{"payload changed", `{"payload":"changed"}`, ""},
		{"payload unknown", `{"payload":"diff"}`, "payload"},

		// headers
		{"headers valid", `{"headers":{"X-Team":"payments","X-Empty":""}}`, ""},
		{"headers authorization", `{"headers":{"Authorization":"Bearer x"}}`, "headers.Authorization"},
		{"headers signature", `{"headers":{"webhook-signature":"v1,x"}}`, "headers.webhook-signature"},
		{"headers webhook prefix", `{"headers":{"Webhook-Custom":"x"}}`, "headers.Webhook-Custom"},
		{"headers github signature", `{"headers":{"X-Hub-Signature-256":"x"}}`, "headers.X-Hub-Signature-256"},
		{"headers traceparent", `{"headers":{"traceparent":"x"}}`, "headers.traceparent"},
		{"headers hop-by-hop connection", `{"headers":{"Connection":"close"}}`, "headers.Connection"},
		{"headers hop-by-hop transfer-encoding", `{"headers":{"Transfer-Encoding":"chunked"}}`, "headers.Transfer-Encoding"},
		{"headers hop-by-hop te", `{"headers":{"TE":"trailers"}}`, "headers.TE"},
		{"headers hop-by-hop upgrade", `{"headers":{"Upgrade":"h2c"}}`, "headers.Upgrade"},
		{"headers host", `{"headers":{"Host":"evil.test"}}`, "headers.Host"},
		{"headers invalid name", `{"headers":{"Bad Header":"x"}}`, "headers.Bad Header"},
		{"headers empty name", `{"headers":{"":"x"}}`, "headers."},
		{"headers control in value", `{"headers":{"X-A":"a\nb"}}`, "headers.X-A"},
		{"headers value too long", `{"headers":{"X-A":"` + long(4097) + `"}}`, "headers.X-A"},
		{"headers repeated in another case", `{"headers":{"X-A":"1","x-a":"2"}}`, "headers.x-a"},
		{"headers repeated with underscore", `{"headers":{"X-A":"1","X_A":"2"}}`, "headers.X_A"},
		{"headers webhook id with underscore", `{"headers":{"Webhook_Id":"dlv_forged"}}`, "headers.Webhook_Id"},
		{"headers webhook signature with underscore", `{"headers":{"Webhook_Signature":"v1,x"}}`, "headers.Webhook_Signature"},
		{"headers github signature with underscore", `{"headers":{"X-Hub-Signature_256":"sha256=x"}}`, "headers.X-Hub-Signature_256"},
		{"headers github sha1 signature", `{"headers":{"X-Hub-Signature":"sha1=x"}}`, "headers.X-Hub-Signature"},
		{"headers content type with underscore", `{"headers":{"Content_Type":"text/plain"}}`, "headers.Content_Type"},
		{"headers authorization with underscore", `{"headers":{"AUTHORIZATION":"x","authorization_":"y"}}`, "headers.AUTHORIZATION"},
		{"headers user agent with underscore", `{"headers":{"user_agent":"x"}}`, "headers.user_agent"},
		{"headers too many", `{"headers":{` + many(33, func(i int) string { return fmt.Sprintf(`"X-H%d":"v"`, i) }) + `}}`, "headers"},

		// auth
		{"auth bearer", `{"auth":{"type":"bearer","token":"t0k3n"}}`, ""},
		{"auth basic", `{"auth":{"type":"basic","username":"u","password":"p"}}`, ""},
		{"auth basic empty password", `{"auth":{"type":"basic","username":"u","password":""}}`, ""},
		{"auth null", `{"auth":null}`, ""},
		{"auth bearer without token", `{"auth":{"type":"bearer"}}`, "auth.token"},
		{"auth bearer empty token", `{"auth":{"type":"bearer","token":""}}`, "auth.token"},
		{"auth bearer token with newline", `{"auth":{"type":"bearer","token":"a\nb"}}`, "auth.token"},
		{"auth bearer token too long", `{"auth":{"type":"bearer","token":"` + long(4097) + `"}}`, "auth.token"},
		{"auth bearer with username", `{"auth":{"type":"bearer","token":"t","username":"u"}}`, "auth.type"},
		{"auth basic without username", `{"auth":{"type":"basic","password":"p"}}`, "auth.username"},
		{"auth basic username with colon", `{"auth":{"type":"basic","username":"a:b","password":"p"}}`, "auth.username"},
		{"auth basic without password", `{"auth":{"type":"basic","username":"u"}}`, "auth.password"},
		{"auth basic with token", `{"auth":{"type":"basic","username":"u","password":"p","token":"t"}}`, "auth.token"},
		{"auth without type", `{"auth":{"token":"t"}}`, "auth.type"},
		{"auth unknown type", `{"auth":{"type":"digest","token":"t"}}`, "auth.type"},
		{"auth unknown member", `{"auth":{"type":"bearer","token":"t","scope":"x"}}`, "auth.scope"},
		{"auth not an object", `{"auth":"t0k3n"}`, "auth"},

		// numbers
		{"rate limit bounds", `{"rate_limit_per_second":10000}`, ""},
		{"rate limit unlimited", `{"rate_limit_per_second":0}`, ""},
		{"rate limit negative", `{"rate_limit_per_second":-1}`, "rate_limit_per_second"},
		{"rate limit too high", `{"rate_limit_per_second":10001}`, "rate_limit_per_second"},
		{"rate limit beyond int32", `{"rate_limit_per_second":3000000000}`, "rate_limit_per_second"},
		{"timeout bounds", `{"timeout_ms":1000}`, ""},
		{"timeout upper bound", `{"timeout_ms":60000}`, ""},
		{"timeout too short", `{"timeout_ms":999}`, "timeout_ms"},
		{"timeout too long", `{"timeout_ms":60001}`, "timeout_ms"},
		{"timeout fractional", `{"timeout_ms":1500.5}`, "timeout_ms"},
		{"max attempts 1", `{"max_attempts":1}`, ""},
		{"max attempts 20", `{"max_attempts":20}`, ""},
		{"max attempts 0", `{"max_attempts":0}`, "max_attempts"},
		{"max attempts 21", `{"max_attempts":21}`, "max_attempts"},
		{"max in flight adaptive", `{"max_in_flight":0}`, ""},
		{"max in flight 256", `{"max_in_flight":256}`, ""},
		{"max in flight negative", `{"max_in_flight":-1}`, "max_in_flight"},
		{"max in flight too many", `{"max_in_flight":257}`, "max_in_flight"},
		{"ordered not bool", `{"ordered":"yes"}`, "ordered"},

		// condition and expression
		{"condition", `{"condition":{"all":[` + leaf + `,{"not":{"field":"data.test","op":"exists"}}]}}`, ""},
		{"condition null", `{"condition":null}`, ""},
		{"condition bad op at root", `{"condition":{"field":"data.x","op":"bogus","value":1}}`, "condition.op"},
		{"condition bad op nested", `{"condition":{"all":[` + leaf + `,{"field":"data.y","op":"nope","value":1}]}}`, "condition.all[1].op"},
		{"condition bad regex", `{"condition":{"any":[{"field":"data.y","op":"regex","value":"("}]}}`, "condition.any[0].value"},
		{"condition not an object", `{"condition":"data.x == 1"}`, "condition"},
		{"expression", `{"expression":"event.data.amount > 100"}`, ""},
		{"expression syntax", `{"expression":"event.data.amount >"}`, "expression"},
		{"expression not bool", `{"expression":"1 + 2"}`, "expression"},

		// routes and allowed hosts
		{"route", `{"routes":[{"condition":` + leaf + `,"url":"https://eu.example.com/hook"}]}`, ""},
		{"route condition nested error", `{"routes":[{"condition":{"all":[` + leaf + `,{"field":"data.y","op":"zz"}]},"url":"https://eu.example.com/h"}]}`, "routes[0].condition.all[1].op"},
		{"route second condition missing", `{"routes":[{"condition":` + leaf + `,"url":"https://a.example.com/h"},{"url":"https://b.example.com/h"}]}`, "routes[1].condition"},
		{"route url http", `{"routes":[{"condition":` + leaf + `,"url":"http://eu.example.com/hook"}]}`, "routes[0].url"},
		{"route url private", `{"routes":[{"condition":` + leaf + `,"url":"https://192.168.1.1/hook"}]}`, "routes[0].url"},
		{"route template without allowed hosts", `{"routes":[{"condition":` + leaf + `,"url":"{{data.callback}}"}]}`, "routes[0].url"},
		{"route template whole url", `{"allowed_hosts":["hooks.example.com"],"routes":[{"condition":` + leaf + `,"url":"{{data.callback}}"}]}`, ""},
		{"route template in path", `{"allowed_hosts":["hooks.example.com"],"routes":[{"condition":` + leaf + `,"url":"https://hooks.example.com/{{data.shop}}/in"}]}`, ""},
		{"route template subdomain", `{"allowed_hosts":["*.example.com"],"routes":[{"condition":` + leaf + `,"url":"https://{{data.shop}}.example.com/in"}]}`, ""},
		{"route template host not allowed", `{"allowed_hosts":["hooks.example.com"],"routes":[{"condition":` + leaf + `,"url":"https://other.example.com/{{data.shop}}"}]}`, "routes[0].url"},
		{"route template unclosed", `{"allowed_hosts":["hooks.example.com"],"routes":[{"condition":` + leaf + `,"url":"https://hooks.example.com/{{data.shop"}]}`, "routes[0].url"},
		{"route url not a string", `{"routes":[{"condition":` + leaf + `,"url":7}]}`, "routes[0].url"},
		{"route not an object", `{"routes":[{"condition":` + leaf + `,"url":"https://a.example.com/h"},"x"]}`, "routes[1]"},
		{"route unknown member", `{"routes":[{"condition":` + leaf + `,"url":"https://a.example.com/h","weight":1}]}`, "routes[0].weight"},
		{"routes too many", `{"routes":[` + many(21, func(int) string { return `{"condition":` + leaf + `,"url":"https://a.example.com/h"}` }) + `]}`, "routes"},
		{"allowed hosts", `{"allowed_hosts":["hooks.example.com","*.example.org"]}`, ""},
		{"allowed hosts URL", `{"allowed_hosts":["ok.example.com","https://x.example.com"]}`, "allowed_hosts[1]"},
		{"allowed hosts port", `{"allowed_hosts":["x.example.com:443"]}`, "allowed_hosts[0]"},
		{"allowed hosts too many", `{"allowed_hosts":[` + many(21, func(i int) string { return fmt.Sprintf(`"h%d.example.com"`, i) }) + `]}`, "allowed_hosts"},

		// batch
		{"batch", `{"batch":{"max_events":10,"max_wait_ms":500}}`, ""},
		{"batch bounds", `{"batch":{"max_events":500,"max_wait_ms":60000}}`, ""},
		{"batch null", `{"batch":null}`, ""},
		{"batch no events", `{"batch":{"max_wait_ms":500}}`, "batch.max_events"},
		{"batch too many events", `{"batch":{"max_events":501}}`, "batch.max_events"},
		{"batch negative wait", `{"batch":{"max_events":5,"max_wait_ms":-1}}`, "batch.max_wait_ms"},
		{"batch wait too long", `{"batch":{"max_events":5,"max_wait_ms":60001}}`, "batch.max_wait_ms"},
		{"batch unknown member", `{"batch":{"max_events":5,"size":1}}`, "batch.size"},

		// derive
		{"derive", `{"derive":[{"field":"data.total_eur","expression":"event.data.total_cents / 100.0"},` +
			`{"field":"data.customer.name","expression":"event.data.customer.?name.orValue(\"unknown\")","default":"unknown"},` +
			`{"field":"data.note","expression":"event.data.note","default":null}]}`, ""},
		{"derive empty", `{"derive":[]}`, ""},
		{"derive at bound", `{"derive":[` + many(20, func(i int) string { return fmt.Sprintf(`{"field":"data.f%d","expression":"1.0"}`, i) }) + `]}`, ""},
		{"derive too many", `{"derive":[` + many(21, func(i int) string { return fmt.Sprintf(`{"field":"data.f%d","expression":"1.0"}`, i) }) + `]}`, "derive"},
		{"derive field not under data", `{"derive":[{"field":"total_eur","expression":"1.0"}]}`, "derive[0].field"},
		{"derive field on the envelope", `{"derive":[{"field":"data.a","expression":"1.0"},{"field":"id","expression":"1.0"}]}`, "derive[1].field"},
		{"derive field array element", `{"derive":[{"field":"data.items[0].x","expression":"1.0"}]}`, "derive[0].field"},
		{"derive field missing", `{"derive":[{"expression":"1.0"}]}`, "derive[0].field"},
		{"derive expression missing", `{"derive":[{"field":"data.a"}]}`, "derive[0].expression"},
		{"derive expression syntax", `{"derive":[{"field":"data.a","expression":"1.0"},{"field":"data.b","expression":"event.data."}]}`, "derive[1].expression"},
		{"derive expression undeclared", `{"derive":[{"field":"data.a","expression":"data.total / 100.0"}]}`, "derive[0].expression"},
		{"derive expression a type", `{"derive":[{"field":"data.a","expression":"type(event)"}]}`, "derive[0].expression"},
		{"derive expression too long", `{"derive":[{"field":"data.a","expression":"` + long(4097) + `"}]}`, "derive[0].expression"},
		{"derive default too large", `{"derive":[{"field":"data.a","expression":"1.0","default":"` + long(4096) + `"}]}`, "derive[0].default"},
		{"derive unknown member", `{"derive":[{"field":"data.a","expression":"1.0","fallback":0}]}`, "derive[0].fallback"},
		{"derive not an object", `{"derive":["data.a"]}`, "derive[0]"},
		{"derive not a list", `{"derive":{"field":"data.a","expression":"1.0"}}`, "derive"},

		// metadata
		{"metadata", `{"metadata":{"team":"payments"}}`, ""},
		{"metadata empty key", `{"metadata":{"":"x"}}`, "metadata."},
		{"metadata key too long", `{"metadata":{"` + long(129) + `":"x"}}`, "metadata." + long(129)},
		{"metadata value too long", `{"metadata":{"k":"` + long(513) + `"}}`, "metadata.k"},
		{"metadata too many", `{"metadata":{` + many(33, func(i int) string { return fmt.Sprintf(`"k%d":"v"`, i) }) + `}}`, "metadata"},
		{"metadata not strings", `{"metadata":{"k":1}}`, "metadata"},
		{"metadata too large as JSON", `{"metadata":{` + many(32, func(i int) string { return fmt.Sprintf(`"k%d":"%s"`, i, strings.Repeat(`\u0001`, 100)) }) + `}}`, "metadata"},
		{"metadata largest as text", `{"metadata":{` + many(16, func(i int) string { return fmt.Sprintf(`"k%d":"%s"`, i, long(512)) }) + `}}`, ""},

		// nesting
		{"condition nested too deep", `{"condition":{"all":[` + strings.Repeat(`{"not":`, 130) + leaf + strings.Repeat("}", 130) + `]}}`, "condition.all[0]"},
		{"route condition nested too deep", `{"routes":[{"url":"https://example.com/r","condition":` + strings.Repeat("[", 130) + strings.Repeat("]", 130) + `}]}`, "routes[0].condition"},

		// alert_emails
		{"alert_emails", `{"alert_emails":["oncall@example.com","ops+hooks@mail.example.co.uk"]}`, ""},
		{"alert_emails empty", `{"alert_emails":[]}`, ""},
		{"alert_emails second invalid", `{"alert_emails":["oncall@example.com","not-an-address"]}`, "alert_emails[1]"},
		{"alert_emails with a name", `{"alert_emails":["Oncall <oncall@example.com>"]}`, "alert_emails[0]"},
		{"alert_emails header injection CRLF", `{"alert_emails":["oncall@example.com\r\nBcc: evil@example.net"]}`, "alert_emails[0]"},
		{"alert_emails header injection LF", `{"alert_emails":["ok@example.com","oncall@example.com\nBcc: evil@example.net"]}`, "alert_emails[1]"},
		{"alert_emails two in one", `{"alert_emails":["a@example.com,b@example.com"]}`, "alert_emails[0]"},
		{"alert_emails repeated in another case", `{"alert_emails":["oncall@example.com","OnCall@Example.com"]}`, "alert_emails[1]"},
		{"alert_emails no domain", `{"alert_emails":["oncall@localhost"]}`, "alert_emails[0]"},
		{"alert_emails too many", `{"alert_emails":[` + many(11, func(i int) string { return fmt.Sprintf(`"a%d@example.com"`, i) }) + `]}`, "alert_emails"},
		{"alert_emails not strings", `{"alert_emails":[1]}`, "alert_emails"},
		{"alert_emails not a list", `{"alert_emails":"oncall@example.com"}`, "alert_emails"},

		// secret
		{"secret", `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, ""},
		{"secret without prefix", `{"secret":"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "secret"},
		{"secret key too short", `{"secret":"whsec_c2hvcnQ="}`, "secret"},
		{"secret not base64", `{"secret":"whsec_not*base64*at*all*not*base64*at*all"}`, "secret"},
		{"secret empty", `{"secret":"whsec_"}`, "secret"},

		// body
		{"unknown field", `{"colour":"blue"}`, "colour"},
		{"read-only field on create", `{"id":"sub_mine"}`, "id"},
		{"enabled false", `{"enabled":false,"ordered":true}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := subBody(t, tc.override)
			if tc.field == "" {
				var in subscriptionInput
				if errs := decodeStrict([]byte(body), &in); errs != nil {
					t.Fatalf("decode: %+v", errs)
				}
				if errs := s.apply(&in, newSubscription("sub_test", "acme", testNow), true); len(errs) > 0 {
					t.Fatalf("valid body refused: %+v", errs)
				}
				return
			}
			rec := do(t, h, http.MethodPost, "/v1/subscriptions", "key-acme", body)
			p := problemOf(t, http.StatusBadRequest, rec.Header(), rec.Body.Bytes())
			if !hasField(p.Errors, tc.field) {
				t.Fatalf("errors name %q, want %q: %+v", fieldsOf(p.Errors), tc.field, p.Errors)
			}
		})
	}
}

// TestValidationReportsEveryField: one answer lists every problem, so a
// client fixes them in one round trip.
func TestValidationReportsEveryField(t *testing.T) {
	s := offlineServer(t)
	body := `{"url":"http://example.com","event_types":["a b"],"timeout_ms":1,"max_attempts":99,
		"headers":{"Host":"x"},"batch":{"max_events":0},"secret":"nope",
		"derive":[{"field":"data.ok","expression":"1.0"},{"field":"x","expression":"event.","default":"` + strings.Repeat("d", 4096) + `"}]}`
	rec := do(t, s.Handler(), http.MethodPost, "/v1/subscriptions", "key-acme", body)
	p := problemOf(t, http.StatusBadRequest, rec.Header(), rec.Body.Bytes())
	want := []string{"url", "event_types[0]", "timeout_ms", "max_attempts", "headers.Host", "batch.max_events", "secret",
		"derive[1].field", "derive[1].expression", "derive[1].default"}
	for _, f := range want {
		if !hasField(p.Errors, f) {
			t.Errorf("missing %q in %q", f, fieldsOf(p.Errors))
		}
	}
	if len(p.Errors) != len(want) {
		t.Errorf("got %d errors %q, want %d", len(p.Errors), fieldsOf(p.Errors), len(want))
	}
	if p.Instance != "/v1/subscriptions" {
		t.Errorf("instance %q", p.Instance)
	}
}

// TestPatchValidation covers what differs on a patch: nothing is required,
// the secret cannot be set, and kept fields are checked against new ones.
func TestPatchValidation(t *testing.T) {
	s := offlineServer(t)
	stored := func() *record.Subscription {
		sub := newSubscription("sub_1", "acme", testNow)
		sub.URL, sub.EventTypes = "https://example.com/hook", []string{"a"}
		sub.AllowedHosts = []string{"hooks.example.com"}
		sub.Routes = []record.Route{{Condition: `{"field":"data.x","op":"exists"}`, URL: "https://hooks.example.com/{{data.shop}}"}}
		sub.Auth = &record.Auth{Type: "basic", Username: "u", SealedCredential: s.Box.Seal([]byte("pw"), []byte("sub_1"))}
		cond := `{"field":"data.x","op":"exists"}`
		sub.Condition, sub.Batch = &cond, &record.Batch{MaxEvents: 5}
		sub.Derive = []record.Derive{{Field: "data.y", Expression: "event.data.x"}}
		return sub
	}
	tests := []struct {
		name  string
		patch string
		field string
		check func(t *testing.T, before, after *record.Subscription)
	}{
		{"empty patch", `{}`, "", func(t *testing.T, before, after *record.Subscription) {
			if after.URL != before.URL || len(after.Routes) != 1 || after.Auth == nil || after.Condition == nil || after.Batch == nil {
				t.Errorf("empty patch changed %+v", after)
			}
		}},
		{"name only", `{"name":"n"}`, "", func(t *testing.T, before, after *record.Subscription) {
			if after.Name != "n" || after.URL != before.URL || after.EventTypes[0] != "a" {
				t.Errorf("after %+v", after)
			}
		}},
		{"secret refused", `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "secret", nil},
		{"url checked", `{"url":"http://example.com"}`, "url", nil},
		{"event types checked", `{"event_types":[]}`, "event_types", nil},
		{"allowed hosts dropped under templated route", `{"allowed_hosts":[]}`, "allowed_hosts", nil},
		{"allowed hosts changed away from route host", `{"allowed_hosts":["other.example.com"]}`, "allowed_hosts", nil},
		{"allowed hosts and routes together", `{"allowed_hosts":[],"routes":[]}`, "", func(t *testing.T, _, after *record.Subscription) {
			if len(after.Routes) != 0 || len(after.AllowedHosts) != 0 {
				t.Errorf("after %+v", after)
			}
		}},
		{"condition cleared by null", `{"condition":null}`, "", func(t *testing.T, _, after *record.Subscription) {
			if after.Condition != nil || after.Batch == nil || after.Auth == nil {
				t.Errorf("condition %v batch %v auth %v", after.Condition, after.Batch, after.Auth)
			}
		}},
		{"batch cleared by null", `{"batch":null}`, "", func(t *testing.T, _, after *record.Subscription) {
			if after.Batch != nil || after.Condition == nil {
				t.Errorf("batch %v condition %v", after.Batch, after.Condition)
			}
		}},
		{"condition replaced", `{"condition":{"field":"data.y","op":"eq","value":2}}`, "", func(t *testing.T, _, after *record.Subscription) {
			if after.Condition == nil || !strings.Contains(*after.Condition, "data.y") {
				t.Errorf("condition %v", after.Condition)
			}
		}},
		{"auth username kept password", `{"auth":{"type":"basic","username":"v"}}`, "", func(t *testing.T, before, after *record.Subscription) {
			if after.Auth == nil || after.Auth.Username != "v" || string(after.Auth.SealedCredential) != string(before.Auth.SealedCredential) {
				t.Errorf("auth %+v", after.Auth)
			}
		}},
		{"auth type change needs credential", `{"auth":{"type":"bearer"}}`, "auth.token", nil},
		{"auth removed by null", `{"auth":null}`, "", func(t *testing.T, _, after *record.Subscription) {
			if after.Auth != nil {
				t.Errorf("auth %+v", after.Auth)
			}
		}},
		{"derive replaced, default compacted", `{"derive":[{"field":"data.a","expression":"1.0","default":{ "x" : [1, 2] }},{"field":"data.b","expression":"2.0","default":null}]}`, "",
			func(t *testing.T, before, after *record.Subscription) {
				want := []record.Derive{
					{Field: "data.a", Expression: "1.0", DefaultJSON: new(`{"x":[1,2]}`)},
					{Field: "data.b", Expression: "2.0", DefaultJSON: new(`null`)},
				}
				if !reflect.DeepEqual(after.Derive, want) || len(before.Derive) != 1 {
					t.Errorf("derive %+v, want %+v; before %+v", after.Derive, want, before.Derive)
				}
			}},
		{"derive cleared by an empty list", `{"derive":[]}`, "", func(t *testing.T, _, after *record.Subscription) {
			if after.Derive == nil || len(after.Derive) != 0 {
				t.Errorf("derive %#v, want an empty list", after.Derive)
			}
		}},
		{"derive kept when left out", `{"name":"n"}`, "", func(t *testing.T, before, after *record.Subscription) {
			if !reflect.DeepEqual(after.Derive, before.Derive) {
				t.Errorf("derive %+v, want %+v", after.Derive, before.Derive)
			}
		}},
		{"derive checked", `{"derive":[{"field":"data.a","expression":"event."}]}`, "derive[0].expression", nil},
		{"alert_emails set", `{"alert_emails":["oncall@example.com"]}`, "", func(t *testing.T, _, after *record.Subscription) {
			if !reflect.DeepEqual(after.AlertEmails, []string{"oncall@example.com"}) {
				t.Errorf("alert_emails %v", after.AlertEmails)
			}
		}},
		{"alert_emails cleared by an empty list", `{"alert_emails":[]}`, "", func(t *testing.T, _, after *record.Subscription) {
			if after.AlertEmails == nil || len(after.AlertEmails) != 0 {
				t.Errorf("alert_emails %#v", after.AlertEmails)
			}
		}},
		{"alert_emails checked", `{"alert_emails":["a@example.com","b@example.com\r\nBcc: c@example.com"]}`, "alert_emails[1]", nil},
		{"re-enabling clears the reason", `{"enabled":true}`, "", func(t *testing.T, _, after *record.Subscription) {
			if !after.Enabled || after.DisabledReason != "" {
				t.Errorf("enabled %v reason %q", after.Enabled, after.DisabledReason)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := stored()
			before.Enabled, before.DisabledReason = false, "410 Gone"
			after := *before
			var in subscriptionInput
			if errs := decodeStrict([]byte(tc.patch), &in); errs != nil {
				t.Fatal(errs)
			}
			errs := s.apply(&in, &after, false)
			if tc.field != "" {
				if !hasField(errs, tc.field) {
					t.Fatalf("errors %+v, want %q", errs, tc.field)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("errors %+v", errs)
			}
			tc.check(t, before, &after)
			if fresh := stored(); before.URL != fresh.URL || len(before.Routes) != len(fresh.Routes) {
				t.Error("apply changed the stored subscription")
			}
		})
	}
}

// TestRequests covers what is refused before any handler logic: keys,
// content type, routes, body limits.
func TestRequests(t *testing.T) {
	s := offlineServer(t)
	s.MaxBody = 1024
	h := s.Handler()
	tests := []struct {
		name, method, path, key, contentType, body string
		status                                     int
	}{
		{"no key", "GET", "/v1/subscriptions", "", "", "", http.StatusUnauthorized},
		{"wrong key", "GET", "/v1/subscriptions", "Bearer nope", "", "", http.StatusUnauthorized},
		{"basic scheme", "GET", "/v1/subscriptions", "Basic key-acme", "", "", http.StatusUnauthorized},
		{"no scheme", "GET", "/v1/subscriptions", "key-acme", "", "", http.StatusUnauthorized},
		{"text body", "POST", "/v1/subscriptions", "Bearer key-acme", "text/plain", `{}`, http.StatusUnsupportedMediaType},
		{"merge patch type on POST", "POST", "/v1/subscriptions", "Bearer key-acme", "application/merge-patch+json", `{}`, http.StatusUnsupportedMediaType},
		{"too large", "POST", "/v1/events", "Bearer key-acme", "application/json", `{"type":"a","data":{"x":"` + strings.Repeat("x", 2000) + `"}}`, http.StatusRequestEntityTooLarge},
		{"malformed JSON", "POST", "/v1/subscriptions", "Bearer key-acme", "application/json", `{"url":`, http.StatusBadRequest},
		{"trailing data", "POST", "/v1/subscriptions", "Bearer key-acme", "application/json", `{} {}`, http.StatusBadRequest},
		{"unknown route", "GET", "/v2/things", "Bearer key-acme", "", "", http.StatusNotFound},
		{"view still catching up: get", "GET", "/v1/subscriptions/sub_1", "Bearer key-acme", "", "", http.StatusServiceUnavailable},
		{"view still catching up: list", "GET", "/v1/subscriptions", "Bearer key-acme", "", "", http.StatusServiceUnavailable},
		{"view still catching up: patch", "PATCH", "/v1/subscriptions/sub_1", "Bearer key-acme", "application/json", `{}`, http.StatusServiceUnavailable},
		{"limit zero", "GET", "/v1/subscriptions?limit=0", "Bearer key-acme", "", "", http.StatusBadRequest},
		{"limit too high", "GET", "/v1/subscriptions?limit=251", "Bearer key-acme", "", "", http.StatusBadRequest},
		{"limit not a number", "GET", "/v1/subscriptions?limit=ten", "Bearer key-acme", "", "", http.StatusBadRequest},
		{"cursor garbage", "GET", "/v1/subscriptions?cursor=%21%21", "Bearer key-acme", "", "", http.StatusBadRequest},
		{"cursor without id", "GET", "/v1/subscriptions?cursor=MTIz", "Bearer key-acme", "", "", http.StatusBadRequest},
		{"event tenant field", "POST", "/v1/events", "Bearer key-acme", "application/json", `{"type":"a","data":{},"tenant":"globex"}`, http.StatusBadRequest},
		{"event invalid", "POST", "/v1/events", "Bearer key-acme", "application/json", `[{"type":"a","data":{}},{"type":"b"}]`, http.StatusBadRequest},
		{"event text body", "POST", "/v1/events", "Bearer key-acme", "text/plain", `{"type":"a","data":{}}`, http.StatusUnsupportedMediaType},
		{"event nested too deep", "POST", "/v1/events", "Bearer key-acme", "application/json", deepEvent, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.key != "" {
				req.Header.Set("Authorization", tc.key)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			problemOf(t, tc.status, rec.Header(), rec.Body.Bytes())
			if tc.status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// deepEvent is an event whose data nests one level deeper than allowed.
var deepEvent = `{"type":"a","data":` + strings.Repeat(`{"a":`, problem.MaxNesting) + "1" + strings.Repeat("}", problem.MaxNesting) + `}`

// TestPostEventsTooDeep checks that POST /v1/events names the member
// nested too deep (event.Parse checks it; the handler does not again).
func TestPostEventsTooDeep(t *testing.T) {
	rec := do(t, offlineServer(t).Handler(), "POST", "/v1/events", "key-acme", deepEvent)
	p := problemOf(t, http.StatusBadRequest, rec.Header(), rec.Body.Bytes())
	if len(p.Errors) != 1 || !strings.HasPrefix(p.Errors[0].Field, "data.a.a") || !strings.Contains(p.Errors[0].Detail, "deeper than") {
		t.Fatalf("errors %+v, want one naming data.a.a...", p.Errors)
	}
}

func TestRotated(t *testing.T) {
	now := testNow
	at := func(d string) *time.Time {
		x := now.Add(mustDuration(t, d))
		return &x
	}
	fresh := record.Secret{Sealed: []byte("new"), CreatedAt: now}
	tests := []struct {
		name    string
		secrets []record.Secret
		grace   string
		want    []string // sealed values, in order
		expires []string // expiry offset from now per kept secret; "" for none
	}{
		{"first rotation", []record.Secret{{Sealed: []byte("a")}}, "24h", []string{"new", "a"}, []string{"", "24h"}},
		{"no grace drops the old", []record.Secret{{Sealed: []byte("a")}}, "0s", []string{"new"}, []string{""}},
		{"earlier expiry kept", []record.Secret{{Sealed: []byte("b")}, {Sealed: []byte("a"), ExpiresAt: at("1h")}}, "24h", []string{"new", "b", "a"}, []string{"", "24h", "1h"}},
		{"later expiry shortened", []record.Secret{{Sealed: []byte("b")}, {Sealed: []byte("a"), ExpiresAt: at("48h")}}, "1h", []string{"new", "b", "a"}, []string{"", "1h", "1h"}},
		{"expired dropped", []record.Secret{{Sealed: []byte("b")}, {Sealed: []byte("a"), ExpiresAt: at("-1s")}}, "1h", []string{"new", "b"}, []string{"", "1h"}},
		{"at most five", []record.Secret{{Sealed: []byte("e")}, {Sealed: []byte("d"), ExpiresAt: at("1h")}, {Sealed: []byte("c"), ExpiresAt: at("1h")}, {Sealed: []byte("b"), ExpiresAt: at("1h")}, {Sealed: []byte("a"), ExpiresAt: at("1h")}}, "1h", []string{"new", "e", "d", "c", "b"}, []string{"", "1h", "1h", "1h", "1h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := append([]record.Secret(nil), tc.secrets...)
			got := rotated(tc.secrets, fresh, now, mustDuration(t, tc.grace))
			if len(got) != len(tc.want) {
				t.Fatalf("kept %d secrets, want %d", len(got), len(tc.want))
			}
			for i, sec := range got {
				if string(sec.Sealed) != tc.want[i] {
					t.Errorf("secret %d is %q, want %q", i, sec.Sealed, tc.want[i])
				}
				switch {
				case tc.expires[i] == "" && sec.ExpiresAt != nil:
					t.Errorf("secret %d expires at %v, want never", i, sec.ExpiresAt)
				case tc.expires[i] != "" && (sec.ExpiresAt == nil || !sec.ExpiresAt.Equal(now.Add(mustDuration(t, tc.expires[i])))):
					t.Errorf("secret %d expires at %v, want now+%s", i, sec.ExpiresAt, tc.expires[i])
				}
			}
			for i := range orig {
				if (orig[i].ExpiresAt == nil) != (tc.secrets[i].ExpiresAt == nil) {
					t.Error("rotated changed its input")
				}
			}
		})
	}
}

func TestCursor(t *testing.T) {
	sub := &record.Subscription{ID: "sub_b", CreatedAt: testNow}
	c := cursorOf(sub)
	back, err := parseCursor(c.String())
	if err != nil || back.id != "sub_b" || !back.created.Equal(testNow) {
		t.Fatalf("round trip %+v %v", back, err)
	}
	tests := []struct {
		name  string
		other record.Subscription
		after bool
	}{
		{"same", record.Subscription{ID: "sub_b", CreatedAt: testNow}, false},
		{"same time, later id", record.Subscription{ID: "sub_c", CreatedAt: testNow}, true},
		{"same time, earlier id", record.Subscription{ID: "sub_a", CreatedAt: testNow}, false},
		{"later, earlier id", record.Subscription{ID: "sub_a", CreatedAt: testNow.Add(1e6)}, true},
		{"earlier, later id", record.Subscription{ID: "sub_z", CreatedAt: testNow.Add(-1e6)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := back.before(&tc.other); got != tc.after {
				t.Errorf("before = %v, want %v", got, tc.after)
			}
		})
	}
}

// TestViewHidesCredentials: the API's view of a subscription never holds
// its secrets or credentials, whatever the record holds.
func TestViewHidesCredentials(t *testing.T) {
	sub := newSubscription("sub_1", "acme", testNow)
	sub.Auth = &record.Auth{Type: "basic", Username: "u", SealedCredential: []byte("SEALEDPW")}
	sub.Secrets = []record.Secret{{Sealed: []byte("SEALEDSECRET")}}
	out := string(jsonBytes(t, viewOf(sub)))
	for _, leak := range []string{"SEALED", "U0VBTEVE", "secret", "sealed", "password", "token"} {
		if strings.Contains(out, leak) {
			t.Errorf("view shows %q: %s", leak, out)
		}
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(out), &back); err != nil {
		t.Fatal(err)
	}
	if auth, _ := back["auth"].(map[string]any); auth["type"] != "basic" || auth["username"] != "u" {
		t.Errorf("auth shown as %v", back["auth"])
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPageParameters: an empty or malformed limit is refused, naming it,
// as the OpenAPI document's integer says; an empty cursor is the first page.
func TestPageParameters(t *testing.T) {
	for query, want := range map[string]string{
		"":                 "",
		"limit=10":         "",
		"cursor=":          "",
		"limit=":           "limit",
		"limit=x":          "limit",
		"limit=0":          "limit",
		"limit=251":        "limit",
		"cursor=not_mine!": "cursor",
	} {
		q, _ := url.ParseQuery(query)
		_, _, errs := pageOf(q)
		switch {
		case want == "" && len(errs) > 0:
			t.Errorf("?%s: %+v, want none", query, errs)
		case want != "" && (len(errs) != 1 || errs[0].Field != want):
			t.Errorf("?%s: %+v, want an error naming %s", query, errs, want)
		}
	}
}

// TestEmptyQueryParameters: a documented integer, boolean or date-time
// query parameter sent empty is refused naming it, on every list that has
// one, rather than read as left out.
func TestEmptyQueryParameters(t *testing.T) {
	h := offlineServer(t).Handler()
	for path, field := range map[string]string{
		"/v1/event-types?limit=":     "limit",
		"/v1/dead-letters?limit=":    "limit",
		"/v1/dead-letters?since=":    "since",
		"/v1/dead-letters?until=":    "until",
		"/v1/dead-letters?since=now": "since",
	} {
		rec := do(t, h, http.MethodGet, path, "key-acme", "")
		p := problemOf(t, http.StatusBadRequest, rec.Header(), rec.Body.Bytes())
		if len(p.Errors) != 1 || p.Errors[0].Field != field {
			t.Errorf("%s: %+v, want %s named", path, p.Errors, field)
		}
	}
}

// TestNullBodies: a body of JSON null is refused, naming the body, where
// an object is documented (encoding/json would read it as {}, and a PATCH
// of null answered 200 changing nothing), and so is a null route or
// derived field; a rotation's optional body may be null.
func TestNullBodies(t *testing.T) {
	for name, v := range map[string]any{
		"subscription":   &subscriptionInput{},
		"update":         &updateInput{},
		"event type":     &eventTypeInput{},
		"portal session": &portalSessionInput{},
		"replay":         &replayInput{},
	} {
		if errs := decodeStrict([]byte(" null "), v); len(errs) != 1 || errs[0].Field != "" {
			t.Errorf("%s: null gave %+v, want one error about the body", name, errs)
		}
	}
	s := offlineServer(t)
	var in subscriptionInput
	if errs := decodeStrict([]byte(`{"routes":[null],"derive":[null]}`), &in); errs != nil {
		t.Fatal(errs)
	}
	errs := s.apply(&in, newSubscription("sub_1", "acme", testNow), false)
	if !hasField(errs, "routes[0]") || !hasField(errs, "derive[0]") {
		t.Errorf("null route and derived field: %+v, want routes[0] and derive[0] named", errs)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/subscriptions/sub_1/secrets/rotate", strings.NewReader("null"))
	req.Header.Set("Content-Type", "application/json")
	if grace, p := s.readGrace(httptest.NewRecorder(), req); p != nil || grace != defaultGrace {
		t.Errorf("rotation body null: %v, %+v; want the default grace", grace, p)
	}
}
