package condition

import (
	"fmt"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/functions"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
)

// Bounds on what one CEL call may build. cel-go checks its cost limit only
// after a call has returned, so a call whose result can be far larger than
// its inputs could allocate without bound before the limit stops it: with
// a 1 MiB event string s, s.replace('a', s) builds |s|² bytes, and
// '%s%s'.format([s, s, ...]) or [s, s, ...].join() repeat s as often as the
// expression names it. Those functions are replaced by guarded versions
// that compute the size of their result before building it and fail past
// MaxValueBytes; every other function builds at most a small multiple of
// its inputs, and the cost limit stops the evaluation right after it.
const (
	// MaxValueBytes is the largest string one call may build, in bytes,
	// and the largest list (at 16 bytes per element) split may build: the
	// size of the largest event, since a value larger than an event has no
	// place in a delivery.
	MaxValueBytes = 1 << 20
	// MaxRegexProgram is the most instructions a regular expression may
	// compile to, in a condition's regex op or a CEL matches() pattern.
	// Matching costs time in proportion to the program times the input:
	// twice MaxRegexLen admits a pattern of the longest length written
	// one instruction per character (an email pattern is about 100) and
	// refuses counted repeats that multiply it, like \pL{1000}.
	MaxRegexProgram = 2 * MaxRegexLen
	// listElemBytes is what split counts per element of its result: a Go
	// string header.
	listElemBytes = 16
)

// builtBytes charges every call that returns a string or bytes the cost
// of the value it built, one unit per ten bytes (cel-go's own factor for
// traversing a string), where the library has no cost of its own for the
// call. cel-go charges a concatenation of two dyn values, which every event
// field is, one unit whatever its size: without this, s + s + s... or
// items.map(i, s + s) over a megabyte string allocated gigabytes within
// the cost limit. With it, the cost limit also bounds the bytes an
// evaluation builds (about ExpressionCostLimit * 10), and a single call
// builds at most twice its largest input.
type builtBytes struct{}

// CallCost implements interpreter.ActualCostEstimator.
func (builtBytes) CallCost(_, _ string, _ []ref.Val, result ref.Val) *uint64 {
	var n int
	switch v := result.(type) {
	case types.String:
		n = len(v)
	case types.Bytes:
		n = len(v)
	default:
		return nil // cel-go's own cost
	}
	c := 1 + uint64(n+9)/10
	return &c
}

// errTooLarge is why a guarded call failed.
func errTooLarge(fn string, size uint64) ref.Val {
	return types.NewErr("%s would build %d bytes, more than the limit of %d", fn, size, MaxValueBytes)
}

// guardedStrings is ext.Strings with its growing functions (replace,
// format, join, split) wrapped in size checks; the wrapped call is the
// library's own, so the results are identical below the bound.
func guardedStrings() ([]cel.EnvOption, error) {
	base, err := cel.NewEnv(ext.Strings())
	if err != nil {
		return nil, err
	}
	orig := map[string]*functions.Overload{}
	for _, name := range []string{"replace", "format", "join", "split"} {
		fn, ok := base.Functions()[name]
		if !ok {
			return nil, fmt.Errorf("cel strings library has no %s", name)
		}
		bindings, err := fn.Bindings()
		if err != nil {
			return nil, err
		}
		for _, b := range bindings {
			orig[b.Operator] = b
		}
	}
	call := func(id string, guard func(args []ref.Val) ref.Val) cel.OverloadOpt {
		o := orig[id]
		return cel.FunctionBinding(func(args ...ref.Val) ref.Val {
			if v := guard(args); v != nil {
				return v
			}
			if o.Function != nil {
				return o.Function(args...)
			}
			if o.Binary != nil && len(args) == 2 {
				return o.Binary(args[0], args[1])
			}
			return o.Unary(args[0])
		})
	}
	for _, id := range []string{"string_replace_string_string", "string_replace_string_string_int", "string_format",
		"list_join", "list_join_string", "string_split_string", "string_split_string_int"} {
		if orig[id] == nil {
			return nil, fmt.Errorf("cel strings library has no overload %s", id)
		}
	}
	str, lst, dyn := cel.StringType, cel.ListType(cel.StringType), cel.DynType
	return []cel.EnvOption{
		ext.Strings(),
		cel.Function("replace",
			cel.MemberOverload("string_replace_string_string", []*cel.Type{str, str, str}, str,
				call("string_replace_string_string", guardReplace)),
			cel.MemberOverload("string_replace_string_string_int", []*cel.Type{str, str, str, cel.IntType}, str,
				call("string_replace_string_string_int", guardReplace))),
		cel.Function("format",
			cel.MemberOverload("string_format", []*cel.Type{str, cel.ListType(dyn)}, str,
				call("string_format", guardFormat))),
		cel.Function("join",
			cel.MemberOverload("list_join", []*cel.Type{lst}, str, call("list_join", guardJoin)),
			cel.MemberOverload("list_join_string", []*cel.Type{lst, str}, str, call("list_join_string", guardJoin))),
		cel.Function("split",
			cel.MemberOverload("string_split_string", []*cel.Type{str, str}, lst,
				call("string_split_string", guardSplit)),
			cel.MemberOverload("string_split_string_int", []*cel.Type{str, str, cel.IntType}, lst,
				call("string_split_string_int", guardSplit))),
		cel.ASTValidators(literalRegexValidator{}),
	}, nil
}

