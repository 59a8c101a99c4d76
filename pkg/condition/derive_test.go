package condition

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDerivedEval(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	cases := []struct {
		name, field, src string
		wantPath         []string
		want             string // JSON
	}{
		{"arithmetic", "data.total_eur", `event.data.total / 100.0`, []string{"total_eur"}, `1.495`},
		{"nested path", "data.customer.display", `event.data.customer.email.lowerAscii()`, []string{"customer", "display"}, `"ann@example.com"`},
		{"fallback with has", "data.name", `has(event.data.name) ? event.data.name : "unknown"`, []string{"name"}, `"unknown"`},
		{"fallback with optional", "data.before", `event.previous.?status.orValue("none")`, []string{"before"}, `"Pending"`},
		{"numeric key is an object key", "data.10", `event.data.count + 1.0`, []string{"10"}, `4`},
		{"object", "data.summary", `{"skus": event.data.items.map(i, i.sku), "n": size(event.data.items)}`, []string{"summary"}, `{"n":2,"skus":["A-1","B-2"]}`},
		{"null", "data.nothing", `event.data.nothing`, []string{"nothing"}, `null`},
		{"HTML stays valid JSON", "data.html", `"<b>" + event.subject`, []string{"html"}, `"\u003cb\u003eorder_42"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := CompileDerived(tc.field, tc.src, nil)
			if err != nil {
				t.Fatalf("CompileDerived: %v", err)
			}
			if !slices.Equal(d.Path, tc.wantPath) || d.Field != tc.field || d.Default != nil {
				t.Errorf("compiled %+v, want path %q and no default", d, tc.wantPath)
			}
			got, err := d.Eval(doc)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Eval = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDerivedRuntimeErrors(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	cases := []struct {
		name, src, wantErr string
	}{
		{"missing key", `event.data.missing`, "no such key"},
		{"type mismatch", `event.data.status + 1.0`, "no such overload"},
		{"int literal against an event number", `event.data.total / 100`, "no such overload"},
		{"cost limit", `event.data.nums.map(a, event.data.nums.map(b, [a, b, a, b, a, b, a, b, a, b].map(c, [c, c, c, c, c, c, c, c, c, c].map(x, x * 2.0))))`, "cost limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			def := `"n/a"`
			d, err := CompileDerived("data.x", tc.src, &def)
			if err != nil {
				t.Fatalf("CompileDerived: %v", err)
			}
			if string(d.Default) != `"n/a"` {
				t.Errorf("Default = %s", d.Default)
			}
			got, err := d.Eval(doc)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Eval = %s, %v; want an error mentioning %q", got, err, tc.wantErr)
			}
		})
	}
}

func TestCompileDerivedErrors(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name         string
		field, src   string
		def          *string
		want         map[string]string // Key -> substring of its Reason
		wantCompacts string            // on success, the compacted default
	}{
		{name: "default compacted", field: "data.a", src: `1.0`, def: str(" { \"a\" : [1, 2] } "), wantCompacts: `{"a":[1,2]}`},
		{name: "default null", field: "data.a", src: `1.0`, def: str(`null`), wantCompacts: `null`},
		{name: "not under data", field: "total", src: `1.0`, want: map[string]string{"field": "must be a path under data"}},
		{name: "data itself", field: "data", src: `1.0`, want: map[string]string{"field": "must be a path under data"}},
		{name: "envelope field", field: "metadata.x", src: `1.0`, want: map[string]string{"field": "must be a path under data"}},
		{name: "empty segment", field: "data.a..b", src: `1.0`, want: map[string]string{"field": "empty segment"}},
		{name: "trailing dot", field: "data.a.", src: `1.0`, want: map[string]string{"field": "empty segment"}},
		{name: "array index", field: "data.items[0].x", src: `1.0`, want: map[string]string{"field": "not array elements"}},
		{name: "too deep", field: "data" + strings.Repeat(".a", MaxFieldSegments), src: `1.0`, want: map[string]string{"field": "more than 32 segments"}},
		{name: "too long", field: "data." + strings.Repeat("a", MaxFieldLen), src: `1.0`, want: map[string]string{"field": "longer than 512 bytes"}},
		{name: "empty expression", field: "data.a", src: ``, want: map[string]string{"expression": "expression is empty"}},
		{name: "syntax error", field: "data.a", src: `event.data.`, want: map[string]string{"expression": "invalid expression"}},
		{name: "undeclared variable", field: "data.a", src: `data.total`, want: map[string]string{"expression": "undeclared reference to 'data'"}},
		{name: "type value", field: "data.a", src: `type(event)`, want: map[string]string{"expression": "must produce a JSON value"}},
		{name: "default not JSON", field: "data.a", src: `1.0`, def: str(`unknown`), want: map[string]string{"default": "not JSON"}},
		{name: "default empty", field: "data.a", src: `1.0`, def: str(``), want: map[string]string{"default": "not JSON"}},
		{name: "default too large", field: "data.a", src: `1.0`, def: str(`"` + strings.Repeat("x", MaxDefaultSize) + `"`), want: map[string]string{"default": "larger than 4096"}},
		{name: "every problem at once", field: "x", src: `event.`, def: str(`{`), want: map[string]string{
			"field": "under data", "expression": "invalid expression", "default": "not JSON"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := CompileDerived(tc.field, tc.src, tc.def)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CompileDerived: %v", err)
				}
				if string(d.Default) != tc.wantCompacts {
					t.Errorf("Default = %s, want %s", d.Default, tc.wantCompacts)
				}
				return
			}
			if err == nil {
				t.Fatalf("CompileDerived accepted it: %+v", d)
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("error %v is not a joined error", err)
			}
			got := map[string]string{}
			for _, e := range joined.Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) || ce.Path != "" {
					t.Fatalf("problem %v is not an *Error at the root", e)
				}
				got[ce.Key] = ce.Reason
				if ce.Field("derive[2]") != "derive[2]."+ce.Key {
					t.Errorf("Field = %q", ce.Field("derive[2]"))
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("problems %q, want one for each of %v", got, tc.want)
			}
			for key, sub := range tc.want {
				if !strings.Contains(got[key], sub) {
					t.Errorf("%s: %q, want it to mention %q", key, got[key], sub)
				}
			}
		})
	}
}
