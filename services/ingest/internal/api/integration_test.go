package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/idempotency"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/kafka"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/signature"
	"github.com/hookline/hookline/pkg/subscription"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/pkg/wire"
	"github.com/hookline/hookline/services/ingest/internal/catalog"
	"github.com/hookline/hookline/services/ingest/internal/immediate"
)

// stack is the API over HTTP in front of the real broker and Redis, with a
// running subscriptions view, as main wires it.
type stack struct {
	cfg kafka.Config
	srv *Server
	url string
}

// newStack starts it; opts are added to the producer's options.
func newStack(t testing.TB, opts ...kgo.Opt) *stack {
	t.Helper()
	cfg := testinfra.Kafka(t)
	rdb := testinfra.Redis(t)
	log := testinfra.Logger()
	srv := offlineServer(t)
	srv.Now = time.Now
	producer, err := kafka.NewClient(cfg, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	testinfra.WaitTopic(t, cfg, cfg.Topics.Subscriptions)
	view := subscription.NewView(cfg.Topics, srv.Codecs, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("view: %v", err)
		}
	})
	ready, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := view.WaitReady(ready); err != nil {
		t.Fatalf("view not ready: %v", err)
	}
	testinfra.WaitTopic(t, cfg, cfg.Topics.EventTypes)
	types := catalog.New(cfg.Topics, srv.Codecs, log)
	typesDone := make(chan error, 1)
	go func() { typesDone <- types.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-typesDone; err != nil {
			t.Errorf("catalog: %v", err)
		}
	})
	if err := types.WaitReady(ready); err != nil {
		t.Fatalf("catalog not ready: %v", err)
	}
	srv.Producer, srv.View, srv.Topics, srv.Catalog = producer, view, cfg.Topics, types
	srv.EventWrites = kafka.NewGroup(producer)
	srv.Events = idempotency.New(rdb, cfg.Topics.Keys().EventIDs(), time.Hour)
	// Immediate mode over no subscriptions: what it writes is tested
	// here, its attempts in package immediate.
	srv.Immediate = &immediate.Deliverer{Index: index.New(log), Log: log, Now: time.Now}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &stack{cfg: cfg, srv: srv, url: ts.URL}
}

// call sends body (a string of JSON, or nothing) with tenant key's
// credentials and returns the status and the answer.
func (s *stack) call(t *testing.T, method, path, key, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// must is call that fails the test unless the status is want.
func (s *stack) must(t *testing.T, want int, method, path, key, body string) []byte {
	t.Helper()
	status, out := s.call(t, method, path, key, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, out)
	}
	return out
}

// create makes a subscription of key's tenant and returns the answer.
func (s *stack) create(t *testing.T, key, body string) subscriptionView {
	t.Helper()
	var v subscriptionView
	decodeInto(t, s.must(t, http.StatusCreated, "POST", "/v1/subscriptions", key, body), &v)
	if !strings.HasPrefix(v.ID, "sub_") || v.Secret == "" {
		t.Fatalf("create answer %+v", v)
	}
	return v
}

func (s *stack) get(t *testing.T, key, subID string) subscriptionView {
	t.Helper()
	var v subscriptionView
	decodeInto(t, s.must(t, http.StatusOK, "GET", "/v1/subscriptions/"+subID, key, ""), &v)
	return v
}

// stored is the subscription as the view holds it, secrets and all.
func (s *stack) stored(t *testing.T, subID string) *record.Subscription {
	t.Helper()
	sub, ok := s.srv.View.Get(subID)
	if !ok {
		t.Fatalf("subscription %s is not in the view", subID)
	}
	return sub
}

// open unseals a value of subscription subID.
func (s *stack) open(t *testing.T, subID string, sealed []byte) string {
	t.Helper()
	pt, err := s.srv.Box.Open(sealed, []byte(subID))
	if err != nil {
		t.Fatalf("open sealed value of %s: %v", subID, err)
	}
	return string(pt)
}

