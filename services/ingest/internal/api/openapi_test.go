package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/services/ingest/internal/deadletters"
	"github.com/hookline/hookline/services/ingest/internal/immediate"
)

// TestOpenAPIMatchesTheRoutes checks the document both ways: every route
// the server has is documented, and every documented operation reaches a
// handler rather than the catch-all 404.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	s := offlineServer(t)
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || rec.Code != 200 || doc.OpenAPI != "3.1.0" {
		t.Fatalf("GET /openapi.json: %d, %v", rec.Code, err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, rt := range s.routes() {
		if !documented[rt.pattern] {
			t.Errorf("route %s is not in openapi.json", rt.pattern)
		}
	}
	for op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{id}", "x", "{subject}", "x", "{version}", "1", "{name}", "x").Replace(path)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer key-acme")
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), "no such route") || rec.Code == http.StatusMethodNotAllowed {
			t.Errorf("documented %s has no handler (%d %s)", op, rec.Code, rec.Body)
		}
	}
}

// TestUndocumentedMethodsAre405 checks every documented path with a method
// it does not have: 405 with an Allow header listing the methods it has,
// not the catch-all 404.
func TestUndocumentedMethodsAre405(t *testing.T) {
	h := offlineServer(t).Handler()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		var allowed []string
		for m := range ops {
			if m != "parameters" {
				allowed = append(allowed, strings.ToUpper(m))
			}
		}
		slices.Sort(allowed)
		url := strings.NewReplacer("{id}", "x", "{subject}", "x", "{version}", "1", "{name}", "x").Replace(path)
		for _, method := range []string{"TRACE", "OPTIONS", "PUT", "DELETE", "PATCH", "POST", "GET"} {
			if slices.Contains(allowed, method) {
				continue
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(method, url, nil)
			req.Header.Set("Authorization", "Bearer key-acme")
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != strings.Join(allowed, ", ") ||
				rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: %d, Allow %q, %s; want 405, Allow %q", method, path, rec.Code, rec.Header().Get("Allow"),
					rec.Header().Get("Content-Type"), strings.Join(allowed, ", "))
			}
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("TRACE", "/v1/nothing", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("TRACE of an unknown path: %d, want 404", rec.Code)
	}
}

// TestOpenAPIDocumentsEveryField checks the schemas of bodies and answers
// (the delivery history's too) against the Go types: every member a body may hold is documented,
// nothing undocumented is accepted, and every member of an answer is
// documented.
func TestOpenAPIDocumentsEveryField(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for schema, typ := range map[string]reflect.Type{
		"SubscriptionCreate":    reflect.TypeFor[subscriptionInput](),
		"SubscriptionReplace":   reflect.TypeFor[updateInput](),
		"SubscriptionUpdate":    reflect.TypeFor[updateInput](),
		"Subscription":          reflect.TypeFor[subscriptionView](),
		"Health":                reflect.TypeFor[healthView](),
		"EventTypeCreate":       reflect.TypeFor[eventTypeInput](),
		"EventTypeUpdate":       reflect.TypeFor[eventTypeInput](),
		"EventType":             reflect.TypeFor[eventTypeView](),
		"DeadLetter":            reflect.TypeFor[deadletters.Letter](),
		"DeadLetterWithPayload": reflect.TypeFor[deadLetter](),
		"PortalSession":         reflect.TypeFor[portalSessionAnswer](),
		"Session":               reflect.TypeFor[sessionAnswer](),
		// The delivery history.
		"HistoryEvent":                reflect.TypeFor[eventView](),
		"HistoryEventWithDeliveries":  reflect.TypeFor[eventWithDeliveries](),
		"HistoryDelivery":             reflect.TypeFor[deliveryView](),
		"HistoryDeliveryWithAttempts": reflect.TypeFor[deliveryWithAttempts](),
		"Attempt":                     reflect.TypeFor[attemptView](),
		"BodyText":                    reflect.TypeFor[bodyText](),
		"SubscriptionStats":           reflect.TypeFor[statsAnswer](),
		"Overview":                    reflect.TypeFor[overviewAnswer](),
		"OverviewBucket":              reflect.TypeFor[overviewBucket](),
		"OverviewSubscription":        reflect.TypeFor[overviewSubscription](),
		"Redelivery":                  reflect.TypeFor[redeliveryAnswer](),
		"EventRedeliveryInput":        reflect.TypeFor[eventRedeliveryInput](),
		"RecoverInput":                reflect.TypeFor[recoverInput](),
		"Recovered":                   reflect.TypeFor[recoverAnswer](),
		// Immediate mode.
		"ImmediateAnswer":   reflect.TypeFor[immediateAnswer](),
		"ImmediateDelivery": reflect.TypeFor[immediate.Delivery](),
	} {
		s, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Errorf("openapi.json has no schema %s", schema)
			continue
		}
		documented := slices.Sorted(maps.Keys(s.Properties))
		if want := jsonFields(typ); !slices.Equal(documented, want) {
			t.Errorf("%s documents %q,\nthe API has %q", schema, documented, want)
		}
	}
}

// jsonFields lists the JSON member names of a struct type, embedded
// structs' included, sorted.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIDocumentsWhoMayCall checks each operation's security against
// the server: portalToken is listed exactly on the routes a portal
// session may call (portalRoutes), every operation that takes a
// credential documents 401, and those a portal token is refused document
// 403.
func TestOpenAPIDocumentsWhoMayCall(t *testing.T) {
	type operation struct {
		Security  *[]map[string][]string     `json:"security"`
		Responses map[string]json.RawMessage `json:"responses"`
	}
	var doc struct {
		Security []map[string][]string                 `json:"security"`
		Paths    map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Security) != 1 || doc.Security[0]["apiKey"] == nil {
		t.Fatalf("top-level security %v, want the API key", doc.Security)
	}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			pattern := strings.ToUpper(method) + " " + path
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			var schemes []string
			for _, s := range security {
				schemes = append(schemes, slices.Collect(maps.Keys(s))...)
			}
			slices.Sort(schemes)
			switch {
			case len(schemes) == 0:
				continue // public: the registry, this document, the console's page
			case portalRoutes[pattern] && !slices.Equal(schemes, []string{"apiKey", "portalToken"}):
				t.Errorf("%s: security %v, want apiKey and portalToken: a portal session may call it", pattern, schemes)
			case !portalRoutes[pattern] && !slices.Equal(schemes, []string{"apiKey"}):
				t.Errorf("%s: security %v, want apiKey only: a portal token gets 403", pattern, schemes)
			}
			if op.Responses["401"] == nil {
				t.Errorf("%s takes a credential but documents no 401", pattern)
			}
			if !portalRoutes[pattern] && op.Responses["403"] == nil {
				t.Errorf("%s refuses portal tokens but documents no 403", pattern)
			}
		}
	}
}
