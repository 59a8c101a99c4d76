package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/problem"
	"github.com/hookline/hookline/pkg/record"
)

// TestEventTypeCatalog is the catalog's story on the real broker: a
// tenant registers its event types, pages through them, turns validation
// on, and from then on events of that type must match the schema, with
// each problem named by its path. Another tenant sees none of it.
func TestEventTypeCatalog(t *testing.T) {
	s := newStack(t)
	const acme, globex = "key-acme", "key-globex"
	orderSchema := `{"type":"object","required":["id","total"],"properties":{"id":{"type":"string"},"total":{"type":"number","minimum":0},
		"items":{"type":"array","items":{"type":"object","required":["sku"],"properties":{"qty":{"type":"integer"}}}}}}`
	var created eventTypeView
	decodeInto(t, s.must(t, http.StatusCreated, "POST", "/v1/event-types", acme,
		`{"name":"order.created","description":"an order was placed","schema":`+orderSchema+`}`), &created)
	if created.Name != "order.created" || created.Validate || !strings.Contains(string(created.Schema), `"minimum":0`) {
		t.Fatalf("created %+v", created)
	}
	for _, name := range []string{"order.paid", "invoice.sent", "customer.created"} {
		s.must(t, http.StatusCreated, "POST", "/v1/event-types", acme, `{"name":"`+name+`"}`)
	}
	s.must(t, http.StatusConflict, "POST", "/v1/event-types", acme, `{"name":"order.paid"}`)
	s.must(t, http.StatusNotFound, "GET", "/v1/event-types/order.created", globex, "")

	// Paging, by name.
	var names []string
	cursor := ""
	for range 10 {
		var page eventTypeList
		path := "/v1/event-types?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		decodeInto(t, s.must(t, http.StatusOK, "GET", path, acme, ""), &page)
		for _, v := range page.Data {
			names = append(names, v.Name)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if want := []string{"customer.created", "invoice.sent", "order.created", "order.paid"}; !slices.Equal(names, want) {
		t.Errorf("pages %v, want %v", names, want)
	}
	var others eventTypeList
	decodeInto(t, s.must(t, http.StatusOK, "GET", "/v1/event-types", globex, ""), &others)
	if len(others.Data) != 0 {
		t.Errorf("another tenant lists %+v", others.Data)
	}

	// Not validated yet: anything goes.
	s.must(t, http.StatusAccepted, "POST", "/v1/events", acme, `{"type":"order.created","data":{"id":7}}`)
	s.must(t, http.StatusOK, "PATCH", "/v1/event-types/order.created", acme, `{"validate":true}`)

	tests := []struct {
		name   string
		key    string
		body   string
		status int
		fields []string
	}{
		{"matching data", acme, `{"type":"order.created","data":{"id":"ord_1","total":5}}`, http.StatusAccepted, nil},
		{"mismatches named by path", acme, `{"type":"order.created","data":{"id":7,"items":[{"sku":"a","qty":1},{"qty":1.5}]}}`,
			http.StatusBadRequest, []string{"data.id", "data.total", "data.items[1].sku", "data.items[1].qty"}},
		{"in a batch", acme, `[{"type":"order.paid","data":{}},{"type":"order.created","data":{"id":"ord_2","total":-1}}]`,
			http.StatusBadRequest, []string{"[1].data.total"}},
		{"a type without validation", acme, `{"type":"order.paid","data":{"anything":true}}`, http.StatusAccepted, nil},
		{"another tenant's events of that name", globex, `{"type":"order.created","data":{"id":7}}`, http.StatusAccepted, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := s.call(t, "POST", "/v1/events", tc.key, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, out)
			}
			if tc.fields == nil {
				return
			}
			var p problem.Details
			decodeInto(t, out, &p)
			got := fieldsOf(p.Errors)
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.fields))
			if !slices.Equal(got, want) {
				t.Errorf("fields %v, want %v (%s)", got, want, out)
			}
		})
	}

	// A schema that cannot work is refused; validate needs a schema.
	status, out := s.call(t, "PATCH", "/v1/event-types/order.paid", acme, `{"schema":{"$ref":"https://example.com/s.json"}}`)
	if status != http.StatusBadRequest || !strings.Contains(string(out), `"field":"schema"`) {
		t.Errorf("remote $ref: %d %s", status, out)
	}
	status, out = s.call(t, "PATCH", "/v1/event-types/order.paid", acme, `{"validate":true}`)
	if status != http.StatusBadRequest || !strings.Contains(string(out), `"field":"validate"`) {
		t.Errorf("validate without a schema: %d %s", status, out)
	}
	// Removing the schema with validation on is the same mistake; removing both works.
	s.must(t, http.StatusBadRequest, "PATCH", "/v1/event-types/order.created", acme, `{"schema":null}`)
	var plain eventTypeView
	decodeInto(t, s.must(t, http.StatusOK, "PATCH", "/v1/event-types/order.created", acme, `{"schema":null,"validate":false}`), &plain)
	if plain.Schema != nil || plain.Validate || plain.Description != "an order was placed" {
		t.Errorf("after removing the schema: %+v", plain)
	}
	s.must(t, http.StatusAccepted, "POST", "/v1/events", acme, `{"type":"order.created","data":{"id":7}}`)
	s.must(t, http.StatusNoContent, "DELETE", "/v1/event-types/order.created", acme, "")
	s.must(t, http.StatusNotFound, "GET", "/v1/event-types/order.created", acme, "")
}

// TestEventTypeValidation covers what is refused before anything is written.
func TestEventTypeValidation(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{}`, "name"},
		{`{"name":"order.*"}`, "name"},
		{`{"name":"order created"}`, "name"},
		{`{"name":"a","description":"` + strings.Repeat("d", 2049) + `"}`, "description"},
		{`{"name":"a","schema":{"type":"nope"}}`, "schema"},
		{`{"name":"a","schema":"a string"}`, "schema"},
		{`{"name":"a","validate":true}`, "validate"},
	} {
		var in eventTypeInput
		if errs := decodeStrict([]byte(tc.body), &in); errs != nil {
			t.Fatal(errs)
		}
		errs := applyEventType(&in, &record.EventType{}, true)
		if len(errs) != 1 || errs[0].Field != tc.field {
			t.Errorf("%s: errors %+v, want %s", tc.body, errs, tc.field)
		}
	}
}