func decodeInto(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// listAll follows next_cursor from the first page and returns every page.
func (s *stack) listAll(t *testing.T, key string, limit int) [][]subscriptionView {
	t.Helper()
	var pages [][]subscriptionView
	cursor := ""
	for range 100 {
		path := "/v1/subscriptions?limit=" + itoa(limit)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page listAnswer
		decodeInto(t, s.must(t, http.StatusOK, "GET", path, key, ""), &page)
		pages = append(pages, page.Data)
		if page.NextCursor == nil {
			return pages
		}
		cursor = *page.NextCursor
	}
	t.Fatal("paging does not end")
	return nil
}

func idsOf(pages ...[]subscriptionView) []string {
	var out []string
	for _, p := range pages {
		for _, v := range p {
			out = append(out, v.ID)
		}
	}
	return out
}

func itoa(n int) string { return string(jsonBytesOf(n)) }

func jsonBytesOf(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

const fullBody = `{
	"name": "orders to billing", "description": "paid orders",
	"url": "https://billing.example.com/hooks", "event_types": ["order.*", "invoice.paid"],
	"condition": {"all":[{"field":"data.status","op":"eq","value":"paid"},{"field":"data.amount","op":"gte","value":100}]},
	"expression": "event.data.amount < 1000000",
	"payload": "changed", "headers": {"X-Team": "billing"},
	"auth": {"type":"bearer","token":"TOKEN-b3f1c9a7"},
	"rate_limit_per_second": 50, "timeout_ms": 5000, "max_attempts": 12, "max_in_flight": 8, "ordered": true,
	"metadata": {"env":"test"}, "allowed_hosts": ["*.example.com"],
	"routes": [{"condition":{"field":"data.region","op":"eq","value":"eu"},"url":"https://eu.example.com/hooks"}],
	"batch": {"max_events": 10, "max_wait_ms": 250},
	"derive": [{"field":"data.amount_eur","expression":"event.data.amount / 100.0"},
		{"field":"data.customer.name","expression":"event.data.customer.name","default": "unknown"}],
	"alert_emails": ["billing-oncall@example.com", "ops@example.com"]
}`

func TestSubscriptionsAPI(t *testing.T) {
	st := newStack(t)

	t.Run("create and get round trip", func(t *testing.T) {
		created := st.create(t, "key-acme", fullBody)
		if _, err := signature.ParseSecret(created.Secret); err != nil {
			t.Errorf("secret %q: %v", created.Secret, err)
		}
		got := st.get(t, "key-acme", created.ID)
		created.Secret = ""
		if a, b := jsonBytes(t, created), jsonBytes(t, got); !bytes.Equal(a, b) {
			t.Errorf("GET differs from the create answer:\n create %s\n get    %s", a, b)
		}
		if got.Name != "orders to billing" || got.Payload != "changed" || got.MaxAttempts != 12 || got.MaxInFlight != 8 || !got.Ordered ||
			got.Batch == nil || got.Batch.MaxEvents != 10 || len(got.Routes) != 1 || got.Auth == nil || got.Auth.Type != "bearer" ||
			got.Headers["X-Team"] != "billing" || got.Metadata["env"] != "test" || got.Expression == "" || got.Condition == nil {
			t.Errorf("GET %+v", got)
		}
		if got.CreatedAt.IsZero() || !got.CreatedAt.Equal(got.UpdatedAt) {
			t.Errorf("created_at %v updated_at %v", got.CreatedAt, got.UpdatedAt)
		}
		if tok := st.open(t, created.ID, st.stored(t, created.ID).Auth.SealedCredential); tok != "TOKEN-b3f1c9a7" {
			t.Errorf("stored token opens to %q", tok)
		}
		wantDerive := []record.Derive{
			{Field: "data.amount_eur", Expression: "event.data.amount / 100.0"},
			{Field: "data.customer.name", Expression: "event.data.customer.name", DefaultJSON: new(`"unknown"`)},
		}
		if stored := st.stored(t, created.ID).Derive; !reflect.DeepEqual(stored, wantDerive) {
			t.Errorf("stored derive %+v, want %+v", stored, wantDerive)
		}
		if len(got.Derive) != 2 || string(got.Derive[1].Default) != `"unknown"` || got.Derive[0].Default != nil {
			t.Errorf("GET derive %+v", got.Derive)
		}
		wantEmails := []string{"billing-oncall@example.com", "ops@example.com"}
		if stored := st.stored(t, created.ID).AlertEmails; !reflect.DeepEqual(stored, wantEmails) || !reflect.DeepEqual(got.AlertEmails, wantEmails) {
			t.Errorf("alert_emails stored %v, GET %v; want %v", stored, got.AlertEmails, wantEmails)
		}
		if minimal := st.create(t, "key-acme", subBody(t, "")); minimal.AlertEmails == nil || len(minimal.AlertEmails) != 0 {
			t.Errorf("alert_emails of a subscription without them: %#v, want []", minimal.AlertEmails)
		}
	})

	t.Run("a write is visible to GET right after its answer", func(t *testing.T) {
		for i := range 5 {
			v := st.create(t, "key-acme", subBody(t, `{"name":"visible"}`))
			if got := st.get(t, "key-acme", v.ID); got.Name != "visible" {
				t.Fatalf("round %d: GET name %q", i, got.Name)
			}
			st.must(t, http.StatusOK, "PATCH", "/v1/subscriptions/"+v.ID, "key-acme", `{"name":"patched"}`)
			if got := st.get(t, "key-acme", v.ID); got.Name != "patched" {
				t.Fatalf("round %d: GET after PATCH name %q", i, got.Name)
			}
			st.must(t, http.StatusNoContent, "DELETE", "/v1/subscriptions/"+v.ID, "key-acme", "")
			st.must(t, http.StatusNotFound, "GET", "/v1/subscriptions/"+v.ID, "key-acme", "")
		}
	})

	t.Run("patch changes only the fields sent", func(t *testing.T) {
		created := st.create(t, "key-acme", fullBody)
		before := st.stored(t, created.ID)
		time.Sleep(5 * time.Millisecond) // updated_at has millisecond precision
		var patched subscriptionView
		decodeInto(t, st.must(t, http.StatusOK, "PATCH", "/v1/subscriptions/"+created.ID, "key-acme",
			`{"name":"renamed","max_attempts":3,"condition":null,"auth":{"type":"bearer"}}`), &patched)
		got := st.get(t, "key-acme", created.ID)
		if a, b := jsonBytes(t, patched), jsonBytes(t, got); !bytes.Equal(a, b) {
			t.Errorf("GET differs from the PATCH answer:\n patch %s\n get   %s", a, b)
		}
		if got.Name != "renamed" || got.MaxAttempts != 3 || got.Condition != nil {
			t.Errorf("patched fields: %+v", got)
		}
		if got.URL != created.URL || got.Description != created.Description || got.TimeoutMS != 5000 || got.Batch == nil || len(got.Routes) != 1 {
			t.Errorf("fields not sent changed: %+v", got)
		}
		if !got.CreatedAt.Equal(created.CreatedAt) || !got.UpdatedAt.After(created.UpdatedAt) {
			t.Errorf("created_at %v -> %v, updated_at %v -> %v", created.CreatedAt, got.CreatedAt, created.UpdatedAt, got.UpdatedAt)
		}
		after := st.stored(t, created.ID)
		if !bytes.Equal(after.Secrets[0].Sealed, before.Secrets[0].Sealed) || len(after.Secrets) != 1 {
			t.Error("PATCH changed the signing secret")
		}
		if tok := st.open(t, created.ID, after.Auth.SealedCredential); tok != "TOKEN-b3f1c9a7" {
			t.Errorf("auth without token should keep it; opens to %q", tok)
		}

		status, body := st.call(t, "PATCH", "/v1/subscriptions/"+created.ID, "key-acme", `{"timeout_ms":5,"name":"x"}`)
		p := problemOf(t, status, http.Header{"Content-Type": {"application/problem+json"}}, body)
		if status != http.StatusBadRequest || !hasField(p.Errors, "timeout_ms") {
			t.Errorf("invalid PATCH: %d %s", status, body)
		}
		if st.get(t, "key-acme", created.ID).Name != "renamed" {
			t.Error("a refused PATCH changed the subscription")
		}
		st.must(t, http.StatusBadRequest, "PATCH", "/v1/subscriptions/"+created.ID, "key-acme", `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`)
		st.must(t, http.StatusBadRequest, "PATCH", "/v1/subscriptions/"+created.ID, "key-acme", `{"id":"sub_other"}`)
	})

	t.Run("put replaces the whole subscription", func(t *testing.T) {
		created := st.create(t, "key-acme", fullBody)
		before := st.stored(t, created.ID)

		// A GET answer sent back unchanged changes nothing but updated_at.
		current := st.must(t, http.StatusOK, "GET", "/v1/subscriptions/"+created.ID, "key-acme", "")
		var echoed subscriptionView
		decodeInto(t, st.must(t, http.StatusOK, "PUT", "/v1/subscriptions/"+created.ID, "key-acme", string(current)), &echoed)
		var was subscriptionView
		decodeInto(t, current, &was)
		echoed.UpdatedAt, was.UpdatedAt = time.Time{}, time.Time{}
		if a, b := jsonBytes(t, echoed), jsonBytes(t, was); !bytes.Equal(a, b) {
			t.Errorf("PUT of a GET answer changed it:\n before %s\n after  %s", b, a)
		}
		if tok := st.open(t, created.ID, st.stored(t, created.ID).Auth.SealedCredential); tok != "TOKEN-b3f1c9a7" {
			t.Errorf("PUT of a GET answer lost the token: %q", tok)
		}

		// A minimal body resets everything else to the defaults.
		var put subscriptionView
		decodeInto(t, st.must(t, http.StatusOK, "PUT", "/v1/subscriptions/"+created.ID, "key-acme",
			`{"url":"https://other.example.com/in","event_types":["user.created"]}`), &put)
		got := st.get(t, "key-acme", created.ID)
		if a, b := jsonBytes(t, put), jsonBytes(t, got); !bytes.Equal(a, b) {
			t.Errorf("GET differs from the PUT answer:\n put %s\n get %s", a, b)
		}
		if got.ID != created.ID || !got.CreatedAt.Equal(created.CreatedAt) || got.URL != "https://other.example.com/in" ||
			!slices.Equal(got.EventTypes, []string{"user.created"}) {
			t.Errorf("PUT kept or set the wrong things: %+v", got)
		}
		if got.Name != "" || got.Condition != nil || got.Expression != "" || got.Auth != nil || got.Batch != nil || len(got.Routes) != 0 ||
			len(got.Headers) != 0 || len(got.Metadata) != 0 || got.TimeoutMS != subscription.DefaultTimeoutMS || got.MaxAttempts != subscription.DefaultMaxAttempts ||
			got.Payload != "full" || got.Ordered || !got.Enabled {
			t.Errorf("PUT did not reset fields left out: %+v", got)
		}
		if after := st.stored(t, created.ID); !bytes.Equal(after.Secrets[0].Sealed, before.Secrets[0].Sealed) {
			t.Error("PUT changed the signing secret")
		}

		for _, tc := range []struct{ name, body, field string }{
			{"url required", `{"event_types":["a"]}`, "url"},
			{"event types required", `{"url":"https://a.example.com"}`, "event_types"},
			{"secret", `{"url":"https://a.example.com","event_types":["a"],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "secret"},
			{"other id", `{"id":"sub_x","url":"https://a.example.com","event_types":["a"]}`, "id"},
			{"auth without credential to keep", `{"url":"https://a.example.com","event_types":["a"],"auth":{"type":"bearer"}}`, "auth.token"},
		} {
			status, body := st.call(t, "PUT", "/v1/subscriptions/"+created.ID, "key-acme", tc.body)
			p := problemOf(t, status, http.Header{"Content-Type": {"application/problem+json"}}, body)
			if status != http.StatusBadRequest || !hasField(p.Errors, tc.field) {
				t.Errorf("%s: %d %s", tc.name, status, body)
			}
		}
		if got := st.get(t, "key-acme", created.ID); got.URL != "https://other.example.com/in" {
			t.Error("a refused PUT changed the subscription")
		}
	})

	t.Run("delete", func(t *testing.T) {
		v := st.create(t, "key-acme", subBody(t, ""))
		st.must(t, http.StatusNoContent, "DELETE", "/v1/subscriptions/"+v.ID, "key-acme", "")
		st.must(t, http.StatusNotFound, "GET", "/v1/subscriptions/"+v.ID, "key-acme", "")
		st.must(t, http.StatusNotFound, "DELETE", "/v1/subscriptions/"+v.ID, "key-acme", "")
		st.must(t, http.StatusNotFound, "PATCH", "/v1/subscriptions/"+v.ID, "key-acme", `{"name":"x"}`)
		if slices.Contains(idsOf(st.listAll(t, "key-acme", 250)...), v.ID) {
			t.Error("deleted subscription still listed")
		}
		var tombstone bool
		for _, r := range testinfra.Records(t, st.cfg, st.cfg.Topics.Subscriptions) {
			tombstone = tombstone || (string(r.Key) == v.ID && r.Value == nil)
		}
		if !tombstone {
			t.Error("no tombstone on the subscriptions topic")
		}
	})

	t.Run("paging", func(t *testing.T) {
		var want []subscriptionView
		for range 7 {
			want = append(want, st.create(t, "key-pager", subBody(t, "")))
		}
		slices.SortFunc(want, func(a, b subscriptionView) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		wantIDs := idsOf(want)

		pages := st.listAll(t, "key-pager", 3)
		if len(pages) != 3 || len(pages[0]) != 3 || len(pages[1]) != 3 || len(pages[2]) != 1 {
			t.Fatalf("pages of sizes %v", sizes(pages))
		}
		if got := idsOf(pages...); !slices.Equal(got, wantIDs) {
			t.Errorf("paged ids %v, want %v", got, wantIDs)
		}
		if got := st.listAll(t, "key-pager", 7); len(got) != 1 || !slices.Equal(idsOf(got...), wantIDs) {
			t.Errorf("one exact page: sizes %v", sizes(got))
		}
		var first listAnswer
		decodeInto(t, st.must(t, http.StatusOK, "GET", "/v1/subscriptions", "key-pager", ""), &first)
		if first.NextCursor != nil || !slices.Equal(idsOf(first.Data), wantIDs) {
			t.Errorf("default page: next %v ids %v", first.NextCursor, idsOf(first.Data))
		}
		if !strings.Contains(string(st.must(t, http.StatusOK, "GET", "/v1/subscriptions", "key-pager", "")), `"next_cursor":null`) {
			t.Error("the last page does not say next_cursor: null")
		}

		// Deleting the last item of a page neither skips nor repeats any.
		var page listAnswer
		decodeInto(t, st.must(t, http.StatusOK, "GET", "/v1/subscriptions?limit=2", "key-pager", ""), &page)
		st.must(t, http.StatusNoContent, "DELETE", "/v1/subscriptions/"+page.Data[1].ID, "key-pager", "")
		var next listAnswer
		decodeInto(t, st.must(t, http.StatusOK, "GET", "/v1/subscriptions?limit=2&cursor="+*page.NextCursor, "key-pager", ""), &next)
		if got := idsOf(next.Data); !slices.Equal(got, wantIDs[2:4]) {
			t.Errorf("page after a deleted cursor: %v, want %v", got, wantIDs[2:4])
		}
	})

	t.Run("rotate keeps the old secret for the grace period", func(t *testing.T) {
		const first = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		created := st.create(t, "key-acme", subBody(t, `{"secret":"`+first+`"}`))
		if created.Secret != first {
			t.Fatalf("created with secret %q, want %q", created.Secret, first)
		}
		var rot subscriptionView
		rotatedAt := time.Now()
		decodeInto(t, st.must(t, http.StatusOK, "POST", "/v1/subscriptions/"+created.ID+"/secrets/rotate", "key-acme", `{"grace_seconds":3600}`), &rot)
		if _, err := signature.ParseSecret(rot.Secret); err != nil || rot.Secret == first {
			t.Fatalf("rotated secret %q: %v", rot.Secret, err)
		}
		if strings.Contains(string(jsonBytes(t, rot)), first) {
			t.Error("the rotate answer shows the old secret")
		}
		secrets := st.stored(t, created.ID).Secrets
		if len(secrets) != 2 {
			t.Fatalf("%d secrets stored, want 2", len(secrets))
		}
		if st.open(t, created.ID, secrets[0].Sealed) != rot.Secret || secrets[0].ExpiresAt != nil {
			t.Error("the new secret is not first and unexpiring")
		}
		if st.open(t, created.ID, secrets[1].Sealed) != first || secrets[1].ExpiresAt == nil {
			t.Fatal("the old secret is not kept second with an expiry")
		}
		if d := secrets[1].ExpiresAt.Sub(rotatedAt); d < time.Hour-5*time.Second || d > time.Hour+5*time.Second {
			t.Errorf("old secret expires %v after the rotation, want 1h", d)
		}
		if strings.Contains(string(st.must(t, http.StatusOK, "GET", "/v1/subscriptions/"+created.ID, "key-acme", "")), "whsec_") {
			t.Error("GET shows a secret after rotation")
		}

		// No body: a day's grace; the first secret keeps its earlier expiry.
		decodeInto(t, st.must(t, http.StatusOK, "POST", "/v1/subscriptions/"+created.ID+"/secrets/rotate", "key-acme", ""), &rot)
		secrets = st.stored(t, created.ID).Secrets
		if len(secrets) != 3 || secrets[1].ExpiresAt == nil || secrets[1].ExpiresAt.Sub(rotatedAt) < 23*time.Hour ||
			secrets[2].ExpiresAt.Sub(rotatedAt) > time.Hour+5*time.Second {
			t.Errorf("after a second rotation: %d secrets", len(secrets))
		}

		// No grace: only the new secret is left.
		decodeInto(t, st.must(t, http.StatusOK, "POST", "/v1/subscriptions/"+created.ID+"/secrets/rotate", "key-acme", `{"grace_seconds":0}`), &rot)
		if secrets = st.stored(t, created.ID).Secrets; len(secrets) != 1 || st.open(t, created.ID, secrets[0].Sealed) != rot.Secret {
			t.Errorf("after a rotation without grace: %d secrets", len(secrets))
		}

		for _, tc := range []struct {
			body   string
			status int
		}{
			{`{"grace_seconds":604801}`, http.StatusBadRequest},
			{`{"grace_seconds":-1}`, http.StatusBadRequest},
			{`{"grace":60}`, http.StatusBadRequest},
		} {
			st.must(t, tc.status, "POST", "/v1/subscriptions/"+created.ID+"/secrets/rotate", "key-acme", tc.body)
		}
		if len(st.stored(t, created.ID).Secrets) != 1 {
			t.Error("a refused rotation changed the secrets")
		}
	})

	t.Run("test ping produces one delivery to this subscription", func(t *testing.T) {
		sub := st.create(t, "key-acme", subBody(t, `{"metadata":{"env":"test"}}`))
		other := st.create(t, "key-acme", subBody(t, `{"event_types":["*"]}`))
		var ans pingAnswer
		decodeInto(t, st.must(t, http.StatusAccepted, "POST", "/v1/subscriptions/"+sub.ID+"/test", "key-acme", ""), &ans)
		if ans.DeliveryID != id.Delivery(ans.EventID, sub.ID) {
			t.Errorf("delivery id %q is not derived from event %q and the subscription", ans.DeliveryID, ans.EventID)
		}
		var found []record.Delivery
		for _, r := range testinfra.Records(t, st.cfg, st.cfg.Topics.Deliveries) {
			var d record.Delivery
			if err := st.srv.Codecs.Delivery.Unmarshal(r.Value, &d); err != nil {
				t.Fatalf("delivery record: %v", err)
			}
			if d.EventID == ans.EventID {
				found = append(found, d)
				if string(r.Key) != sub.ID {
					t.Errorf("delivery keyed %q, want the subscription id", r.Key)
				}
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d deliveries of the test event, want 1", len(found))
		}
		d := found[0]
		if d.ID != ans.DeliveryID || d.SubscriptionID != sub.ID || d.SubscriptionID == other.ID || d.Tenant != "acme" ||
			d.EventType != TestEventType || d.URL != sub.URL || d.Attempt != 0 {
			t.Errorf("delivery %+v", d)
		}
		var body struct {
			ID, Type, Subject string
			Timestamp         time.Time
			Data              map[string]any
			Metadata          map[string]string
		}
		decodeInto(t, []byte(d.Payload), &body)
		if body.ID != ans.EventID || body.Type != "webhook.test" || body.Subject != sub.ID || body.Timestamp.IsZero() ||
			body.Data["message"] == "" || body.Metadata["env"] != "test" {
			t.Errorf("payload %s", d.Payload)
		}

		st.must(t, http.StatusOK, "PATCH", "/v1/subscriptions/"+sub.ID, "key-acme", `{"enabled":false}`)
		st.must(t, http.StatusConflict, "POST", "/v1/subscriptions/"+sub.ID+"/test", "key-acme", "")
	})

	t.Run("tenant isolation", func(t *testing.T) {
		mine := st.create(t, "key-acme", fullBody)
		theirs := st.create(t, "key-globex", subBody(t, ""))
		path := "/v1/subscriptions/" + mine.ID
		for _, c := range []struct{ method, path, body string }{
			{"GET", path, ""},
			{"PATCH", path, `{"name":"taken"}`},
			{"PUT", path, subBody(t, `{"name":"taken"}`)},
			{"DELETE", path, ""},
			{"POST", path + "/secrets/rotate", ""},
			{"POST", path + "/test", ""},
		} {
			status, body := st.call(t, c.method, c.path, "key-globex", c.body)
			if status != http.StatusNotFound {
				t.Errorf("globex %s %s: %d %s", c.method, c.path, status, body)
			}
			// The answer is the one an unknown id gets: nothing tells it exists.
			_, unknown := st.call(t, c.method, strings.Replace(c.path, mine.ID, "sub_00000000000000000000000000", 1), "key-globex", c.body)
			if strings.ReplaceAll(string(body), mine.ID, "") != strings.ReplaceAll(string(unknown), "sub_00000000000000000000000000", "") {
				t.Errorf("globex %s %s answers differently from an unknown id:\n %s\n %s", c.method, c.path, body, unknown)
			}
		}
		got := st.get(t, "key-acme", mine.ID)
		if got.Name != mine.Name || !got.UpdatedAt.Equal(mine.UpdatedAt) || len(st.stored(t, mine.ID).Secrets) != 1 {
			t.Errorf("another tenant changed the subscription: %+v", got)
		}
		if ids := idsOf(st.listAll(t, "key-globex", 250)...); slices.Contains(ids, mine.ID) || !slices.Contains(ids, theirs.ID) {
			t.Errorf("globex lists %v", ids)
		}
		if ids := idsOf(st.listAll(t, "key-acme", 250)...); slices.Contains(ids, theirs.ID) || !slices.Contains(ids, mine.ID) {
			t.Errorf("acme lists %v", ids)
		}
		for _, r := range testinfra.Records(t, st.cfg, st.cfg.Topics.Deliveries) {
			if string(r.Key) == mine.ID {
				t.Error("another tenant's test ping produced a delivery")
			}
		}
	})

	t.Run("credentials are never shown nor stored in the clear", func(t *testing.T) {
		const (
			token    = "TOKEN-7c1e0d5b9f"
			password = "PASSWORD-e4a8c2"
			own      = "whsec_c2VjcmV0LWtleS1vZi10aGlydHktdHdvLWJ5dGVzIQ=="
		)
		bearer := st.create(t, "key-acme", subBody(t, `{"auth":{"type":"bearer","token":"`+token+`"},"secret":"`+own+`"}`))
		basic := st.create(t, "key-acme", subBody(t, `{"auth":{"type":"basic","username":"hook","password":"`+password+`"}}`))
		var rot subscriptionView
		decodeInto(t, st.must(t, http.StatusOK, "POST", "/v1/subscriptions/"+basic.ID+"/secrets/rotate", "key-acme", ""), &rot)
		secrets := []string{own, basic.Secret, rot.Secret}
		leaks := []string{token, password}
		for _, s := range secrets {
			key, _ := strings.CutPrefix(s, "whsec_")
			raw, _ := base64.StdEncoding.DecodeString(key)
			leaks = append(leaks, s, key, string(raw))
		}

		answers := [][]byte{
			st.must(t, http.StatusOK, "GET", "/v1/subscriptions/"+bearer.ID, "key-acme", ""),
			st.must(t, http.StatusOK, "GET", "/v1/subscriptions/"+basic.ID, "key-acme", ""),
			st.must(t, http.StatusOK, "GET", "/v1/subscriptions?limit=250", "key-acme", ""),
			st.must(t, http.StatusOK, "PATCH", "/v1/subscriptions/"+basic.ID, "key-acme", `{"name":"p"}`),
		}
		for i, a := range answers {
			for _, leak := range append(leaks, "whsec_", "sealed") {
				if strings.Contains(string(a), leak) {
					t.Errorf("answer %d shows %q", i, leak)
				}
			}
		}
		recs := testinfra.Records(t, st.cfg, st.cfg.Topics.Subscriptions)
		var seen int
		for _, r := range recs {
			if string(r.Key) != bearer.ID && string(r.Key) != basic.ID {
				continue
			}
			seen++
			for _, leak := range leaks {
				if bytes.Contains(r.Value, []byte(leak)) {
					t.Errorf("record of %s at offset %d holds %q in the clear", r.Key, r.Offset, leak)
				}
			}
		}
		if seen < 4 {
			t.Errorf("found %d records of the two subscriptions, want at least 4", seen)
		}
		if st.open(t, bearer.ID, st.stored(t, bearer.ID).Secrets[0].Sealed) != own {
			t.Error("the secret brought on create is not the one stored")
		}
	})
}

func sizes(pages [][]subscriptionView) []int {
	out := make([]int, len(pages))
	for i, p := range pages {
		out[i] = len(p)
	}
	return out
}

func TestEventsAPI(t *testing.T) {
	st := newStack(t)
	events := func(t *testing.T) map[string][]record.Event {
		t.Helper()
		out := map[string][]record.Event{}
		for _, r := range testinfra.Records(t, st.cfg, st.cfg.Topics.Events) {
			var ev record.Event
			if err := st.srv.Codecs.Event.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("event record: %v", err)
			}
			if string(r.Key) != ev.Subject {
				t.Errorf("event %s keyed %q, want its subject %q", ev.ID, r.Key, ev.Subject)
			}
			out[ev.Tenant+"/"+ev.ID] = append(out[ev.Tenant+"/"+ev.ID], ev)
		}
		return out
	}

	t.Run("one event", func(t *testing.T) {
		var ans acceptedEvent
		decodeInto(t, st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme",
			`{"type":"order.created","subject":"ord_1","data":{"id":"ord_1","amount":250}}`), &ans)
		if !strings.HasPrefix(ans.ID, "evt_") || ans.Duplicate {
			t.Fatalf("answer %+v", ans)
		}
		got := events(t)["acme/"+ans.ID]
		if len(got) != 1 || got[0].Type != "order.created" || got[0].Subject != "ord_1" || got[0].Data != `{"id":"ord_1","amount":250}` {
			t.Errorf("events %+v", got)
		}
	})

	t.Run("immediate mode marks the event", func(t *testing.T) {
		// Only such an event's deliveries can have a claim: the sender
		// reads the claims of marked deliveries alone.
		var queued, now acceptedEvent
		decodeInto(t, st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme", `{"type":"order.created","data":{"n":1}}`), &queued)
		decodeInto(t, st.must(t, http.StatusOK, "POST", "/v1/events?mode=immediate", "key-acme", `{"type":"order.created","data":{"n":2}}`), &now)
		marked := map[string]bool{}
		for _, r := range testinfra.Records(t, st.cfg, st.cfg.Topics.Events) {
			var ev record.Event
			if err := st.srv.Codecs.Event.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("event record: %v", err)
			}
			marked[ev.ID] = wire.Immediate(r)
		}
		if m, ok := marked[now.ID]; !ok || !m {
			t.Errorf("the immediate event %s written %v, marked %v; want written with %s", now.ID, ok, m, wire.HeaderImmediate)
		}
		if m, ok := marked[queued.ID]; !ok || m {
			t.Errorf("the queued event %s written %v, marked %v; want written without %s", queued.ID, ok, m, wire.HeaderImmediate)
		}
	})

	t.Run("batch", func(t *testing.T) {
		var ans struct{ Events []acceptedEvent }
		decodeInto(t, st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme",
			`[{"type":"a.b","data":{"n":1}},{"type":"a.c","data":{"n":2}},{"type":"a.d","data":{"n":3}}]`), &ans)
		if len(ans.Events) != 3 {
			t.Fatalf("answer %+v", ans)
		}
		all := events(t)
		for i, e := range ans.Events {
			if got := all["acme/"+e.ID]; len(got) != 1 || got[0].Data != `{"n":`+itoa(i+1)+`}` {
				t.Errorf("event %d: %+v", i, got)
			}
		}
	})

	t.Run("a producer id is written once", func(t *testing.T) {
		body := `{"id":"ord-42:created","type":"order.created","data":{"id":42}}`
		var first, second acceptedEvent
		decodeInto(t, st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme", body), &first)
		decodeInto(t, st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme", body), &second)
		if first.ID != "ord-42:created" || first.Duplicate || second.ID != first.ID || !second.Duplicate {
			t.Errorf("answers %+v then %+v", first, second)
		}
		if !strings.Contains(string(st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme", body)), `"duplicate":true`) {
			t.Error("a repeat does not say duplicate:true")
		}

		var batch struct{ Events []acceptedEvent }
		decodeInto(t, st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-acme",
			`[{"id":"b-1","type":"a","data":{}},{"id":"b-1","type":"a","data":{}},{"id":"ord-42:created","type":"a","data":{}},{"type":"a","data":{}}]`), &batch)
		var dups []bool
		for _, e := range batch.Events {
			dups = append(dups, e.Duplicate)
		}
		if !slices.Equal(dups, []bool{false, true, true, false}) {
			t.Errorf("duplicates in a batch: %v", dups)
		}

		// Another tenant's ids are its own.
		var globex acceptedEvent
		decodeInto(t, st.must(t, http.StatusAccepted, "POST", "/v1/events", "key-globex", body), &globex)
		if globex.Duplicate {
			t.Error("another tenant's event was taken for a duplicate")
		}

		all := events(t)
		for key, want := range map[string]int{"acme/ord-42:created": 1, "acme/b-1": 1, "globex/ord-42:created": 1} {
			if got := len(all[key]); got != want {
				t.Errorf("%s written %d times, want %d", key, got, want)
			}
		}
	})
}
