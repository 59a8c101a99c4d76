package condition

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// orderEvent is the document most cases run against: an order update as
// the matcher builds it.
const orderEvent = `{
  "id": "evt_1", "type": "order.updated", "subject": "order_42", "source": "shop",
  "data": {
    "status": "Active", "total": 149.5, "count": 3, "zero": 0, "code": "1",
    "flag": true, "off": false, "nothing": null, "empty": "",
    "tags": ["vip", "eu"], "nums": [1, 2, 3], "mixed": ["1", 2, true, null],
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
    "customer": {"email": "Ann@Example.com", "address": {"country": "DE"}},
    "created": "2024-05-01T10:00:00Z", "obj": {}, "10": "ten"
  },
  "changed": ["status", "total"],
  "previous": {"status": "Pending"},
  "metadata": {"tenant": "acme", "test": "false"}
}`

func mustDoc(t testing.TB, src string) Document {
	t.Helper()
	doc, err := DecodeDocument([]byte(src))
	if err != nil {
		t.Fatalf("DecodeDocument: %v", err)
	}
	return doc
}

func mustParse(t testing.TB, src string) *Condition {
	t.Helper()
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse(%s): %v", src, err)
	}
	return c
}

func leafJSON(field, op string, value any) string {
	v, err := json.Marshal(value)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf(`{"field":%q,"op":%q,"value":%s}`, field, op, v)
}

