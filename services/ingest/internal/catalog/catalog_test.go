package catalog

import (
	"strings"
	"testing"
)

const orderSchema = `{
	"type": "object",
	"required": ["id", "items"],
	"properties": {
		"id": {"type": "string", "pattern": "^ord_"},
		"items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
		"note": {"type": "string", "maxLength": 5}
	},
	"$defs": {"item": {"type": "object", "required": ["sku"], "properties": {"price": {"type": "number", "minimum": 0}, "a b": {"type": "string"}}}}
}`

func TestValidateNamesTheFailingPath(t *testing.T) {
	sch, err := Compile(orderSchema)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
		want map[string]string // path -> part of the reason
	}{
		{"valid", `{"id":"ord_1","items":[{"sku":"a","price":1}]}`, nil},
		{"a nested value", `{"id":"ord_1","items":[{"sku":"a"},{"sku":"b","price":-1}]}`, map[string]string{"data.items[1].price": "minimum"}},
		{"missing members", `{"items":[{}]}`, map[string]string{"data.id": "required", "data.items[0].sku": "required"}},
		{"wrong type and pattern", `{"id":"x","items":"no","note":"too long"}`, map[string]string{"data.id": "match", "data.items": "array", "data.note": "maxLength"}},
		{"a key that is not a plain name", `{"id":"ord_1","items":[{"sku":"a","a b":1}]}`, map[string]string{`data.items[0]["a b"]`: "string"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Validate(sch, []byte(tc.data))
			if len(got) != len(tc.want) {
				t.Fatalf("violations %+v, want %v", got, tc.want)
			}
			for _, v := range got {
				if want, ok := tc.want[v.Path]; !ok || !strings.Contains(v.Reason, want) {
					t.Errorf("violation %+v, want one of %v", v, tc.want)
				}
			}
		})
	}
}

func TestValidateReportsBoundedProblems(t *testing.T) {
	sch, err := Compile(`{"type":"object","additionalProperties":{"type":"string"}}`)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("{")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strings.Repeat("x", i) + `":1`)
	}
	b.WriteString("}")
	if got := Validate(sch, []byte(b.String())); len(got) != maxViolations {
		t.Errorf("%d violations, want the first %d", len(got), maxViolations)
	}
}

// TestCompileFetchesNothing: a $ref outside the schema is refused when the
// event type is written, whether it points at the network or the disk.
func TestCompileFetchesNothing(t *testing.T) {
	for _, tc := range []struct{ name, schema, want string }{
		{"remote ref", `{"$ref":"https://json-schema.org/draft/2020-12/schema-not-bundled"}`, "outside the schema"},
		{"file ref", `{"properties":{"a":{"$ref":"file:///etc/passwd"}}}`, "outside the schema"},
		{"relative ref", `{"$ref":"other.json"}`, "outside the schema"},
		{"custom metaschema", `{"$schema":"https://example.com/meta"}`, "outside the schema"},
		{"not JSON", `{`, "not JSON"},
		{"not an object", `[1]`, "JSON object"},
		{"too large", `{"description":"` + strings.Repeat("x", MaxSchemaBytes) + `"}`, "at most"},
		{"an invalid keyword value", `{"type":"nope"}`, ""},
		{"a bad pattern", `{"pattern":"("}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.schema)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := Compile(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`); err != nil {
		t.Errorf("a schema naming a bundled draft: %v", err)
	}
}

func TestPath(t *testing.T) {
	for want, tokens := range map[string][]string{
		"data":                      nil,
		"data.a.b":                  {"a", "b"},
		"data.items[3].price":       {"items", "3", "price"},
		`data["x.y"]["say \"hi\""]`: {"x.y", `say "hi"`},
	} {
		if got := Path(tokens); got != want {
			t.Errorf("Path(%q) = %s, want %s", tokens, got, want)
		}
	}
}
