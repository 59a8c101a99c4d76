package api

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pathTokens splits a bound's path: "derive[].field" is derive, [], field.
func pathTokens(path string) []string {
	return regexp.MustCompile(`\[\]|\{key\}|\{\}|[^.\[\]{}]+`).FindAllString(path, -1)
}

// schemaAt walks a JSON Schema (as decoded JSON) along tokens: a name is a
// member of properties (of any branch of a oneOf), [] the items, {} the
// values and {key} the keys of an object. Nil when it is not there.
func schemaAt(node map[string]any, tokens []string) map[string]any {
	for _, tok := range tokens {
		var next any
		switch tok {
		case "[]":
			next = node["items"]
		case "{}":
			next = node["additionalProperties"]
		case "{key}":
			next = node["propertyNames"]
		default:
			if props, ok := node["properties"].(map[string]any); ok {
				next = props[tok]
			}
			if next == nil {
				branches, _ := node["oneOf"].([]any)
				for _, b := range branches {
					if props, ok := b.(map[string]any)["properties"].(map[string]any); ok && props[tok] != nil {
						next = props[tok]
						break
					}
				}
			}
		}
		m, ok := next.(map[string]any)
		if !ok {
			return nil
		}
		node = m
	}
	return node
}

var keywords = map[measure][2]string{
	value:      {"minimum", "maximum"},
	length:     {"minLength", "maxLength"},
	items:      {"minItems", "maxItems"},
	properties: {"minProperties", "maxProperties"},
}

// subscriptionSchemas are the bodies that create and change subscriptions.
var subscriptionSchemas = []string{"SubscriptionCreate", "SubscriptionReplace", "SubscriptionUpdate"}

func openAPISchemas(t *testing.T) map[string]any {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas
}

// TestOpenAPIBoundsMatchTheTable: every bound of bounds.go is stated, the
// same, by each subscription body of the OpenAPI document (what clients
// and schemathesis read), and the document states no bound the table
// lacks.
func TestOpenAPIBoundsMatchTheTable(t *testing.T) {
	schemas := openAPISchemas(t)
	for _, name := range subscriptionSchemas {
		schema, _ := schemas[name].(map[string]any)
		for _, fb := range subscriptionBounds {
			t.Run(name+"/"+fb.path, func(t *testing.T) {
				node := schemaAt(schema, pathTokens(fb.path))
				if node == nil {
					t.Fatalf("%s has no %s", name, fb.path)
				}
				kw := keywords[fb.measure]
				lo, _ := node[kw[0]].(float64) // absent: 0
				hi, ok := node[kw[1]].(float64)
				if !ok || int(lo) != fb.bound.Min || int(hi) != fb.bound.Max {
					t.Errorf("%s.%s states %s %v and %s %v; bounds.go says %d to %d", name, fb.path, kw[0], node[kw[0]], kw[1], node[kw[1]], fb.bound.Min, fb.bound.Max)
				}
			})
		}
		declared := map[string]bool{}
		for _, fb := range subscriptionBounds {
			declared[strings.Join(pathTokens(fb.path), ".")] = true
		}
		for _, path := range boundedPaths(schema, nil) {
			if !declared[path] {
				t.Errorf("%s states a bound on %s that bounds.go does not declare", name, path)
			}
		}
	}
}

// boundedPaths lists the paths (tokens joined by dots) of the schema's
// nodes that carry an upper bound.
func boundedPaths(node map[string]any, at []string) []string {
	var out []string
	for _, kw := range keywords {
		if _, ok := node[kw[1]]; ok && len(at) > 0 {
			out = append(out, strings.Join(at, "."))
			break
		}
	}
	walk := func(tok string, child any) {
		if m, ok := child.(map[string]any); ok {
			out = append(out, boundedPaths(m, append(slices.Clone(at), tok))...)
		}
	}
	if props, ok := node["properties"].(map[string]any); ok {
		for name, child := range props {
			walk(name, child)
		}
	}
	if branches, ok := node["oneOf"].([]any); ok {
		for _, b := range branches {
			if m, ok := b.(map[string]any); ok {
				out = append(out, boundedPaths(m, at)...)
			}
		}
	}
	walk("[]", node["items"])
	walk("{}", node["additionalProperties"])
	walk("{key}", node["propertyNames"])
	return out
}

// TestLimitsDocListsTheBounds: the Subscriptions table of docs/limits.md
// has a row for each bounded member that states its upper bound (and a
// number's lower one).
func TestLimitsDocListsTheBounds(t *testing.T) {
	doc, err := os.ReadFile("../../../../docs/limits.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "## Subscriptions")
	end := strings.Index(text[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("docs/limits.md has no Subscriptions section")
	}
	var rows []string
	for _, line := range strings.Split(text[start:start+1+end], "\n") {
		if strings.HasPrefix(line, "| `") {
			rows = append(rows, line)
		}
	}
	for _, fb := range subscriptionBounds {
		member := pathTokens(fb.path)[0]
		t.Run(fb.path, func(t *testing.T) {
			// The row naming the path itself, else the member's.
			var row string
			for _, name := range []string{fb.path, member} {
				for _, r := range rows {
					if row == "" && strings.Contains(strings.SplitN(r, "|", 3)[1], "`"+name+"`") {
						row = r
					}
				}
			}
			if row == "" {
				t.Fatalf("no row for `%s`", member)
			}
			want := []int{fb.bound.Max}
			if fb.measure == value {
				want = append(want, fb.bound.Min)
			}
			for _, n := range want {
				if !slices.ContainsFunc(spellings(n), func(s string) bool { return regexp.MustCompile(`\b` + regexp.QuoteMeta(s) + `\b`).MatchString(row) }) {
					t.Errorf("the row of `%s` does not state %d (%s):\n%s", member, n, fb.path, row)
				}
			}
		})
	}
}

// spellings are the ways the doc may write n: 4096, 10,000 or 16 KiB.
func spellings(n int) []string {
	out := []string{strconv.Itoa(n)}
	if n >= 10000 {
		s := strconv.Itoa(n)
		out = append(out, s[:len(s)-3]+","+s[len(s)-3:])
	}
	if n >= 1024 && n%1024 == 0 {
		out = append(out, fmt.Sprintf("%d KiB", n/1024))
	}
	return out
}