// count is n limited to at most limit when limit is not negative, as
// strings.Replace and strings.SplitN read their n.
func limitCount(n int, args []ref.Val, at int) int {
	if len(args) > at {
		if lim, ok := args[at].(types.Int); ok && lim >= 0 && int64(lim) < int64(n) {
			return int(lim)
		}
	}
	return n
}

// occurrences is how often old occurs in s as strings.Replace counts it
// (an empty old matches before every rune and at the end).
func occurrences(s, old string) int {
	if old == "" {
		return utf8.RuneCountInString(s) + 1
	}
	return strings.Count(s, old)
}

// guardReplace refuses a replace whose result would exceed MaxValueBytes.
func guardReplace(args []ref.Val) ref.Val {
	s, ok1 := args[0].(types.String)
	old, ok2 := args[1].(types.String)
	repl, ok3 := args[2].(types.String)
	if !ok1 || !ok2 || !ok3 {
		return nil // the library reports the type error
	}
	n := limitCount(occurrences(string(s), string(old)), args, 3)
	size := uint64(len(s)) + uint64(n)*uint64(len(repl))
	if len(old) > 0 {
		size -= uint64(n) * uint64(len(old))
	}
	if size > MaxValueBytes {
		return errTooLarge("replace", size)
	}
	return nil
}

// guardJoin refuses a join whose result would exceed MaxValueBytes.
func guardJoin(args []ref.Val) ref.Val {
	l, ok := args[0].(traits.Lister)
	if !ok {
		return nil
	}
	sep := uint64(0)
	if len(args) > 1 {
		if s, ok := args[1].(types.String); ok {
			sep = uint64(len(s))
		}
	}
	n, _ := l.Size().(types.Int)
	size := uint64(0)
	for i := types.Int(0); i < n; i++ {
		if s, ok := l.Get(i).(types.String); ok {
			size += uint64(len(s))
		}
		if i > 0 {
			size += sep
		}
		if size > MaxValueBytes {
			return errTooLarge("join", size)
		}
	}
	return nil
}

// guardSplit refuses a split into more elements than MaxValueBytes holds
// at listElemBytes each.
func guardSplit(args []ref.Val) ref.Val {
	s, ok1 := args[0].(types.String)
	sep, ok2 := args[1].(types.String)
	if !ok1 || !ok2 {
		return nil
	}
	n := occurrences(string(s), string(sep))
	if sep != "" {
		n++ // pieces, not separators
	} else {
		n-- // one piece per rune
	}
	n = limitCount(n, args, 2)
	if size := uint64(n) * listElemBytes; size > MaxValueBytes {
		return errTooLarge("split", size)
	}
	return nil
}

