package condition

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unique"
)

// Limits on a condition tree. They keep the cost of one Match bounded, so
// that one subscription cannot slow the matcher for everyone else.
const (
	// MaxSize is the largest condition JSON accepted, in bytes.
	MaxSize = 64 << 10
	// MaxDepth is how deeply all/any/not nodes may nest; a leaf at the root
	// has depth 1.
	MaxDepth = 32
	// MaxNodes is the most nodes (groups, nots and leaves) in one tree.
	MaxNodes = 256
	// MaxListLen is the longest value list of an in or nin leaf.
	MaxListLen = 1000
	// MaxRegexLen is the longest regex pattern accepted, in bytes.
	MaxRegexLen = 1024
)

// setThreshold is the list length above which in/nin use a hash set rather
// than a linear scan; below it, scanning a few strings is faster than
// hashing one.
const setThreshold = 8

// Condition is a compiled condition tree. It is immutable and safe for
// concurrent use. The nil *Condition is valid and matches every event: it is
// what Parse returns for an absent condition.
//
// The tree is flattened into steps, one per leaf in the order the tree
// lists them, each knowing where evaluation goes next when its leaf is true
// and when it is false. all, any and not short-circuit exactly as a walk of
// the tree would, but Match is one loop over one slice rather than a
// recursion through nodes spread over the heap: with thousands of
// subscriptions, what a condition costs is mostly its memory reads.
type Condition struct {
	steps  []step
	fields []string
}

// step is a leaf of a flattened condition. next[0] is the index of the
// step that follows when the leaf is false, next[1] when it is true, or
// doneFalse or doneTrue when that settles the condition.
type step struct {
	leaf
	next [2]int32
}

const (
	doneFalse int32 = -1
	doneTrue  int32 = -2
)

// Error is a problem with a condition, located inside the tree.
type Error struct {
	// Path locates the offending node, such as "all[2].any[0]" or
	// "any[1].not"; it is "" for the root and for problems with the input
	// as a whole (size, JSON syntax).
	Path string
	// Key is the member of that node at fault: "field", "op", "value",
	// "value[3]" (an element of an in/nin list), "all", "any", "not", or an
	// unknown key. It is "" when the node as a whole is wrong.
	Key string
	// Reason says what is wrong, for a human.
	Reason string
}

// Error implements error as "Path: Reason", or just Reason at the root.
func (e *Error) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Field joins prefix, Path and Key into the dotted field name an API
// problem-details response reports, such as
// Field("condition") == "condition.all[2].any[0].op".
func (e *Error) Field(prefix string) string {
	out := prefix
	for _, s := range []string{e.Path, e.Key} {
		if s == "" {
			continue
		}
		if out != "" {
			out += "."
		}
		out += s
	}
	return out
}

// Parse compiles a JSON condition tree. An absent condition (nil, empty,
// only whitespace, or JSON null) yields a nil *Condition and no error; its
// Match is always true. Any other problem is returned as an *Error.
func Parse(raw []byte) (*Condition, error) {
	trimmed := bytes.Trim(raw, " \t\r\n")
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if len(raw) > MaxSize {
		return nil, &Error{Reason: fmt.Sprintf("condition is larger than %d bytes", MaxSize)}
	}
	v, err := DecodeValue(raw)
	if err != nil {
		return nil, &Error{Reason: "invalid JSON: " + err.Error()}
	}
	c := compiler{seen: map[string]bool{}}
	root, err := c.node(v, "", 1)
	if err != nil {
		return nil, err
	}
	steps := make([]step, root.leaves())
	place(steps, &root, 0, doneTrue, doneFalse)
	return &Condition{steps: steps, fields: c.fields}, nil
}

// place lays out the leaves of n from steps[at] on, linking them so that
// the leaves of n decide it and then go on to onTrue or onFalse: a child
// of all that holds goes on to the next child, one that fails ends the
// group as false; any is the mirror image; not swaps the two ways out.
func place(steps []step, n *node, at, onTrue, onFalse int32) {
	switch n.kind {
	case nodeLeaf:
		steps[at] = step{leaf: *n.leaf, next: [2]int32{onFalse, onTrue}}
	case nodeNot:
		place(steps, &n.children[0], at, onFalse, onTrue)
	default: // nodeAll, nodeAny
		for i := range n.children {
			child := &n.children[i]
			after := at + int32(child.leaves())
			t, f := onTrue, onFalse
			if i < len(n.children)-1 {
				if n.kind == nodeAll {
					t = after
				} else {
					f = after
				}
			}
			place(steps, child, at, t, f)
			at = after
		}
	}
}

