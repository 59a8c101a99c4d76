package event

import (
	"strings"
	"testing"
	"time"
)

func TestParseAndValidate(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string // "" with wantOK
		wantOK    bool
		wantBatch bool
	}{
		{"one event", `{"type":"order.created","data":{"id":1}}`, "", true, false},
		{"batch", `[{"type":"a","data":{}},{"type":"b","data":{}}]`, "", true, true},
		{"malformed json", `{"type":`, "", false, false},
		{"missing type", `{"data":{}}`, "type", false, false},
		{"bad type", `{"type":"order created","data":{}}`, "type", false, false},
		{"reserved type", `{"type":"hookline.endpoint.failing","data":{"subscription_id":"sub_1"}}`, "type", false, false},
		{"reserved type in capitals", `{"type":"Hookline.delivery.exhausted","data":{}}`, "type", false, false},
		{"reserved type in a batch", `[{"type":"a","data":{}},{"type":"hookline.endpoint.recovered","data":{}}]`, "[1].type", false, true},
		{"a type that only starts like it", `{"type":"hooklines.created","data":{}}`, "", true, false},
		{"data not object", `{"type":"a","data":[1]}`, "data", false, false},
		{"data missing", `{"type":"a"}`, "data", false, false},
		{"unknown field", `{"type":"a","data":{},"typo":1}`, "typo", false, false},
		{"wrong type of field", `{"type":5,"data":{}}`, "type", false, false},
		{"bad time", `{"type":"a","data":{},"occurred_at":"yesterday"}`, "occurred_at", false, false},
		{"bad id", `{"id":"has space","type":"a","data":{}}`, "id", false, false},
		{"batch item invalid", `[{"type":"a","data":{}},{"data":{}}]`, "[1].type", false, true},
		{"empty batch", `[]`, "", false, true},
		{"trailing data", `{"type":"a","data":{}} {}`, "", false, false},
		{"data not utf-8", "{\"type\":\"a\",\"data\":{\"s\":\"\xff\"}}", "data", false, false},
		{"number beyond float64", `{"type":"a","data":{"n":1e999}}`, "data", false, false},
		{"previous not object", `{"type":"a","data":{},"previous":[1]}`, "previous", false, false},
		{"previous not utf-8", "{\"type\":\"a\",\"data\":{},\"previous\":{\"s\":\"\xfe\"}}", "previous", false, false},
		{"empty changed name", `{"type":"a","data":{},"changed":["ok",""]}`, "changed[1]", false, false},
		{"subject too long", `{"type":"a","subject":"` + strings.Repeat("s", 129) + `","data":{}}`, "subject", false, false},
		{"empty body", "  ", "", false, false},
		{"data nested too deep", `{"type":"a","data":{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`, "data.x[0]", false, false},
		{"data nested deeper than the limit", `{"type":"a","data":` + strings.Repeat(`{"a":`, 128) + "1" + strings.Repeat("}", 128) + `}`, "data.a.a", false, false},
		{"previous nested too deep", `{"type":"a","data":{},"previous":{"p":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`, "previous.p[0]", false, false},
		{"batch item nested too deep", `[{"type":"a","data":{}},{"type":"a","data":{"d":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}]`, "[1].data.d", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ins, batch, errs := Parse([]byte(tc.body))
			if batch != tc.wantBatch {
				t.Errorf("batch = %v", batch)
			}
			for i := range ins {
				prefix := ""
				if batch {
					prefix = "[" + string(rune('0'+i)) + "]."
				}
				errs = append(errs, ins[i].Validate(prefix)...)
			}
			if tc.wantOK {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors %+v", errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatal("want an error")
			}
			if errs[0].Field != tc.wantField || errs[0].Detail == "" {
				t.Fatalf("error %+v, want field %q", errs[0], tc.wantField)
			}
		})
	}
}

func TestRecordDefaults(t *testing.T) {
	ins, _, errs := Parse([]byte(`{"type":"order.updated","data":{ "id" : 7 },"changed":["status"],"previous":{"status":"new"}}`))
	if errs != nil {
		t.Fatal(errs)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := ins[0].Record("acme", now)
	if !strings.HasPrefix(ev.ID, "evt_") || ev.Subject != ev.ID {
		t.Errorf("id %q subject %q", ev.ID, ev.Subject)
	}
	if ev.Tenant != "acme" || !ev.OccurredAt.Equal(now) || ev.Data != `{"id":7}` {
		t.Errorf("record %+v", ev)
	}
	if ev.Previous == nil || *ev.Previous != `{"status":"new"}` || len(ev.Changed) != 1 {
		t.Errorf("previous %v changed %v", ev.Previous, ev.Changed)
	}
}
