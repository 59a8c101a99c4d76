package condition

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fuzzDocs are the events FuzzParse matches every accepted condition
// against.
var fuzzDocs = []string{
	orderEvent,
	`{}`,
	`{"type":null,"data":[1,"a",{"b":[null,true]}],"changed":"status","previous":null,"metadata":{"":""}}`,
	`{"data":{"items":[[],[[]],{}],"0":{"0":0},"s":"ß\u0000\ufffd","n":-0,"big":1e308}}`,
}

var seedConditions = []string{
	benchCondition,
	`{"field":"type","op":"eq","value":"order.updated"}`,
	`{"not":{"field":"data.items[1].sku","op":"regex","value":"^B-\\d$"}}`,
	`{"any":[{"field":"data.x","op":"exists","value":false},{"field":"changed","op":"contains","value":"total"}]}`,
	`{"field":"data.count","op":"nin","value":[1,2,3,4,5,6,7,8,9,10,"a",true,null]}`,
	`{"field":"data.created","op":"lte","value":"2025"}`,
	`{"field":"data.created","op":"gt","value":"2024-06"}`,
	`{"field":"data.status","op":"lt","value":"Zebra"}`,
	`{"field":"data.total","op":"gte","value":149.5}`,
	`{"field":"data.status","op":"suffix","value":"ve"}`,
	`{"all":[{"field":"a","op":"equals","value":1}]}`,
	`{"all":[]}`,
	`null`,
	`[`,
}

func FuzzParse(f *testing.F) {
	for _, s := range seedConditions {
		f.Add([]byte(s))
	}
	docs := make([]Document, len(fuzzDocs))
	for i, s := range fuzzDocs {
		docs[i] = mustDoc(f, s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(raw)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.Reason == "" {
				t.Fatalf("Parse error %T %q is not an *Error with a reason", err, err)
			}
			if c != nil {
				t.Fatal("Parse returned a condition with its error")
			}
			return
		}
		if c == nil {
			return // an absent condition
		}
		if len(c.Fields()) == 0 {
			t.Fatal("a parsed condition reads no fields")
		}
		// Wrapping in not must negate the result, when the limits allow it.
		neg, negErr := Parse([]byte(`{"not":` + string(raw) + `}`))
		for i, doc := range docs {
			got := c.Match(doc)
			if negErr == nil && neg.Match(doc) == got {
				t.Fatalf("doc %d: not(cond) = cond = %v", i, got)
			}
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, c := range seedConditions {
		for _, d := range fuzzDocs {
			f.Add(c, d)
		}
	}
	f.Fuzz(func(t *testing.T, condJSON, docJSON string) {
		c, err := Parse([]byte(condJSON))
		if err != nil || c == nil {
			return
		}
		doc, err := DecodeDocument([]byte(docJSON))
		var stdRoot map[string]any
		stdErr := json.Unmarshal([]byte(docJSON), &stdRoot)
		if (err != nil) != (stdErr != nil) {
			t.Fatalf("DecodeDocument error %v, encoding/json error %v", err, stdErr)
		}
		if err != nil {
			return
		}
		var tree any
		if err := json.Unmarshal([]byte(condJSON), &tree); err != nil {
			t.Fatalf("Parse accepted JSON encoding/json rejects: %v", err)
		}
		got := c.Match(doc)
		want := refMatch(t, tree, stdRoot)
		if got != want {
			t.Fatalf("Match = %v, reference evaluator = %v\ncondition %s\ndocument %s", got, want, condJSON, docJSON)
		}
		// With a Memo: filled by the first Match, read by the second.
		var memo Memo
		memoized := doc.WithMemo(&memo)
		if first, again := c.Match(memoized), c.Match(memoized); first != want || again != want {
			t.Fatalf("Match with a Memo = %v then %v, want %v\ncondition %s\ndocument %s", first, again, want, condJSON, docJSON)
		}
	})
}

func FuzzDecodeValue(f *testing.F) {
	for _, s := range decodeCases {
		f.Add([]byte(s))
	}
	for _, s := range fuzzDocs {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkDecodeAgainstStdlib(t, raw)
	})
}

// refMatch is a deliberately naive evaluator of a condition tree, decoded
// by encoding/json, written straight from the package documentation. The
// compiled Condition must agree with it on every input.
func refMatch(t *testing.T, n any, root map[string]any) bool {
	obj := n.(map[string]any)
	if list, ok := obj["all"]; ok {
		for _, c := range list.([]any) {
			if !refMatch(t, c, root) {
				return false
			}
		}
		return true
	}
	if list, ok := obj["any"]; ok {
		for _, c := range list.([]any) {
			if refMatch(t, c, root) {
				return true
			}
		}
		return false
	}
	if c, ok := obj["not"]; ok {
		return !refMatch(t, c, root)
	}
	op := obj["op"].(string)
	val, hasVal := obj["value"]
	v, found := refLookup(obj["field"].(string), root)
	if op == "exists" {
		want := !hasVal || val.(bool)
		return found == want
	}
	if !found {
		return op == "ne" || op == "nin"
	}
	switch op {
	case "eq":
		return refEqual(v, val)
	case "ne":
		return !refEqual(v, val)
	case "in", "nin":
		in := false
		for _, e := range val.([]any) {
			in = in || refEqual(v, e)
		}
		return in == (op == "in")
	case "gt", "gte", "lt", "lte":
		var c int
		switch x := v.(type) {
		case float64:
			y, ok := val.(float64)
			if !ok {
				return false
			}
			c = map[bool]int{true: -1}[x < y] + map[bool]int{true: 1}[x > y]
		case string:
			y, ok := val.(string)
			if !ok {
				return false
			}
			c = strings.Compare(x, y)
		default:
			return false
		}
		switch op {
		case "gt":
			return c > 0
		case "gte":
			return c >= 0
		case "lt":
			return c < 0
		}
		return c <= 0
	case "contains":
		switch x := v.(type) {
		case string:
			y, ok := val.(string)
			return ok && strings.Contains(x, y)
		case []any:
			for _, e := range x {
				if refEqual(e, val) {
					return true
				}
			}
		}
		return false
	case "prefix", "suffix", "regex":
		x, ok := v.(string)
		if !ok {
			return false
		}
		switch op {
		case "prefix":
			return strings.HasPrefix(x, val.(string))
		case "suffix":
			return strings.HasSuffix(x, val.(string))
		}
		return regexp.MustCompile(val.(string)).MatchString(x)
	}
	t.Fatalf("reference evaluator: op %q", op)
	return false
}

func refEqual(a, b any) bool {
	switch a.(type) {
	case string, float64, bool, nil:
		return a == b
	}
	return false
}

// refLookup splits the path on its own: dots, and [n] as another segment.
func refLookup(path string, root map[string]any) (any, bool) {
	path = strings.NewReplacer("[", ".", "]", "").Replace(path)
	var cur any = root
	for _, seg := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) || strconv.Itoa(i) != seg {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