// Match reports whether the event satisfies the condition. It does not
// allocate on documents from DecodeDocument or DecodeValue (hand-built
// map[string]string and []string values cost one small allocation per
// lookup through them).
func (c *Condition) Match(doc Document) bool {
	if c == nil {
		return true
	}
	i := int32(0)
	for i >= 0 {
		s := &c.steps[i]
		if s.match(doc) {
			i = s.next[1]
		} else {
			i = s.next[0]
		}
	}
	return i == doneTrue
}

// Fields returns the distinct field paths the condition reads, in the order
// they first appear, with array indexes in dotted form ("data.items.0.sku").
func (c *Condition) Fields() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.fields)
}

type nodeKind uint8

const (
	nodeLeaf nodeKind = iota
	nodeAll
	nodeAny
	nodeNot
)

// node is the tree as parsed, before place flattens it.
type node struct {
	kind     nodeKind
	children []node // all, any; not has exactly one
	leaf     *leaf
}

// leaves counts the leaves under n.
func (n *node) leaves() int {
	if n.kind == nodeLeaf {
		return 1
	}
	total := 0
	for i := range n.children {
		total += n.children[i].leaves()
	}
	return total
}

type op uint8

const (
	opEq op = iota
	opNe
	opIn
	opNin
	opGt
	opGte
	opLt
	opLte
	opExists
	opContains
	opPrefix
	opSuffix
	opRegex
)

var ops = map[string]op{
	"eq": opEq, "ne": opNe, "in": opIn, "nin": opNin,
	"gt": opGt, "gte": opGte, "lt": opLt, "lte": opLte,
	"exists": opExists, "contains": opContains,
	"prefix": opPrefix, "suffix": opSuffix, "regex": opRegex,
}

type leaf struct {
	op     op
	field  unique.Handle[string] // the path in dotted form, for Memo
	path   []segment
	val    scalar         // eq, ne, gt..lte, contains, prefix, suffix
	set    *valueSet      // in, nin
	re     *regexp.Regexp // regex
	exists bool           // exists
}

func (l *leaf) match(doc Document) bool {
	v, ok := doc.field(l.field, l.path)
	if !ok {
		// A missing field is unequal to and not in anything, and it exists
		// only for exists:false; every other test on it is false.
		switch l.op {
		case opNe, opNin:
			return true
		case opExists:
			return !l.exists
		}
		return false
	}
	switch l.op {
	case opEq:
		return l.val.equal(v)
	case opNe:
		return !l.val.equal(v)
	case opIn:
		return l.set.has(v)
	case opNin:
		return !l.set.has(v)
	case opGt:
		c, ok := l.val.compare(v)
		return ok && c > 0
	case opGte:
		c, ok := l.val.compare(v)
		return ok && c >= 0
	case opLt:
		c, ok := l.val.compare(v)
		return ok && c < 0
	case opLte:
		c, ok := l.val.compare(v)
		return ok && c <= 0
	case opExists:
		return l.exists
	case opContains:
		return l.val.containedIn(v)
	case opPrefix:
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, l.val.str)
	case opSuffix:
		s, ok := v.(string)
		return ok && strings.HasSuffix(s, l.val.str)
	case opRegex:
		s, ok := v.(string)
		return ok && l.re.MatchString(s)
	}
	return false
}

// equal reports whether document value v is the same JSON value as s: same
// kind, same value.
func (s *scalar) equal(v any) bool {
	switch s.kind {
	case kindString:
		x, ok := v.(string)
		return ok && x == s.str
	case kindNumber:
		if x, ok := v.(float64); ok {
			return x == s.num
		}
		f, ok := otherNumber(v)
		return ok && f == s.num
	case kindBool:
		x, ok := v.(bool)
		return ok && x == s.b
	case kindNull:
		return v == nil
	}
	return false
}

// compare orders document value v against s; ok is false unless both are
// numbers or both are strings.
func (s *scalar) compare(v any) (c int, ok bool) {
	switch s.kind {
	case kindString:
		x, ok := v.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, s.str), true
	case kindNumber:
		x, ok := v.(float64)
		if !ok {
			if x, ok = otherNumber(v); !ok {
				return 0, false
			}
		}
		switch {
		case x < s.num:
			return -1, true
		case x > s.num:
			return 1, true
		case x == s.num:
			return 0, true
		}
		return 0, false // NaN, only possible in hand-built documents
	}
	return 0, false
}

