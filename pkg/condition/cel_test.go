package condition

import (
	"reflect"
	"strings"
	"testing"
)

func TestCompileExpressionErrors(t *testing.T) {
	cases := []struct {
		name    string
		src     string
		wantErr string // substring
	}{
		{"empty", "", "expression is empty"},
		{"syntax", `event.type == `, "invalid expression"},
		{"unbalanced", `(event.type == "a"`, "invalid expression"},
		{"undeclared variable", `evt.type == "a"`, "undeclared reference to 'evt'"},
		{"string result", `event.type + "x"`, "expression must evaluate to a bool, not string"},
		{"int result", `1 + 2`, "expression must evaluate to a bool, not int"},
		{"list result", `[true]`, "expression must evaluate to a bool, not list(bool)"},
		{"type error", `"a" + 1 == "a1"`, "found no matching overload"},
		{"too long", strings.Repeat(" ", MaxExpressionLen) + "true", "longer than 4096 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := CompileExpression(tc.src)
			if err == nil {
				t.Fatalf("CompileExpression(%q) = %v, want error", tc.src, e)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestExpressionMatch(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	cases := []struct {
		name    string
		src     string
		want    bool
		wantErr string // substring; "" means no error
	}{
		{"type", `event.type == "order.updated"`, true, ""},
		{"type miss", `event.type == "order.created"`, false, ""},
		{"double vs int literal", `event.data.total > 100`, true, ""},
		{"double vs int equality", `event.data.count == 3`, true, ""},
		{"string is not number", `event.data.code == 1`, false, ""},
		{"nested", `event.data.customer.address.country in ["DE", "FR"]`, true, ""},
		{"array index", `event.data.items[1].sku == "B-2"`, true, ""},
		{"exists macro", `event.data.items.exists(i, i.sku.startsWith("B-"))`, true, ""},
		{"all macro", `event.data.items.all(i, i.qty >= 2)`, false, ""},
		{"changed", `"total" in event.changed`, true, ""},
		{"has guard on missing", `has(event.data.missing) && event.data.missing == 1`, false, ""},
		{"optional fallback", `event.data.?missing.orValue("none") == "none"`, true, ""},
		{"strings extension", `event.data.customer.email.lowerAscii().endsWith("@example.com")`, true, ""},
		{"regex", `event.subject.matches("^order_[0-9]+$")`, true, ""},
		{"null", `event.data.nothing == null`, true, ""},
		{"dyn bool result", `event.data.flag`, true, ""},
		{"missing key is an error", `event.data.missing == 1`, false, "no such key"},
		{"dyn non-bool result is an error", `event.data.status`, false, "expression returned string, not a bool"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := CompileExpression(tc.src)
			if err != nil {
				t.Fatalf("CompileExpression: %v", err)
			}
			if e.String() != tc.src {
				t.Errorf("String() = %q", e.String())
			}
			got, err := e.Match(doc)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Match: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Match error = %v, want it to contain %q", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExpressionCostLimit(t *testing.T) {
	// A pairwise comparison over 200 elements costs far more than the limit;
	// the same expression over 3 elements does not.
	src := `event.data.items.all(a, event.data.items.all(b, a != b || a == b))`
	e, err := CompileExpression(src)
	if err != nil {
		t.Fatal(err)
	}
	small := mustDoc(t, orderEvent)
	if ok, err := e.Match(small); err != nil || !ok {
		t.Fatalf("small event: Match = %v, %v; want true, nil", ok, err)
	}
	items := make([]any, 200)
	for i := range items {
		items[i] = float64(i)
	}
	big := NewDocument(map[string]any{"data": map[string]any{"items": items}})
	ok, err := e.Match(big)
	if err == nil || !strings.Contains(err.Error(), "cost limit exceeded") || ok {
		t.Fatalf("big event: Match = %v, %v; want false and a cost limit error", ok, err)
	}
}

func TestExpressionOnEmptyDocument(t *testing.T) {
	e, err := CompileExpression(`!has(event.type)`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.Match(Document{}); err != nil || !ok {
		t.Fatalf("Match(zero Document) = %v, %v", ok, err)
	}
}

func TestValueExpr(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	cases := []struct {
		name string
		src  string
		want any
	}{
		{"string", `event.data.customer.email.lowerAscii()`, "ann@example.com"},
		{"double", `event.data.total * 2.0`, 299.0},
		{"int becomes float64", `size(event.data.items)`, 2.0},
		{"bool", `event.data.flag && !event.data.off`, true},
		{"null", `event.data.nothing`, nil},
		{"fallback present", `event.previous.?status.orValue("unknown")`, "Pending"},
		{"fallback absent", `event.data.?nickname.orValue(event.subject)`, "order_42"},
		{"empty optional is null", `event.data.?nickname`, nil},
		{"list", `event.data.items.map(i, i.sku)`, []any{"A-1", "B-2"}},
		{"map", `{"id": event.id, "n": event.data.count}`, map[string]any{"id": "evt_1", "n": 3.0}},
		{"document subtree", `event.data.customer.address`, map[string]any{"country": "DE"}},
		{"timestamp becomes string", `timestamp(event.data.created)`, "2024-05-01T10:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := CompileValue(tc.src)
			if err != nil {
				t.Fatalf("CompileValue: %v", err)
			}
			got, err := v.Eval(doc)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Eval = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestValueExprErrors(t *testing.T) {
	if _, err := CompileValue(`event.data.`); err == nil {
		t.Error("CompileValue accepted a syntax error")
	}
	v, err := CompileValue(`event.data.missing`)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Eval(mustDoc(t, orderEvent)); err == nil || !strings.Contains(err.Error(), "no such key") {
		t.Errorf("Eval = %v, %v; want a no such key error", got, err)
	}
}
