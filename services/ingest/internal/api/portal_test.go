package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/health"
	"github.com/hookline/hookline/pkg/testinfra"
)

func testPortal(t *testing.T) *Portal {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return NewPortal(key, "")
}

func TestPortalTokens(t *testing.T) {
	p, other := testPortal(t), testPortal(t)
	now := time.Unix(1_800_000_000, 0)
	good := p.sign(portalClaims{Version: 1, Tenant: "acme", Subscriptions: []string{"sub_1"}, Expires: now.Add(time.Hour).Unix(), Nonce: "n"})
	c, err := p.verify(good, now)
	if err != nil || c.Tenant != "acme" || !slices.Equal(c.Subscriptions, []string{"sub_1"}) {
		t.Fatalf("verify(good) = %+v, %v", c, err)
	}
	payload, mac, _ := strings.Cut(strings.TrimPrefix(good, portalTokenPrefix), ".")
	forgedClaims := p.sign(portalClaims{Version: 1, Tenant: "globex", Expires: now.Add(time.Hour).Unix()})
	forgedPayload, _, _ := strings.Cut(strings.TrimPrefix(forgedClaims, portalTokenPrefix), ".")
	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"expired", good, now.Add(time.Hour), errPortalExpired},
		{"another tenant's claims under this MAC", portalTokenPrefix + forgedPayload + "." + mac, now, errPortalInvalid},
		{"MAC altered", portalTokenPrefix + payload + "." + strings.Repeat("A", len(mac)), now, errPortalInvalid},
		{"signed with another key", other.sign(portalClaims{Version: 1, Tenant: "acme", Expires: now.Add(time.Hour).Unix()}), now, errPortalInvalid},
		{"no MAC", portalTokenPrefix + payload, now, errPortalInvalid},
		{"empty", portalTokenPrefix, now, errPortalInvalid},
		{"not base64 claims", portalTokenPrefix + "!!!." + p.mac("!!!"), now, errPortalInvalid},
		{"claims without tenant", p.sign(portalClaims{Version: 1, Expires: now.Add(time.Hour).Unix()}), now, errPortalInvalid},
		{"unknown version", p.sign(portalClaims{Version: 2, Tenant: "acme", Expires: now.Add(time.Hour).Unix()}), now, errPortalInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.verify(tc.token, tc.at); err != tc.want {
				t.Fatalf("verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestPortalSessionsAreConfined runs the API against real Kafka and Redis:
// a portal token reaches only its tenant, only its subscriptions when it
// lists some, only the calls a portal may make, and only until it expires.
func TestPortalSessionsAreConfined(t *testing.T) {
	s := newStack(t)
	s.srv.Portal = testPortal(t)
	rdb := testinfra.Redis(t)
	s.srv.Health = health.New(rdb, s.cfg.Topics.Keys().Health(), 0)
	a1 := s.create(t, "key-acme", subBody(t, `{"name":"a1"}`))
	a2 := s.create(t, "key-acme", subBody(t, `{"name":"a2"}`))
	g1 := s.create(t, "key-globex", subBody(t, `{"name":"g1"}`))

	session := func(key, body string) portalSessionAnswer {
		t.Helper()
		var a portalSessionAnswer
		decodeInto(t, s.must(t, http.StatusCreated, "POST", "/v1/portal/sessions", key, body), &a)
		if !strings.HasPrefix(a.Token, portalTokenPrefix) || !strings.HasSuffix(a.URL, "/console/#portal="+a.Token) || !strings.HasPrefix(a.URL, s.url) {
			t.Fatalf("session answer %+v", a)
		}
		return a
	}
	all := session("key-acme", `{}`)
	if d := time.Until(all.ExpiresAt); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Errorf("default session ends in %s, want an hour", d)
	}
	only := session("key-acme", `{"subscription_ids":["`+a1.ID+`","`+a1.ID+`"],"expires_in":120}`)
	if !slices.Equal(only.SubscriptionIDs, []string{a1.ID}) {
		t.Errorf("restricted session lists %v, want [%s] once", only.SubscriptionIDs, a1.ID)
	}
	globex := session("key-globex", `{}`)

	t.Run("bad session requests name the field", func(t *testing.T) {
		for body, field := range map[string]string{
			`{"expires_in":10}`:                      "expires_in",
			`{"expires_in":100000}`:                  "expires_in",
			`{"subscription_ids":[]}`:                "subscription_ids",
			`{"subscription_ids":["` + g1.ID + `"]}`: "subscription_ids[0]",
			`{"subscription_ids":["sub_nothing"]}`:   "subscription_ids[0]",
			`{"tenant":"globex"}`:                    "tenant",
		} {
			status, out := s.call(t, "POST", "/v1/portal/sessions", "key-acme", body)
			var p struct {
				Errors []struct{ Field string } `json:"errors"`
			}
			_ = json.Unmarshal(out, &p)
			if status != http.StatusBadRequest || len(p.Errors) == 0 || p.Errors[0].Field != field {
				t.Errorf("%s: %d %s, want 400 naming %s", body, status, out, field)
			}
		}
	})

	t.Run("what each session may reach", func(t *testing.T) {
		tests := []struct {
			name, method, path, token, body string
			want                            int
		}{
			{"own subscription", "GET", "/v1/subscriptions/" + a2.ID, all.Token, "", 200},
			{"another tenant's subscription", "GET", "/v1/subscriptions/" + g1.ID, all.Token, "", 404},
			{"another tenant's, changed", "PATCH", "/v1/subscriptions/" + g1.ID, all.Token, `{"name":"x"}`, 404},
			{"other tenant's portal", "GET", "/v1/subscriptions/" + a1.ID, globex.Token, "", 404},
			{"listed subscription", "GET", "/v1/subscriptions/" + a1.ID, only.Token, "", 200},
			{"unlisted subscription", "GET", "/v1/subscriptions/" + a2.ID, only.Token, "", 404},
			{"unlisted, deleted", "DELETE", "/v1/subscriptions/" + a2.ID, only.Token, "", 404},
			{"unlisted, rotated", "POST", "/v1/subscriptions/" + a2.ID + "/secrets/rotate", only.Token, "", 404},
			{"unlisted, tested", "POST", "/v1/subscriptions/" + a2.ID + "/test", only.Token, "", 404},
			{"unlisted, replayed", "POST", "/v1/replay", only.Token, `{"subscription_id":"` + a2.ID + `"}`, 404},
			{"unlisted dead letters", "GET", "/v1/dead-letters?subscription_id=" + a2.ID, only.Token, "", 404},
			{"restricted cannot create", "POST", "/v1/subscriptions", only.Token, subBody(t, ""), 403},
			{"no events published", "POST", "/v1/events", all.Token, `{"type":"a.b","data":{}}`, 403},
			{"no catalog changes", "POST", "/v1/event-types", all.Token, `{"name":"a.b"}`, 403},
			{"no sessions from a session", "POST", "/v1/portal/sessions", all.Token, `{}`, 403},
			{"catalog read", "GET", "/v1/event-types", only.Token, "", 200},
			{"expired", "GET", "/v1/subscriptions", s.srv.Portal.sign(portalClaims{Version: 1, Tenant: "acme", Expires: time.Now().Add(-time.Second).Unix()}), "", 401},
			{"tenant without a key", "GET", "/v1/subscriptions", s.srv.Portal.sign(portalClaims{Version: 1, Tenant: "gone", Expires: time.Now().Add(time.Hour).Unix()}), "", 401},
			{"forged", "GET", "/v1/subscriptions", testPortal(t).sign(portalClaims{Version: 1, Tenant: "acme", Expires: time.Now().Add(time.Hour).Unix()}), "", 401},
		}
		for _, tc := range tests {
			if status, out := s.call(t, tc.method, tc.path, tc.token, tc.body); status != tc.want {
				t.Errorf("%s: %s %s = %d %s, want %d", tc.name, tc.method, tc.path, status, out, tc.want)
			}
		}
		status, out := s.call(t, "GET", "/v1/subscriptions", s.srv.Portal.sign(portalClaims{Version: 1, Tenant: "acme", Expires: time.Now().Add(-time.Second).Unix()}), "")
		if status != 401 || !strings.Contains(string(out), "portal-expired") {
			t.Errorf("expired token: %d %s, want 401 portal-expired", status, out)
		}
		// An unrestricted session creates, and sees what it created.
		created := s.create(t, all.Token, subBody(t, `{"name":"from the portal"}`))
		if s.stored(t, created.ID).Tenant != "acme" {
			t.Error("a subscription created through the portal is not its tenant's")
		}
	})

	t.Run("lists are confined", func(t *testing.T) {
		var page listAnswer
		decodeInto(t, s.must(t, 200, "GET", "/v1/subscriptions", only.Token, ""), &page)
		if ids := idsOf(page.Data); !slices.Equal(ids, []string{a1.ID}) {
			t.Errorf("restricted list = %v, want [%s]", ids, a1.ID)
		}
		decodeInto(t, s.must(t, 200, "GET", "/v1/subscriptions", globex.Token, ""), &page)
		if ids := idsOf(page.Data); !slices.Equal(ids, []string{g1.ID}) {
			t.Errorf("globex list = %v, want [%s]", ids, g1.ID)
		}
		var who sessionAnswer
		decodeInto(t, s.must(t, 200, "GET", "/v1/session", only.Token, ""), &who)
		if who.Kind != "portal" || who.Tenant != "acme" || who.CanCreate || who.CanPublish || !slices.Equal(who.SubscriptionIDs, []string{a1.ID}) || who.ExpiresAt == nil {
			t.Errorf("restricted session = %+v", who)
		}
		var key sessionAnswer
		decodeInto(t, s.must(t, 200, "GET", "/v1/session", "key-acme", ""), &key)
		if who = key; who.Kind != "api_key" || !who.CanCreate || !who.CanPublish || who.ExpiresAt != nil {
			t.Errorf("API key session = %+v", who)
		}
	})

	t.Run("health on views", func(t *testing.T) {
		tr := health.New(rdb, s.cfg.Topics.Keys().Health(), time.Hour)
		first := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		for i := range health.FailingAfter {
			if _, err := tr.Failure(context.Background(), a1.ID, health.Failed{At: first.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { _, _ = tr.Success(context.Background(), a1.ID) })
		s.must(t, 200, "PATCH", "/v1/subscriptions/"+a2.ID, "key-acme", `{"enabled":false}`)
		got := s.get(t, "key-acme", a1.ID).Health
		if got == nil || got.State != HealthFailing || got.ConsecutiveFailures != health.FailingAfter || got.Since == nil || !got.Since.Equal(first) {
			t.Errorf("health of a failing endpoint = %+v, want failing since %v", got, first)
		}
		var page listAnswer
		decodeInto(t, s.must(t, 200, "GET", "/v1/subscriptions", "key-acme", ""), &page)
		states := map[string]string{}
		for _, v := range page.Data {
			if v.Health != nil {
				states[v.ID] = v.Health.State
			}
		}
		if states[a1.ID] != HealthFailing || states[a2.ID] != HealthDisabled {
			t.Errorf("list health = %v, want %s failing and %s disabled", states, a1.ID, a2.ID)
		}
		if d := s.get(t, "key-acme", a2.ID).Health; d == nil || d.Reason == "" || d.Since == nil {
			t.Errorf("disabled health = %+v, want a reason and since", d)
		}
	})
}