// containedIn implements contains: a string value contains s as a
// substring, an array value contains s as an element.
func (s *scalar) containedIn(v any) bool {
	switch x := v.(type) {
	case string:
		return s.kind == kindString && strings.Contains(x, s.str)
	case []any:
		for _, e := range x {
			if s.equal(e) {
				return true
			}
		}
	case []string:
		return s.kind == kindString && slices.Contains(x, s.str)
	}
	return false
}

// valueSet is the compiled list of an in or nin leaf.
type valueSet struct {
	strs     []string
	nums     []float64
	strSet   map[string]struct{}
	numSet   map[float64]struct{}
	hasTrue  bool
	hasFalse bool
	hasNull  bool
}

func (s *valueSet) add(v scalar) {
	switch v.kind {
	case kindString:
		s.strs = append(s.strs, v.str)
	case kindNumber:
		s.nums = append(s.nums, v.num)
	case kindBool:
		if v.b {
			s.hasTrue = true
		} else {
			s.hasFalse = true
		}
	case kindNull:
		s.hasNull = true
	}
}

func (s *valueSet) seal() {
	if len(s.strs) > setThreshold {
		s.strSet = make(map[string]struct{}, len(s.strs))
		for _, x := range s.strs {
			s.strSet[x] = struct{}{}
		}
		s.strs = nil
	}
	if len(s.nums) > setThreshold {
		s.numSet = make(map[float64]struct{}, len(s.nums))
		for _, x := range s.nums {
			s.numSet[x] = struct{}{}
		}
		s.nums = nil
	}
}

func (s *valueSet) has(v any) bool {
	switch x := v.(type) {
	case string:
		if s.strSet != nil {
			_, ok := s.strSet[x]
			return ok
		}
		return slices.Contains(s.strs, x)
	case float64:
		return s.hasNum(x)
	case bool:
		if x {
			return s.hasTrue
		}
		return s.hasFalse
	case nil:
		return s.hasNull
	}
	if f, ok := otherNumber(v); ok {
		return s.hasNum(f)
	}
	return false
}

func (s *valueSet) hasNum(f float64) bool {
	if s.numSet != nil {
		_, ok := s.numSet[f]
		return ok
	}
	return slices.Contains(s.nums, f)
}

// compiler turns the decoded JSON tree into nodes, checking every bound.
type compiler struct {
	nodes  int
	fields []string
	seen   map[string]bool
}

func errAt(path, key, format string, args ...any) *Error {
	return &Error{Path: path, Key: key, Reason: fmt.Sprintf(format, args...)}
}

func join(path, seg string) string {
	if path == "" {
		return seg
	}
	return path + "." + seg
}

var groupKeys = []string{"all", "any", "not"}

