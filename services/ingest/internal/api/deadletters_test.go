package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/testinfra"
	"github.com/hookline/hookline/services/ingest/internal/deadletters"
)

// TestDeadLettersAPI lists dead letters read from the real DLQ topic,
// page by page, confined to the caller's tenant and portal list, and opens
// one with its body.
func TestDeadLettersAPI(t *testing.T) {
	s := newStack(t)
	s.srv.Portal = testPortal(t)
	a := s.create(t, "key-acme", subBody(t, ""))
	b := s.create(t, "key-acme", subBody(t, ""))
	g := s.create(t, "key-globex", subBody(t, ""))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	for i, d := range []record.Delivery{
		{ID: "dlv_a1", Tenant: "acme", SubscriptionID: a.ID, LastStatus: 400, LastError: "HTTP 400"},
		{ID: "dlv_b1", Tenant: "acme", SubscriptionID: b.ID, LastError: "dial tcp: refused"},
		{ID: "dlv_g1", Tenant: "globex", SubscriptionID: g.ID, LastStatus: 410},
		{ID: "dlv_a2", Tenant: "acme", SubscriptionID: a.ID, LastStatus: 400, Payload: `{"data":"<b>x</b>"}`},
	} {
		d.EventID, d.EventType, d.URL = "evt_"+d.ID, "order.created", "https://x.example"
		v, err := s.srv.Codecs.Delivery.Marshal(&d)
		if err != nil {
			t.Fatal(err)
		}
		r := &kgo.Record{Topic: s.cfg.Topics.DLQ, Key: []byte(d.SubscriptionID), Value: v, Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := s.srv.Producer.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	idx := deadletters.New(s.cfg, s.srv.Codecs, testinfra.Logger(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- idx.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	s.srv.DeadLetters = idx
	for deadline := time.Now().Add(30 * time.Second); ; {
		letters, _, err := idx.List(deadletters.Query{Tenant: "acme", Limit: 10})
		if err == nil && len(letters) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("index holds %d letters of acme, %v", len(letters), err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	list := func(token, query string) []string {
		t.Helper()
		var page deadLetterPage
		var out []string
		for range 10 {
			decodeInto(t, s.must(t, http.StatusOK, "GET", "/v1/dead-letters?limit=2"+query, token, ""), &page)
			for _, l := range page.Data {
				out = append(out, l.DeliveryID)
			}
			if page.NextCursor == nil {
				return out
			}
			query = "&cursor=" + *page.NextCursor + strings.Split(query, "&cursor=")[0]
		}
		t.Fatal("paging does not end")
		return nil
	}
	if got := list("key-acme", ""); !slices.Equal(got, []string{"dlv_a2", "dlv_b1", "dlv_a1"}) {
		t.Errorf("acme's dead letters = %v", got)
	}
	if got := list("key-acme", "&subscription_id="+a.ID+"&since="+base.Add(time.Minute).Format(time.RFC3339Nano)); !slices.Equal(got, []string{"dlv_a2"}) {
		t.Errorf("window of %s = %v", a.ID, got)
	}
	var only portalSessionAnswer
	decodeInto(t, s.must(t, http.StatusCreated, "POST", "/v1/portal/sessions", "key-acme", `{"subscription_ids":["`+b.ID+`"]}`), &only)
	if got := list(only.Token, ""); !slices.Equal(got, []string{"dlv_b1"}) {
		t.Errorf("restricted portal sees %v, want only its subscription's", got)
	}

	var one deadLetter
	decodeInto(t, s.must(t, http.StatusOK, "GET", "/v1/dead-letters/dlv_a2", "key-acme", ""), &one)
	if one.Payload != `{"data":"<b>x</b>"}` || one.SubscriptionID != a.ID || one.LastStatus != 400 {
		t.Errorf("dead letter = %+v", one)
	}
	for _, tc := range []struct{ path, token string }{
		{"/v1/dead-letters/dlv_g1", "key-acme"}, // another tenant's
		{"/v1/dead-letters/dlv_a2", only.Token}, // outside the portal's list
		{"/v1/dead-letters/dlv_nothing", "key-acme"},
	} {
		if status, out := s.call(t, "GET", tc.path, tc.token, ""); status != http.StatusNotFound {
			t.Errorf("GET %s = %d %s, want 404", tc.path, status, out)
		}
	}
	for query, field := range map[string]string{
		"?since=yesterday":  "since",
		"?until=2026-13-01": "until",
		"?limit=0":          "limit",
		"?cursor=%21%21":    "cursor",
		"?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z": "since",
	} {
		status, out := s.call(t, "GET", "/v1/dead-letters"+query, "key-acme", "")
		if status != http.StatusBadRequest || !strings.Contains(string(out), `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", query, status, out, field)
		}
	}
}
