package condition

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// allocated is what f allocated on the heap, in bytes: TotalAlloc counts
// every allocation, including those collected while f ran. Tests using it
// must not run in parallel.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// evalBound is the most one evaluation over an event whose largest string
// is input bytes may allocate: a few times MaxValueBytes for the one call
// that may build a value that large (format's buffers and the conversion
// of the result to JSON copy it several times), and a few copies of the
// input (upperAscii() and reverse() make a rune slice four times its size,
// and the race detector's builds allocate more than the others). For the
// largest event, 1 MiB, it is 16 MiB.
func evalBound(input int) uint64 { return 4*MaxValueBytes + 12*uint64(input) }

// bigDoc is an event whose data.s is n bytes of 'a'.
func bigDoc(n int) Document {
	s := strings.Repeat("a", n)
	return NewDocument(map[string]any{
		"type": "order.created",
		"data": map[string]any{"s": s, "t": "a", "items": []any{s, s, s}, "n": float64(3), "many": make([]any, 5000)},
	})
}

// attackExpressions build far more than their inputs: before the guards,
// each allocated its result in full before the cost limit was checked.
var attackExpressions = []string{
	// the case: |s|² bytes
	`event.data.s.replace('a', event.data.s) == ''`,
	`event.data.s.replace('', event.data.s) == ''`,
	`event.data.s.replace('a', event.data.s, 1000000) == ''`,
	`event.data.s.replace('a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') == ''`,
	// format and join repeat their arguments as often as the source names them
	`(` + strings.Repeat("'%s'+", 100) + `'').format([` + strings.Repeat("event.data.s,", 100) + `]) == ''`,
	`'%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s%s'.format([` + strings.Repeat("event.data.s,", 32) + `]) == ''`,
	`'%x'.format([event.data.s + event.data.s]) == ''`,
	`'%s'.format([[` + strings.Repeat("event.data.s,", 64) + `]]) == ''`,
	`[` + strings.Repeat("event.data.s,", 300) + `].join() == ''`,
	`[` + strings.Repeat("event.data.s,", 300) + `].join(event.data.s) == ''`,
	`event.data.items.map(i, event.data.s).join(event.data.s) == ''`,
	// concatenation: cel-go charges one cost unit for + on dyn values
	`(` + strings.Repeat("event.data.s + ", 200) + `'') == ''`,
	`event.data.many.map(i, event.data.s + 'x').size() == 0`,
	`event.data.many.map(i, event.data.s.upperAscii()).size() == 0`,
	`event.data.many.map(i, bytes(event.data.s)).size() == 0`,
	// split makes a list element per rune
	`size(event.data.s.split('')) == 0`,
	`size(event.data.s.split('a')) == 0`,
}

// TestExpressionAllocationIsBounded evaluates each attack against an event
// whose string is the largest an event may hold, and checks that it fails
// within the allocation bound instead of building its result. Without the
// guards the first case alone asks the runtime for a terabyte.
func TestExpressionAllocationIsBounded(t *testing.T) {
	for _, size := range []int{64 << 10, 1 << 20} {
		doc := bigDoc(size)
		for _, src := range attackExpressions {
			e, err := CompileExpression(src)
			if err != nil {
				t.Fatalf("CompileExpression(%.60q): %v", src, err)
			}
			var matched bool
			var evalErr error
			n := allocated(func() { matched, evalErr = e.Match(doc) })
			t.Logf("%d-byte string: %.70q allocated %d bytes", size, src, n)
			if n > evalBound(size) {
				t.Errorf("%d-byte string: %.80q allocated %d bytes, more than %d", size, src, n, evalBound(size))
			}
			if evalErr == nil || matched {
				t.Errorf("%d-byte string: %.80q = %v, %v; want an error", size, src, matched, evalErr)
			}
		}
	}
}