func (c *compiler) node(v any, path string, depth int) (node, error) {
	if depth > MaxDepth {
		return node{}, errAt(path, "", "conditions nest deeper than %d levels", MaxDepth)
	}
	c.nodes++
	if c.nodes > MaxNodes {
		return node{}, errAt(path, "", "condition has more than %d nodes", MaxNodes)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return node{}, errAt(path, "", "condition must be an object, got %s", kindOf(v))
	}
	if len(obj) == 0 {
		return node{}, errAt(path, "", `empty condition: want "all", "any", "not" or a "field"/"op"/"value" leaf`)
	}
	group := ""
	for _, k := range groupKeys {
		if _, ok := obj[k]; ok {
			if group != "" {
				return node{}, errAt(path, k, "%q cannot be combined with %q in one node", k, group)
			}
			group = k
		}
	}
	if group == "" {
		return c.leaf(obj, path)
	}
	if len(obj) > 1 {
		for _, k := range sortedKeys(obj) {
			if k != group {
				return node{}, errAt(path, k, "unexpected key %q beside %q", k, group)
			}
		}
	}
	if group == "not" {
		child, err := c.node(obj["not"], join(path, "not"), depth+1)
		if err != nil {
			return node{}, err
		}
		return node{kind: nodeNot, children: []node{child}}, nil
	}
	list, ok := obj[group].([]any)
	if !ok {
		return node{}, errAt(path, group, "%q must be an array of conditions, got %s", group, kindOf(obj[group]))
	}
	if len(list) == 0 {
		return node{}, errAt(path, group, "%q must hold at least one condition", group)
	}
	n := node{kind: nodeAll, children: make([]node, len(list))}
	if group == "any" {
		n.kind = nodeAny
	}
	for i, e := range list {
		child, err := c.node(e, join(path, group+"["+strconv.Itoa(i)+"]"), depth+1)
		if err != nil {
			return node{}, err
		}
		n.children[i] = child
	}
	return n, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *compiler) leaf(obj map[string]any, path string) (node, error) {
	for _, k := range sortedKeys(obj) {
		if k != "field" && k != "op" && k != "value" {
			return node{}, errAt(path, k, "unknown key %q", k)
		}
	}
	rawField, ok := obj["field"]
	if !ok {
		return node{}, errAt(path, "field", `missing "field"`)
	}
	field, ok := rawField.(string)
	if !ok {
		return node{}, errAt(path, "field", `"field" must be a string, got %s`, kindOf(rawField))
	}
	segs, err := parsePath(field)
	if err != nil {
		return node{}, errAt(path, "field", "%s", err)
	}
	rawOp, ok := obj["op"]
	if !ok {
		return node{}, errAt(path, "op", `missing "op"`)
	}
	opName, ok := rawOp.(string)
	if !ok {
		return node{}, errAt(path, "op", `"op" must be a string, got %s`, kindOf(rawOp))
	}
	o, ok := ops[opName]
	if !ok {
		return node{}, errAt(path, "op", "unknown op %q", opName)
	}
	l := &leaf{op: o, path: segs}
	val, hasVal := obj["value"]
	if !hasVal && o != opExists {
		return node{}, errAt(path, "value", "missing \"value\" for op %q", opName)
	}
	valKind, sv := scalarOf(val)
	isScalar := valKind == kindString || valKind == kindNumber || valKind == kindBool || valKind == kindNull
	switch o {
	case opEq, opNe, opContains:
		if !isScalar {
			return node{}, errAt(path, "value", "op %q needs a string, number, boolean or null value, got %s", opName, valKind)
		}
		l.val = sv
	case opGt, opGte, opLt, opLte:
		if valKind != kindNumber && valKind != kindString {
			return node{}, errAt(path, "value", "op %q needs a number or string value, got %s", opName, valKind)
		}
		l.val = sv
	case opPrefix, opSuffix:
		if valKind != kindString {
			return node{}, errAt(path, "value", "op %q needs a string value, got %s", opName, valKind)
		}
		l.val = sv
	case opRegex:
		if valKind != kindString {
			return node{}, errAt(path, "value", "op %q needs a string value, got %s", opName, valKind)
		}
		if len(sv.str) > MaxRegexLen {
			return node{}, errAt(path, "value", "regex longer than %d bytes", MaxRegexLen)
		}
		re, err := regexp.Compile(sv.str)
		if err == nil {
			err = regexProgramSize(sv.str)
		}
		if err != nil {
			return node{}, errAt(path, "value", "invalid regex: %s", err)
		}
		l.re = re
	case opExists:
		l.exists = true
		if hasVal {
			b, ok := val.(bool)
			if !ok {
				return node{}, errAt(path, "value", "op \"exists\" needs a boolean value or none, got %s", valKind)
			}
			l.exists = b
		}
	case opIn, opNin:
		list, ok := val.([]any)
		if !ok {
			return node{}, errAt(path, "value", "op %q needs an array value, got %s", opName, valKind)
		}
		if len(list) > MaxListLen {
			return node{}, errAt(path, "value", "op %q list has %d values, more than %d", opName, len(list), MaxListLen)
		}
		set := &valueSet{}
		for i, e := range list {
			k, s := scalarOf(e)
			if k != kindString && k != kindNumber && k != kindBool && k != kindNull {
				return node{}, errAt(path, "value["+strconv.Itoa(i)+"]", "op %q list values must be strings, numbers, booleans or null, got %s", opName, k)
			}
			set.add(s)
		}
		set.seal()
		l.set = set
	}
	canon := canonicalPath(segs)
	l.field = unique.Make(canon)
	if !c.seen[canon] {
		c.seen[canon] = true
		c.fields = append(c.fields, canon)
	}
	return node{kind: nodeLeaf, leaf: l}, nil
}