func TestMatchOperators(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	cases := []struct {
		name string
		cond string
		want bool
	}{
		// eq / ne, type-aware
		{"eq string", leafJSON("data.status", "eq", "Active"), true},
		{"eq string is case-sensitive", leafJSON("data.status", "eq", "active"), false},
		{"eq number", leafJSON("data.total", "eq", 149.5), true},
		{"eq integer number", leafJSON("data.count", "eq", 3), true},
		{"eq number written with exponent", `{"field":"data.count","op":"eq","value":0.3e1}`, true},
		{"eq string never equals number", leafJSON("data.code", "eq", 1), false},
		{"eq number never equals string", leafJSON("data.count", "eq", "3"), false},
		{"eq bool", leafJSON("data.flag", "eq", true), true},
		{"eq bool false", leafJSON("data.off", "eq", false), true},
		{"eq bool never equals number", leafJSON("data.flag", "eq", 1), false},
		{"eq zero is not false", leafJSON("data.zero", "eq", false), false},
		{"eq empty string is not null", leafJSON("data.empty", "eq", nil), false},
		{"eq null", leafJSON("data.nothing", "eq", nil), true},
		{"eq null is not false", leafJSON("data.nothing", "eq", false), false},
		{"eq on array field is false", leafJSON("data.tags", "eq", "vip"), false},
		{"eq on object field is false", leafJSON("data.obj", "eq", nil), false},
		{"ne different value", leafJSON("data.status", "ne", "Draft"), true},
		{"ne same value", leafJSON("data.status", "ne", "Active"), false},
		{"ne different type", leafJSON("data.code", "ne", 1), true},
		{"ne null on null", leafJSON("data.nothing", "ne", nil), false},
		{"top-level field", leafJSON("type", "eq", "order.updated"), true},
		{"subject", leafJSON("subject", "eq", "order_42"), true},

		// in / nin
		{"in strings", leafJSON("data.status", "in", []any{"Draft", "Active"}), true},
		{"in strings absent", leafJSON("data.status", "in", []any{"Draft", "Closed"}), false},
		{"in numbers", leafJSON("data.count", "in", []any{1, 3, 5}), true},
		{"in string vs number", leafJSON("data.code", "in", []any{1, 2}), false},
		{"in number vs string", leafJSON("data.count", "in", []any{"3"}), false},
		{"in bool", leafJSON("data.off", "in", []any{false}), true},
		{"in bool wrong", leafJSON("data.flag", "in", []any{false, "true", 1}), false},
		{"in null", leafJSON("data.nothing", "in", []any{"x", nil}), true},
		{"in empty list", leafJSON("data.status", "in", []any{}), false},
		{"in on array field is false", leafJSON("data.tags", "in", []any{"vip"}), false},
		{"nin absent", leafJSON("data.status", "nin", []any{"Draft", "Closed"}), true},
		{"nin present", leafJSON("data.status", "nin", []any{"Active"}), false},
		{"nin empty list", leafJSON("data.status", "nin", []any{}), true},

		// ordered comparisons
		{"gt number", leafJSON("data.total", "gt", 100), true},
		{"gt number equal", leafJSON("data.count", "gt", 3), false},
		{"gte number equal", leafJSON("data.count", "gte", 3), true},
		{"lt number", leafJSON("data.total", "lt", 149.6), true},
		{"lt number false", leafJSON("data.total", "lt", 149.5), false},
		{"lte number equal", leafJSON("data.total", "lte", 149.5), true},
		{"gt negative", leafJSON("data.zero", "gt", -0.5), true},
		{"gt string lexical", leafJSON("data.created", "gt", "2024-01-01T00:00:00Z"), true},
		{"lt string lexical", leafJSON("data.created", "lt", "2024-01-01T00:00:00Z"), false},
		{"gte string equal", leafJSON("data.status", "gte", "Active"), true},
		{"lexical is bytewise: uppercase sorts first", leafJSON("data.status", "lt", "active"), true},
		{"gt string field vs number value", leafJSON("data.code", "gt", 0), false},
		{"lt string field vs number value", leafJSON("data.code", "lt", 100), false},
		{"gt number field vs string value", leafJSON("data.count", "gt", "1"), false},
		{"gt on bool is false", leafJSON("data.flag", "gt", 0), false},
		{"gt on null is false", leafJSON("data.nothing", "lt", 1), false},
		{"gt on array is false", leafJSON("data.nums", "gt", 0), false},

		// exists
		{"exists implicit true", `{"field":"data.status","op":"exists"}`, true},
		{"exists true", leafJSON("data.status", "exists", true), true},
		{"exists false on present", leafJSON("data.status", "exists", false), false},
		{"exists on null value", leafJSON("data.nothing", "exists", true), true},
		{"exists on empty object", leafJSON("data.obj", "exists", true), true},
		{"exists missing", `{"field":"data.missing","op":"exists"}`, false},
		{"exists false on missing", leafJSON("data.missing", "exists", false), true},

		// contains, prefix, suffix
		{"contains substring", leafJSON("data.customer.email", "contains", "@Example."), true},
		{"contains substring absent", leafJSON("data.customer.email", "contains", "@example."), false},
		{"contains empty substring", leafJSON("data.status", "contains", ""), true},
		{"contains array element", leafJSON("data.tags", "contains", "vip"), true},
		{"contains array element absent", leafJSON("data.tags", "contains", "us"), false},
		{"contains array is not substring", leafJSON("data.tags", "contains", "vi"), false},
		{"contains number element", leafJSON("data.nums", "contains", 2), true},
		{"contains number vs string element", leafJSON("data.nums", "contains", "2"), false},
		{"contains in mixed array is type-aware", leafJSON("data.mixed", "contains", 1), false},
		{"contains null element", leafJSON("data.mixed", "contains", nil), true},
		{"contains on changed", leafJSON("changed", "contains", "status"), true},
		{"contains number in string field", leafJSON("data.code", "contains", 1), false},
		{"contains on number field", leafJSON("data.count", "contains", "3"), false},
		{"prefix", leafJSON("type", "prefix", "order."), true},
		{"prefix absent", leafJSON("type", "prefix", "invoice."), false},
		{"prefix on number", leafJSON("data.count", "prefix", "3"), false},
		{"suffix", leafJSON("data.customer.email", "suffix", ".com"), true},
		{"suffix absent", leafJSON("data.customer.email", "suffix", ".org"), false},
		{"suffix on array", leafJSON("data.tags", "suffix", "eu"), false},

		// regex
		{"regex unanchored", leafJSON("data.customer.email", "regex", `@example\.com`), false},
		{"regex case-insensitive flag", leafJSON("data.customer.email", "regex", `(?i)@example\.com$`), true},
		{"regex anchored", leafJSON("subject", "regex", `^order_[0-9]+$`), true},
		{"regex anchored miss", leafJSON("subject", "regex", `^order_[a-z]+$`), false},
		{"regex on number", leafJSON("data.count", "regex", `3`), false},

		// paths
		{"nested object", leafJSON("data.customer.address.country", "eq", "DE"), true},
		{"array element by dotted index", leafJSON("data.items.1.sku", "eq", "B-2"), true},
		{"array element by bracket index", leafJSON("data.items[0].sku", "eq", "A-1"), true},
		{"bracket on scalar array", leafJSON("data.tags[1]", "eq", "eu"), true},
		{"array index past the end is missing", leafJSON("data.items.2.sku", "exists", true), false},
		{"array index past the end ne", leafJSON("data.items.2.sku", "ne", "x"), true},
		{"numeric key on object", leafJSON("data.10", "eq", "ten"), true},
		{"non-index key on array is missing", leafJSON("data.items.first", "exists", false), true},
		{"path through a string is missing", leafJSON("data.status.length", "exists", false), true},
		{"path through null is missing", leafJSON("data.nothing.x", "exists", false), true},
		{"previous values", leafJSON("previous.status", "eq", "Pending"), true},
		{"metadata", leafJSON("metadata.tenant", "eq", "acme"), true},
		{"metadata string is not bool", leafJSON("metadata.test", "eq", false), false},

		// missing fields: only ne, nin and exists:false match
		{"missing eq", leafJSON("data.missing", "eq", "x"), false},
		{"missing eq null", leafJSON("data.missing", "eq", nil), false},
		{"missing ne", leafJSON("data.missing", "ne", "x"), true},
		{"missing ne null", leafJSON("data.missing", "ne", nil), true},
		{"missing in", leafJSON("data.missing", "in", []any{"x", nil}), false},
		{"missing nin", leafJSON("data.missing", "nin", []any{"x"}), true},
		{"missing gt", leafJSON("data.missing", "gt", 0), false},
		{"missing lte", leafJSON("data.missing", "lte", 0), false},
		{"missing contains", leafJSON("data.missing", "contains", ""), false},
		{"missing prefix", leafJSON("data.missing", "prefix", ""), false},
		{"missing suffix", leafJSON("data.missing", "suffix", ""), false},
		{"missing regex", leafJSON("data.missing", "regex", ".*"), false},
		{"missing top-level", leafJSON("nope", "eq", "x"), false},
		{"not of missing eq", `{"not":` + leafJSON("data.missing", "eq", "x") + `}`, true},

		// groups
		{"all true", `{"all":[` + leafJSON("data.status", "eq", "Active") + `,` + leafJSON("data.count", "gte", 3) + `]}`, true},
		{"all one false", `{"all":[` + leafJSON("data.status", "eq", "Active") + `,` + leafJSON("data.count", "gt", 3) + `]}`, false},
		{"any one true", `{"any":[` + leafJSON("data.status", "eq", "Draft") + `,` + leafJSON("data.count", "eq", 3) + `]}`, true},
		{"any none true", `{"any":[` + leafJSON("data.status", "eq", "Draft") + `,` + leafJSON("data.count", "eq", 4) + `]}`, false},
		{"not", `{"not":` + leafJSON("data.status", "eq", "Draft") + `}`, true},
		{"not not", `{"not":{"not":` + leafJSON("data.status", "eq", "Draft") + `}}`, false},
		{"all of any and not", `{"all":[
			{"any":[` + leafJSON("type", "eq", "order.created") + `,` + leafJSON("type", "eq", "order.updated") + `]},
			{"not":{"any":[` + leafJSON("metadata.test", "eq", "true") + `,` + leafJSON("data.total", "lt", 10) + `]}},
			` + leafJSON("changed", "contains", "total") + `
		]}`, true},
		{"any of alls", `{"any":[
			{"all":[` + leafJSON("data.status", "eq", "Active") + `,` + leafJSON("data.flag", "eq", false) + `]},
			{"all":[` + leafJSON("data.customer.address.country", "in", []any{"DE", "FR"}) + `,` + leafJSON("data.items.0.qty", "gte", 2) + `]}
		]}`, true},
		{"any of alls none", `{"any":[
			{"all":[` + leafJSON("data.status", "eq", "Active") + `,` + leafJSON("data.flag", "eq", false) + `]},
			{"all":[` + leafJSON("data.customer.address.country", "in", []any{"DE", "FR"}) + `,` + leafJSON("data.items.0.qty", "gt", 2) + `]}
		]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.cond)
			if got := c.Match(doc); got != tc.want {
				t.Errorf("Match(%s) = %v, want %v", tc.cond, got, tc.want)
			}
		})
	}
}

func TestMatchHandBuiltDocument(t *testing.T) {
	// The matcher may build the root itself: changed as []string, metadata
	// as map[string]string, numbers of Go integer types or json.Number.
	doc := NewDocument(map[string]any{
		"type":     "user.updated",
		"changed":  []string{"email", "name"},
		"metadata": map[string]string{"plan": "pro"},
		"data": map[string]any{
			"age":    int64(42),
			"score":  json.Number("7.5"),
			"rank":   uint8(3),
			"ratio":  float32(0.5),
			"nested": []map[string]any{{"x": 1}}, // an unsupported shape
			"weird":  struct{}{},
		},
	})
	cases := []struct {
		name string
		cond string
		want bool
	}{
		{"[]string contains", leafJSON("changed", "contains", "email"), true},
		{"[]string contains absent", leafJSON("changed", "contains", "phone"), false},
		{"[]string contains number", leafJSON("changed", "contains", 1), false},
		{"[]string index", leafJSON("changed.1", "eq", "name"), true},
		{"[]string index past end", leafJSON("changed.2", "exists", true), false},
		{"map[string]string", leafJSON("metadata.plan", "eq", "pro"), true},
		{"map[string]string missing", leafJSON("metadata.tier", "ne", "pro"), true},
		{"int64", leafJSON("data.age", "eq", 42), true},
		{"int64 gt", leafJSON("data.age", "gt", 41.5), true},
		{"int64 in", leafJSON("data.age", "in", []any{41, 42}), true},
		{"int64 is not string", leafJSON("data.age", "eq", "42"), false},
		{"json.Number", leafJSON("data.score", "lt", 8), true},
		{"uint8", leafJSON("data.rank", "eq", 3), true},
		{"float32", leafJSON("data.ratio", "eq", 0.5), true},
		{"unsupported shape exists", leafJSON("data.nested", "exists", true), true},
		{"unsupported shape is not walked", leafJSON("data.nested.0.x", "exists", true), false},
		{"unsupported type never equal", leafJSON("data.weird", "eq", nil), false},
		{"unsupported type ne", leafJSON("data.weird", "ne", nil), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustParse(t, tc.cond).Match(doc); got != tc.want {
				t.Errorf("Match(%s) = %v, want %v", tc.cond, got, tc.want)
			}
		})
	}
}

func TestMatchEmptyDocument(t *testing.T) {
	var zero Document
	cases := []struct {
		cond string
		want bool
	}{
		{leafJSON("type", "eq", "x"), false},
		{leafJSON("type", "ne", "x"), true},
		{leafJSON("type", "exists", false), true},
	}
	for _, tc := range cases {
		if got := mustParse(t, tc.cond).Match(zero); got != tc.want {
			t.Errorf("zero Document: Match(%s) = %v, want %v", tc.cond, got, tc.want)
		}
	}
}

func TestLargeInList(t *testing.T) {
	var strs, nums []any
	for i := range MaxListLen / 2 {
		strs = append(strs, fmt.Sprintf("sku-%d", i))
		nums = append(nums, i*2) // even numbers only
	}
	mixed := append(slices.Clone(strs), nums...)
	c := mustParse(t, `{"any":[`+leafJSON("data.sku", "in", mixed)+`]}`)
	notIn := mustParse(t, leafJSON("data.sku", "nin", mixed))
	cases := []struct {
		name string
		sku  any
		want bool
	}{
		{"first string", "sku-0", true},
		{"last string", fmt.Sprintf("sku-%d", MaxListLen/2-1), true},
		{"absent string", "sku-x", false},
		{"first number", 0, true},
		{"last number", MaxListLen - 2, true},
		{"absent number", 7, false},
		{"number as string", "2", false},
		{"string that looks like no number", "0", false},
		{"bool", true, false},
		{"null", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(map[string]any{"data": map[string]any{"sku": tc.sku}})
			doc := mustDoc(t, string(raw))
			if got := c.Match(doc); got != tc.want {
				t.Errorf("in: got %v, want %v", got, tc.want)
			}
			if got := notIn.Match(doc); got == tc.want {
				t.Errorf("nin: got %v, want %v", got, !tc.want)
			}
		})
	}
}

func TestNilCondition(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	for _, raw := range []string{"", "  \n\t", "null", " null "} {
		c, err := Parse([]byte(raw))
		if err != nil || c != nil {
			t.Fatalf("Parse(%q) = %v, %v; want nil, nil", raw, c, err)
		}
		if !c.Match(doc) || !c.Match(Document{}) {
			t.Errorf("nil Condition from %q does not match", raw)
		}
		if c.Fields() != nil {
			t.Errorf("nil Condition Fields = %v", c.Fields())
		}
	}
	if c, err := Parse(nil); c != nil || err != nil {
		t.Errorf("Parse(nil) = %v, %v", c, err)
	}
}

func TestFields(t *testing.T) {
	c := mustParse(t, `{"all":[
		{"field":"data.items[0].sku","op":"eq","value":"x"},
		{"any":[{"field":"type","op":"prefix","value":"o"},{"field":"data.items.0.sku","op":"ne","value":"y"}]},
		{"not":{"field":"changed","op":"contains","value":"status"}}
	]}`)
	want := []string{"data.items.0.sku", "type", "changed"}
	got := c.Fields()
	if !slices.Equal(got, want) {
		t.Fatalf("Fields() = %q, want %q", got, want)
	}
	got[0] = "mutated"
	if c.Fields()[0] != "data.items.0.sku" {
		t.Error("Fields returns the condition's own slice")
	}
}

func TestParseErrors(t *testing.T) {
	leaf := leafJSON("data.status", "eq", "x")
	cases := []struct {
		name      string
		cond      string
		wantErr   string // exact Error()
		wantField string // Field("condition")
	}{
		{"unknown op deep", `{"all":[` + leaf + `,` + leaf + `,{"any":[{"field":"data.status","op":"equals","value":"x"}]}]}`,
			`all[2].any[0]: unknown op "equals"`, "condition.all[2].any[0].op"},
		{"unknown op at root", `{"field":"a","op":"like","value":"x"}`, `unknown op "like"`, "condition.op"},
		{"op not a string", `{"field":"a","op":1,"value":"x"}`, `"op" must be a string, got number`, "condition.op"},
		{"missing op", `{"field":"a","value":"x"}`, `missing "op"`, "condition.op"},
		{"missing field", `{"any":[{"op":"eq","value":"x"}]}`, `any[0]: missing "field"`, "condition.any[0].field"},
		{"field not a string", `{"field":["a"],"op":"eq","value":"x"}`, `"field" must be a string, got array`, "condition.field"},
		{"empty field", `{"field":"","op":"eq","value":"x"}`, `empty field path`, "condition.field"},
		{"field empty segment", `{"not":{"field":"data..x","op":"eq","value":"x"}}`,
			`not: field path "data..x" has an empty segment at byte 5`, "condition.not.field"},
		{"field trailing dot", `{"field":"data.","op":"eq","value":"x"}`, `field path "data." ends with '.'`, "condition.field"},
		{"field bad bracket", `{"field":"data.items[x]","op":"eq","value":"x"}`, `field path "data.items[x]": "x" is not an array index`, "condition.field"},
		{"field unclosed bracket", `{"field":"items[0","op":"eq","value":"x"}`, `field path "items[0" has an unclosed '[' at byte 5`, "condition.field"},
		{"field junk after bracket", `{"field":"items[0]x","op":"eq","value":"x"}`, `field path "items[0]x" has an unexpected 'x' at byte 8`, "condition.field"},
		{"missing value", `{"field":"a","op":"eq"}`, `missing "value" for op "eq"`, "condition.value"},
		{"eq array value", `{"field":"a","op":"eq","value":[1]}`, `op "eq" needs a string, number, boolean or null value, got array`, "condition.value"},
		{"contains object value", `{"field":"a","op":"contains","value":{}}`, `op "contains" needs a string, number, boolean or null value, got object`, "condition.value"},
		{"gt bool value", `{"field":"a","op":"gt","value":true}`, `op "gt" needs a number or string value, got boolean`, "condition.value"},
		{"lte null value", `{"field":"a","op":"lte","value":null}`, `op "lte" needs a number or string value, got null`, "condition.value"},
		{"prefix number value", `{"field":"a","op":"prefix","value":1}`, `op "prefix" needs a string value, got number`, "condition.value"},
		{"in scalar value", `{"field":"a","op":"in","value":"x"}`, `op "in" needs an array value, got string`, "condition.value"},
		{"nin nested array element", `{"all":[{"field":"a","op":"nin","value":["x",["y"]]}]}`,
			`all[0]: op "nin" list values must be strings, numbers, booleans or null, got array`, "condition.all[0].value[1]"},
		{"exists string value", `{"field":"a","op":"exists","value":"yes"}`, `op "exists" needs a boolean value or none, got string`, "condition.value"},
		{"bad regex", `{"field":"a","op":"regex","value":"(["}`, "invalid regex: error parsing regexp: missing closing ]: `[`", "condition.value"},
		{"regex backreference is not RE2", `{"field":"a","op":"regex","value":"(a)\\1"}`, "invalid regex: error parsing regexp: invalid escape sequence: `\\1`", "condition.value"},
		{"unknown leaf key", `{"field":"a","op":"eq","value":"x","comment":"hi"}`, `unknown key "comment"`, "condition.comment"},
		{"group with extra key", `{"all":[` + leaf + `],"field":"a"}`, `unexpected key "field" beside "all"`, "condition.field"},
		{"two groups", `{"all":[` + leaf + `],"any":[` + leaf + `]}`, `"any" cannot be combined with "all" in one node`, "condition.any"},
		{"all not an array", `{"all":` + leaf + `}`, `"all" must be an array of conditions, got object`, "condition.all"},
		{"empty any", `{"all":[{"any":[]}]}`, `all[0]: "any" must hold at least one condition`, "condition.all[0].any"},
		{"not of array", `{"not":[` + leaf + `]}`, `not: condition must be an object, got array`, "condition.not"},
		{"child not an object", `{"any":[` + leaf + `,"data.status"]}`, `any[1]: condition must be an object, got string`, "condition.any[1]"},
		{"child null", `{"any":[null]}`, `any[0]: condition must be an object, got null`, "condition.any[0]"},
		{"empty object", `{}`, `empty condition: want "all", "any", "not" or a "field"/"op"/"value" leaf`, "condition"},
		{"root array", `[` + leaf + `]`, `condition must be an object, got array`, "condition"},
		{"invalid JSON", `{"all":[`, `invalid JSON: json: unexpected end of JSON input at offset 8`, "condition"},
		{"trailing garbage", leaf + `x`, `invalid JSON: json: invalid character 'x' after top-level value at offset 45`, "condition"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.cond))
			if err == nil {
				t.Fatalf("Parse(%s) = %v, want error", tc.cond, c)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error = %q\n      want %q", err.Error(), tc.wantErr)
			}
			if got := ce.Field("condition"); got != tc.wantField {
				t.Errorf("Field = %q, want %q", got, tc.wantField)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, err := Parse([]byte(`{"any":[{"field":"a","op":"eq","value":1},{"not":{"field":"b","op":"regex","value":1}}]}`))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	if ce.Path != "any[1].not" || ce.Key != "value" || ce.Reason != `op "regex" needs a string value, got number` {
		t.Errorf("Error = %+v", *ce)
	}
	if got := (&Error{Reason: "r"}).Field(""); got != "" {
		t.Errorf(`Field("") at root = %q`, got)
	}
}

func nestedNot(depth int) string {
	s := leafJSON("type", "eq", "x")
	for range depth - 1 {
		s = `{"not":` + s + `}`
	}
	return s
}

func allOf(n int) string {
	leaves := make([]string, n)
	for i := range leaves {
		leaves[i] = leafJSON(fmt.Sprintf("data.f%d", i), "eq", i)
	}
	return `{"all":[` + strings.Join(leaves, ",") + `]}`
}

func listOf(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestBounds(t *testing.T) {
	cases := []struct {
		name    string
		cond    string
		wantErr string // "" means it parses
	}{
		{"depth at limit", nestedNot(MaxDepth), ""},
		{"depth over limit", nestedNot(MaxDepth + 1),
			strings.Repeat("not.", MaxDepth)[:4*MaxDepth-1] + ": conditions nest deeper than 32 levels"},
		{"nodes at limit", allOf(MaxNodes - 1), ""},
		{"nodes over limit", allOf(MaxNodes), "all[255]: condition has more than 256 nodes"},
		{"list at limit", leafJSON("data.x", "in", listOf(MaxListLen)), ""},
		{"list over limit", leafJSON("data.x", "nin", listOf(MaxListLen+1)), `op "nin" list has 1001 values, more than 1000`},
		{"regex at limit", leafJSON("data.x", "regex", strings.Repeat("a", MaxRegexLen)), ""},
		{"regex over limit", leafJSON("data.x", "regex", strings.Repeat("a", MaxRegexLen+1)), "regex longer than 1024 bytes"},
		{"regex program over limit", leafJSON("data.x", "regex", `\\pL{1000}\\pN{1000}\\pL{1000}`),
			"invalid regex: regex compiles to 3008 instructions, more than 2048 (counted repeats multiply it)"},
		{"field at segment limit", leafJSON(strings.Repeat("a.", MaxFieldSegments-1)+"a", "exists", true), ""},
		{"field over segment limit", leafJSON(strings.Repeat("a.", MaxFieldSegments)+"a", "exists", true),
			fmt.Sprintf("field path %q has more than 32 segments", strings.Repeat("a.", MaxFieldSegments)+"a")},
		{"field over length limit", leafJSON(strings.Repeat("a", MaxFieldLen+1), "exists", true), "field path longer than 512 bytes"},
		{"input over size limit", leafJSON("data.x", "eq", strings.Repeat("a", MaxSize)), "condition is larger than 65536 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.cond))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("Parse error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestDeepNotEvaluates(t *testing.T) {
	// An odd number of nots around a false leaf is true.
	c := mustParse(t, nestedNot(MaxDepth))
	doc := mustDoc(t, `{"type":"y"}`)
	if want := (MaxDepth-1)%2 == 1; c.Match(doc) != want {
		t.Errorf("Match = %v, want %v", c.Match(doc), want)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	var strs []any
	for i := range 20 {
		strs = append(strs, fmt.Sprintf("s%d", i))
	}
	conds := map[string]string{
		"five leaves": benchCondition,
		"regex":       leafJSON("data.customer.email", "regex", `(?i)^[a-z]+@example\.com$`),
		"in set":      leafJSON("data.status", "in", append(strs, "Active")),
		"contains":    leafJSON("data.mixed", "contains", nil),
		"missing":     leafJSON("data.a.b.c", "ne", 1),
	}
	for name, src := range conds {
		c := mustParse(t, src)
		if !c.Match(doc) {
			t.Fatalf("%s: condition does not match the event", name)
		}
		if n := testing.AllocsPerRun(100, func() { c.Match(doc) }); n != 0 {
			t.Errorf("%s: Match allocates %.0f times per run", name, n)
		}
		var memo Memo
		if n := testing.AllocsPerRun(100, func() { c.Match(doc.WithMemo(&memo)) }); n != 0 {
			t.Errorf("%s: Match with a Memo allocates %.0f times per run", name, n)
		}
	}
}

// TestMemo matches many conditions against events through one Memo, as
// the matcher does, and checks every result against Match without one:
// more distinct fields than the Memo holds, fields looked up again, and a
// new event in the same Memo.
func TestMemo(t *testing.T) {
	var conds []*Condition
	for i := range memoSize + 8 {
		// Distinct fields, past memoSize, each read by several conditions.
		conds = append(conds,
			mustParse(t, leafJSON(fmt.Sprintf("data.f%d", i), "eq", float64(i))),
			mustParse(t, fmt.Sprintf(`{"any":[{"field":"data.f%d","op":"gt","value":%d},{"field":"data.status","op":"eq","value":"Active"}]}`, i, i)),
			mustParse(t, fmt.Sprintf(`{"not":{"field":"data.f%d","op":"exists"}}`, i)))
	}
	conds = append(conds, mustParse(t, benchCondition), mustParse(t, leafJSON("data.items[1].sku", "eq", "B-2")))
	events := []string{
		`{"data":{"status":"Active","f0":0,"f3":3,"f20":20,"items":[{"sku":"A-1"},{"sku":"B-2"}]}}`,
		`{"data":{"status":"Draft","f0":1,"f3":"3","f21":21}}`, // same fields, other values: nothing stale
		orderEvent,
		`{}`,
	}
	var memo Memo
	for i, src := range events {
		doc := mustDoc(t, src)
		memoized := doc.WithMemo(&memo)
		for round := range 2 {
			for j, c := range conds {
				if got, want := c.Match(memoized), c.Match(doc); got != want {
					t.Errorf("event %d, round %d, condition %d: Match with a Memo = %v, without = %v", i, round, j, got, want)
				}
			}
		}
	}
}

// TestFlattenedShortCircuit checks the flattened layout of nested groups
// against every combination of leaf results: each leaf of the condition
// below tests one field for true, so the event's fields choose the
// outcome, which must be what the tree says.
func TestFlattenedShortCircuit(t *testing.T) {
	leaf := func(name string) string { return leafJSON("data."+name, "eq", true) }
	c := mustParse(t, `{"any":[
	  {"all":[`+leaf("a")+`,{"not":`+leaf("b")+`},{"any":[`+leaf("c")+`,`+leaf("d")+`]}]},
	  {"not":{"all":[`+leaf("e")+`,{"any":[`+leaf("f")+`,{"not":`+leaf("a")+`}]}]}},
	  {"all":[`+leaf("b")+`,`+leaf("c")+`]}
	]}`)
	if len(c.steps) != 9 {
		t.Fatalf("%d steps, want one per leaf (9)", len(c.steps))
	}
	names := []string{"a", "b", "c", "d", "e", "f"}
	for bits := range 1 << len(names) {
		on := func(name string) bool { return bits&(1<<slices.Index(names, name)) != 0 }
		data := map[string]any{}
		for _, n := range names {
			data[n] = on(n)
		}
		want := (on("a") && !on("b") && (on("c") || on("d"))) ||
			!(on("e") && (on("f") || !on("a"))) ||
			(on("b") && on("c"))
		if got := c.Match(NewDocument(map[string]any{"data": data})); got != want {
			t.Errorf("fields %v: Match = %v, want %v", data, got, want)
		}
	}
}

func TestConcurrentMatch(t *testing.T) {
	c := mustParse(t, benchCondition)
	docs := []Document{mustDoc(t, orderEvent), mustDoc(t, `{"type":"order.updated","data":{"status":"Draft"}}`)}
	want := []bool{c.Match(docs[0]), c.Match(docs[1])}
	if !want[0] || want[1] {
		t.Fatalf("fixture results %v, want [true false]", want)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				d := (g + i) % 2
				if c.Match(docs[d]) != want[d] {
					errs <- fmt.Sprintf("goroutine %d: doc %d mismatched", g, d)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestParsePath(t *testing.T) {
	cases := []struct {
		path    string
		want    []string
		wantErr bool
	}{
		{"type", []string{"type"}, false},
		{"data.items.0.sku", []string{"data", "items", "0", "sku"}, false},
		{"data.items[0].sku", []string{"data", "items", "0", "sku"}, false},
		{"m[1][2]", []string{"m", "1", "2"}, false},
		{"data.01", []string{"data", "01"}, false},
		{"a[01]", nil, true},
		{"a[-1]", nil, true},
		{"a[]", nil, true},
		{"[0]", nil, true},
		{"a.[0]", nil, true},
		{".a", nil, true},
		{"a]", nil, true},
	}
	for _, tc := range cases {
		got, err := ParsePath(tc.path)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("ParsePath(%q) = %q, %v; want %q, error %v", tc.path, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDocumentLookup(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	cases := []struct {
		path   []string
		want   any
		wantOK bool
	}{
		{[]string{"data", "items", "1", "qty"}, 1.0, true},
		{[]string{"data", "nothing"}, nil, true},
		{[]string{"data", "10"}, "ten", true},
		{[]string{"data", "items", "01", "qty"}, nil, false},
		{[]string{"data", "items", "9"}, nil, false},
		{[]string{"missing"}, nil, false},
		{nil, nil, false},
	}
	for _, tc := range cases {
		got, ok := doc.Lookup(tc.path)
		if ok != tc.wantOK || got != tc.want {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tc.path, got, ok, tc.want, tc.wantOK)
		}
	}
	if _, ok := (Document{}).Lookup([]string{"type"}); ok {
		t.Error("zero Document found a field")
	}
	if doc.Root()["subject"] != "order_42" {
		t.Errorf("Root subject = %v", doc.Root()["subject"])
	}
}