// TestGuardedFunctionsKeepTheirResults checks that the guarded functions
// answer as the strings library does below the bound, and that their
// errors name the limit.
func TestGuardedFunctionsKeepTheirResults(t *testing.T) {
	doc := mustDoc(t, orderEvent)
	cases := []struct {
		src     string
		want    any
		wantErr string
	}{
		{`'a-b-c'.replace('-', '+')`, "a+b+c", ""},
		{`'a-b-c'.replace('-', '+', 1)`, "a+b-c", ""},
		{`'abc'.replace('', '.')`, ".a.b.c.", ""},
		{`'%s is %d, %.2f%%'.format(['total', 3, 1.5])`, "total is 3, 1.50%", ""},
		{`'%x'.format(['hi'])`, "6869", ""},
		{`'%s'.format([[1, 'a']])`, `[1, a]`, ""},
		{`['a', 'b'].join()`, "ab", ""},
		{`['a', 'b'].join(', ')`, "a, b", ""},
		{`'a,b,c'.split(',')`, []any{"a", "b", "c"}, ""},
		{`'a,b,c'.split(',', 2)`, []any{"a", "b,c"}, ""},
		{`'héllo'.split('')`, []any{"h", "é", "l", "l", "o"}, ""},
		{`event.subject.matches('^order_[0-9]{1,3}$')`, true, ""},
	}
	for _, tc := range cases {
		v, err := CompileValue(tc.src)
		if err != nil {
			t.Fatalf("CompileValue(%q): %v", tc.src, err)
		}
		got, err := v.Eval(doc)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s = %v, %v; want error %q", tc.src, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !equalJSON(got, tc.want) {
			t.Errorf("%s = %#v, %v; want %#v", tc.src, got, err, tc.want)
		}
	}
	v, err := CompileValue(`event.data.s.replace('a', event.data.s)`)
	if err != nil {
		t.Fatal(err)
	}
	want := "replace would build 4000000 bytes, more than the limit of 1048576"
	if got, err := v.Eval(bigDoc(2000)); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("replace of 2,000 bytes by 2,000 = %.20v, %v; want error %q", got, err, want)
	}
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// TestRegexPatternsAreBounded refuses at creation what would compile or
// match without bound: a pattern taken from the event, and a literal that
// compiles to a huge program. A counted repeat, on which cel-go's own
// program-size check panics, compiles.
func TestRegexPatternsAreBounded(t *testing.T) {
	for src, wantErr := range map[string]string{
		`event.data.s.matches(event.data.t)`:                    "needs a string literal",
		`matches(event.data.s, event.data.t)`:                   "needs a string literal",
		`event.data.s.matches('^' + event.data.t)`:              "needs a string literal",
		`event.data.s.matches('\\pL{1000}\\pN{1000}\\pL{100}')`: "compiles to",
		`event.data.s.matches('a{3}b{1,5}')`:                    "",
		`matches(event.data.s, '^[a-z]+$')`:                     "",
	} {
		_, err := CompileExpression(src)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("CompileExpression(%q): %v", src, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("CompileExpression(%q) = %v, want an error with %q", src, err, wantErr)
		}
	}
}

// TestExpressionTimeLimit checks that evaluations are interruptible: with
// no time left, a comprehension stops at its first interrupt check instead
// of running to its end.
func TestExpressionTimeLimit(t *testing.T) {
	e, err := CompileExpression(`event.data.items.all(i, i == 'a')`)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, 2*interruptEvery)
	for i := range items {
		items[i] = "a"
	}
	doc := NewDocument(map[string]any{"data": map[string]any{"items": items}})
	if ok, err := e.Match(doc); !ok || err != nil {
		t.Fatalf("Match = %v, %v; want true", ok, err)
	}
	defer func(d time.Duration) { evalTimeout = d }(evalTimeout)
	evalTimeout = 0
	if ok, err := e.Match(doc); ok || err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Match with no time left = %v, %v; want an interrupted error", ok, err)
	}
}

// fuzzStringBytes is the size of data.s in FuzzExpressionMemory's event:
// large enough that an expression building its square (a gigabyte) or a
// few hundred copies of it fails the bound at once, small enough to fuzz.
const fuzzStringBytes = 32 << 10

// FuzzExpressionMemory evaluates any expression, as a CEL rule, a CEL
// value and a condition tree, against an event whose data.s is the fuzzed
// fill repeated to fuzzStringBytes, and fails when one evaluation
// allocates more than evalBound. The corpus in
// testdata/fuzz/FuzzExpressionMemory holds the attacks of
// attackExpressions and variants.
func FuzzExpressionMemory(f *testing.F) {
	for _, src := range attackExpressions {
		f.Add(src, "a")
	}
	f.Fuzz(func(t *testing.T, src, fill string) {
		if fill == "" {
			fill = "a"
		}
		s := strings.Repeat(fill, fuzzStringBytes/len(fill)+1)[:fuzzStringBytes]
		doc := NewDocument(map[string]any{
			"type": "order.created", "subject": fill,
			"data": map[string]any{"s": s, "t": fill, "items": []any{s, fill, s}, "n": float64(len(fill)), "many": make([]any, 1000)},
		})
		bound := evalBound(fuzzStringBytes)
		if e, err := CompileExpression(src); err == nil {
			if n := allocated(func() { _, _ = e.Match(doc) }); n > bound {
				t.Fatalf("expression %.200q allocated %d bytes in one evaluation, more than %d", src, n, bound)
			}
		}
		if v, err := CompileValue(src); err == nil {
			if n := allocated(func() { _, _ = v.Eval(doc) }); n > bound {
				t.Fatalf("value %.200q allocated %d bytes in one evaluation, more than %d", src, n, bound)
			}
		}
		if c, err := Parse([]byte(src)); err == nil && c != nil {
			if n := allocated(func() { c.Match(doc) }); n > bound {
				t.Fatalf("condition %.200q allocated %d bytes in one evaluation, more than %d", src, n, bound)
			}
		}
	})
}
