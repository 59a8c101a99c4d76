package match_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/id"
	"github.com/hookline/hookline/pkg/index"
	"github.com/hookline/hookline/pkg/match"
	"github.com/hookline/hookline/pkg/record"
)

// TestDeliveryIsTheSameWhereverBuilt: the matcher and ingest's immediate
// mode build a delivery with these calls; its id is id.Delivery(event,
// subscription) and its body and target are the subscription's, so both
// build the same delivery.
func TestDeliveryIsTheSameWhereverBuilt(t *testing.T) {
	codecs, err := record.LoadCodecs()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ev := &record.Event{ID: "evt_1", Tenant: "acme", Type: "order.created", Subject: "ord_1", OccurredAt: at, ReceivedAt: at,
		Data: `{"id":"ord_1","region":"eu"}`, Changed: []string{}}
	tests := []struct {
		name    string
		sub     record.Subscription
		wantURL string
		wantErr string
	}{
		{name: "the subscription's url", sub: record.Subscription{URL: "https://a.example/hook"}, wantURL: "https://a.example/hook"},
		{name: "a route", wantURL: "https://eu.example/hook", sub: record.Subscription{URL: "https://a.example/hook",
			Routes: []record.Route{{Condition: `{"field":"data.region","op":"eq","value":"eu"}`, URL: "https://eu.example/hook"}}}},
		{name: "a route's placeholder missing", wantErr: "no string or number at data.host", sub: record.Subscription{URL: "https://a.example/hook",
			Routes: []record.Route{{Condition: `{"field":"data.region","op":"eq","value":"eu"}`, URL: "https://{{data.host}}/hook"}}, AllowedHosts: []string{"*.example"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := tc.sub
			sub.ID, sub.Tenant, sub.EventTypes, sub.Payload, sub.Enabled = "sub_1", "acme", []string{"order.created"}, "full", true
			e, err := index.Compile(&sub)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := match.Document(ev)
			if err != nil {
				t.Fatal(err)
			}
			d := match.NewDelivery(ev, e, at)
			if d.ID != id.Delivery(ev.ID, sub.ID) || d.SubscriptionID != sub.ID || d.EventID != ev.ID || d.Tenant != "acme" {
				t.Fatalf("delivery %+v: not the event's and subscription's", d)
			}
			err = match.Fill(&d, doc, match.NewShaper(ev, doc, nil), e)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || d.URL != "" || d.Route == nil {
					t.Fatalf("Fill: %v (url %q, route %v), want %q with the route kept", err, d.URL, d.Route, tc.wantErr)
				}
				return
			}
			want, _ := match.Shape(ev, doc, e)
			if err != nil || d.URL != tc.wantURL || d.Payload != want || !d.ResolveURL {
				t.Fatalf("Fill: %v, url %q payload %s, want %q and the shaped body", err, d.URL, d.Payload, tc.wantURL)
			}
			if _, err := match.Encode(codecs, &d); err != nil {
				t.Errorf("Encode: %v", err)
			}
		})
	}
}