// guardFormat bounds the result of format from its clauses: each clause
// formats the next argument once, so the result is the format string plus
// an upper bound of each formatted argument.
func guardFormat(args []ref.Val) ref.Val {
	f, ok1 := args[0].(types.String)
	l, ok2 := args[1].(traits.Lister)
	if !ok1 || !ok2 {
		return nil
	}
	n, _ := l.Size().(types.Int)
	size, arg := uint64(len(f)), types.Int(0)
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		if i+1 < len(f) && f[i+1] == '%' {
			i++
			continue
		}
		j := i + 1
		precision := 0
		if j < len(f) && f[j] == '.' {
			k := j + 1
			for k < len(f) && f[k] >= '0' && f[k] <= '9' {
				k++
			}
			precision, _ = strconv.Atoi(string(f[j+1 : k]))
			j = k
		}
		if j >= len(f) || arg >= n {
			return nil // malformed: the library reports it
		}
		size += formattedBound(l.Get(arg), f[j], precision, MaxValueBytes-min(size, MaxValueBytes))
		arg++
		i = j
		if size > MaxValueBytes {
			return errTooLarge("format", size)
		}
	}
	return nil
}

// formattedBound is an upper bound of the size of v formatted with verb,
// counted no further than limit (a larger value is then all that matters).
func formattedBound(v ref.Val, verb byte, precision int, limit uint64) uint64 {
	const number = 64 // any int, uint or %b/%o/%x of one, or a shortest double
	switch x := v.(type) {
	case types.String:
		if verb == 'x' || verb == 'X' {
			return 2 * uint64(len(x))
		}
		return uint64(len(x))
	case types.Bytes:
		if verb == 'x' || verb == 'X' {
			return 2 * uint64(len(x))
		}
		return uint64(len(x))
	case types.Double:
		// %f of 1e308 writes 309 digits before the point.
		return 320 + uint64(precision)
	case traits.Lister:
		return containerBound(x, nil, limit)
	case traits.Mapper:
		return containerBound(nil, x, limit)
	default:
		return number
	}
}

// containerBound bounds a list or map as %s writes it: elements quoted
// (a byte may become a four-byte escape), separated and bracketed.
func containerBound(l traits.Lister, m traits.Mapper, limit uint64) uint64 {
	size := uint64(2)
	add := func(v ref.Val) {
		switch x := v.(type) {
		case types.String:
			size += 4*uint64(len(x)) + 4
		case types.Bytes:
			size += 4*uint64(len(x)) + 5
		default:
			size += formattedBound(v, 's', 0, limit-min(size, limit)) + 2
		}
	}
	if l != nil {
		n, _ := l.Size().(types.Int)
		for i := types.Int(0); i < n && size <= limit; i++ {
			add(l.Get(i))
		}
		return size
	}
	for it := m.Iterator(); it.HasNext() == types.True && size <= limit; {
		k := it.Next()
		add(k)
		add(m.Get(k))
	}
	return size
}

// literalRegexValidator refuses matches() with a pattern that is not a
// literal: a pattern read from the event could be a megabyte long, and
// compiling it alone would allocate without bound, before any cost or
// program-size check could run. A literal pattern is compiled once, when
// the program is made, and its program size is checked here against
// MaxRegexProgram. (cel.RegexProgramSizeLimit would measure it too, but
// cel-go v0.31 compiles without simplifying, and panics on a counted
// repeat such as a{3}.)
type literalRegexValidator struct{}

// Name implements cel.ASTValidator.
func (literalRegexValidator) Name() string { return "hookline.literal_regex" }

// Validate implements cel.ASTValidator.
func (literalRegexValidator) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.CallKind)) {
		c := e.AsCall()
		if c.FunctionName() != overloads.Matches {
			continue
		}
		args := c.Args()
		pattern := 1
		if c.IsMemberFunction() {
			pattern = 0
		}
		if len(args) <= pattern {
			continue
		}
		arg := args[pattern]
		if arg.Kind() != ast.LiteralKind {
			iss.ReportErrorAtID(arg.ID(), "matches() needs a string literal as its pattern, not a value from the event")
			continue
		}
		if p, ok := arg.AsLiteral().Value().(string); ok {
			if err := regexProgramSize(p); err != nil {
				iss.ReportErrorAtID(arg.ID(), "%s", err)
			}
		}
	}
}

// regexProgramSize checks a pattern's compiled size against
// MaxRegexProgram, as regexp.Compile would compile it (simplified).
func regexProgramSize(pattern string) error {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return err
	}
	if sz := len(prog.Inst); sz > MaxRegexProgram {
		return fmt.Errorf("regex compiles to %d instructions, more than %d (counted repeats multiply it)", sz, MaxRegexProgram)
	}
	return nil
}
