package condition

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unique"
)

// Document is an event decoded once for matching against every
// subscription's Condition and Expression. It is a small value wrapping the
// decoded JSON tree; copying it is cheap and it is safe for concurrent reads
// as long as nobody mutates the tree, and no Memo is attached (WithMemo).
//
// The tree holds map[string]any, []any, string, float64, bool and nil, as
// produced by DecodeValue or json.Unmarshal into an any. For callers that
// build the root by hand, []string, map[string]string, json.Number and the
// Go integer types are also understood (numbers compare as float64); values
// of other types are treated as an unknown kind that no operator matches.
//
// The matcher's root has the keys id, type, subject, source, data (object),
// changed (array of strings) and previous (object or null).
type Document struct {
	root map[string]any
	memo *Memo // nil: every lookup walks the tree
}

// memoSize is how many fields a Memo remembers. Conditions of one event's
// candidate subscriptions read a handful of distinct fields; past this
// many, the rest are looked up every time.
const memoSize = 16

// Memo remembers the fields that conditions looked up in one event, so
// that the conditions of every candidate subscription together look each
// field up once. Fields are told apart by their interned dotted path,
// which makes a remembered lookup a few pointer comparisons instead of a
// hashed map lookup per path segment.
//
// The zero Memo is ready to use. Document.WithMemo attaches one to a
// Document; that Document is then for one goroutine.
type Memo struct {
	n     int
	field [memoSize]unique.Handle[string]
	val   [memoSize]any
	found [memoSize]bool
}

// WithMemo returns d remembering its lookups in m, which it first empties:
// use one Memo per goroutine, and WithMemo once per event.
func (d Document) WithMemo(m *Memo) Document {
	clear(m.val[:m.n]) // let the previous event's values go
	m.n = 0
	d.memo = m
	return d
}

// field is lookup, remembered in the Document's Memo under the path's
// interned dotted form.
func (d Document) field(name unique.Handle[string], path []segment) (any, bool) {
	m := d.memo
	if m == nil {
		return d.lookup(path)
	}
	for i := range m.n {
		if m.field[i] == name {
			return m.val[i], m.found[i]
		}
	}
	v, ok := d.lookup(path)
	if m.n < memoSize {
		m.field[m.n], m.val[m.n], m.found[m.n] = name, v, ok
		m.n++
	}
	return v, ok
}

// NewDocument wraps an already decoded event. root is not copied: the
// caller must not change it while the Document is in use.
func NewDocument(root map[string]any) Document {
	return Document{root: root}
}

// DecodeDocument decodes an event's JSON, which must be an object, with
// DecodeValue.
func DecodeDocument(eventJSON []byte) (Document, error) {
	v, err := DecodeValue(eventJSON)
	if err != nil {
		return Document{}, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return Document{}, fmt.Errorf("event must be a JSON object, got %s", kindOf(v))
	}
	return Document{root: root}, nil
}

// Root returns the decoded tree the Document wraps.
func (d Document) Root() map[string]any {
	return d.root
}

// Lookup walks path from the root: each element is an object key, or, on an
// array, a decimal element index. It reports false when any step is
// missing. Split a dotted path with ParsePath; conditions precompile theirs.
func (d Document) Lookup(path []string) (any, bool) {
	if d.root == nil || len(path) == 0 {
		return nil, false
	}
	var cur any = d.root
	for _, p := range path {
		next, ok := descend(cur, p, arrayIndex(p))
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// lookup is Lookup with a precompiled path; it is the hot path of Match.
func (d Document) lookup(path []segment) (any, bool) {
	v, ok := d.root[path[0].key]
	if !ok {
		return nil, false
	}
	for i := 1; i < len(path); i++ {
		s := &path[i]
		switch c := v.(type) {
		case map[string]any:
			if v, ok = c[s.key]; !ok {
				return nil, false
			}
		case []any:
			if s.index < 0 || s.index >= len(c) {
				return nil, false
			}
			v = c[s.index]
		default:
			if v, ok = descend(v, s.key, s.index); !ok {
				return nil, false
			}
		}
	}
	return v, true
}

// descend moves one level down from cur by an object key, or by index when cur
// is an array and the segment is an index.
func descend(cur any, key string, index int) (any, bool) {
	switch c := cur.(type) {
	case map[string]any:
		v, ok := c[key]
		return v, ok
	case []any:
		if index < 0 || index >= len(c) {
			return nil, false
		}
		return c[index], true
	case map[string]string:
		v, ok := c[key]
		return v, ok
	case []string:
		if index < 0 || index >= len(c) {
			return nil, false
		}
		return c[index], true
	}
	return nil, false
}

// kind is the JSON type of a value. Values of different kinds are never
// equal and never ordered against each other.
type kind uint8

const (
	kindUnknown kind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindArray:
		return "array"
	case kindObject:
		return "object"
	}
	return "unknown"
}

func kindOf(v any) kind {
	k, _ := scalarOf(v)
	return k
}

// scalar is a JSON scalar: the compiled value of a leaf, or a document value
// being compared.
type scalar struct {
	kind kind
	b    bool
	num  float64
	str  string
}

// scalarOf classifies a document value. Only kind is meaningful for arrays
// and objects.
func scalarOf(v any) (kind, scalar) {
	switch x := v.(type) {
	case string:
		return kindString, scalar{kind: kindString, str: x}
	case float64:
		return kindNumber, scalar{kind: kindNumber, num: x}
	case bool:
		return kindBool, scalar{kind: kindBool, b: x}
	case nil:
		return kindNull, scalar{kind: kindNull}
	case map[string]any, map[string]string:
		return kindObject, scalar{kind: kindObject}
	case []any, []string:
		return kindArray, scalar{kind: kindArray}
	}
	if f, ok := otherNumber(v); ok {
		return kindNumber, scalar{kind: kindNumber, num: f}
	}
	return kindUnknown, scalar{}
}

// otherNumber converts the numeric types hand-built documents may hold.
func otherNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil && !math.IsInf(f, 0)
	}
	return 0, false
}
