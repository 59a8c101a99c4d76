package condition

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
	"google.golang.org/protobuf/types/known/structpb"
)

// Limits on CEL expressions.
const (
	// MaxExpressionLen is the longest CEL source accepted, in bytes.
	MaxExpressionLen = 4096
	// ExpressionCostLimit caps the work of one evaluation, in CEL cost
	// units (roughly one per operation or per element visited). 10,000 lets
	// an expression scan arrays of a few thousand elements but stops nested
	// loops that would cost the matcher milliseconds per event.
	ExpressionCostLimit = 10_000
	// maxExpressionNodes bounds the parsed AST, macros expanded.
	maxExpressionNodes = 1000
	// MaxEvalTime bounds one evaluation's wall time, checked every
	// interruptEvery comprehension steps. The cost limit is the bound that
	// decides, the same way on every machine; this is only the backstop
	// for a step slower than its cost says, so it is far above what the
	// cost limit allows (a few milliseconds, 0.15 s under the race detector
	// on a loaded machine): a deadline that a busy machine could reach would
	// make matching depend on load.
	MaxEvalTime = time.Second
	// interruptEvery is how many comprehension steps run between checks
	// of MaxEvalTime.
	interruptEvery = 100
)

// celEnv declares the one variable expressions see, event, holding the
// Document's root. Its members are dyn, so expressions are type-checked
// for their shape and output but field types are checked at run time.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	strs, err := guardedStrings()
	if err != nil {
		return nil, err
	}
	return cel.NewEnv(append([]cel.EnvOption{
		cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
		// Event numbers are doubles; let them compare with int literals
		// (event.data.total > 100) the way users expect.
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		cel.ParserExpressionSizeLimit(MaxExpressionLen),
		cel.ExpressionNodeLimit(maxExpressionNodes),
	}, strs...)...)
})

// Expression is a compiled CEL rule over an event, for subscriptions whose
// rule outgrows the JSON condition tree. It is immutable and safe for
// concurrent use.
//
// The event is the variable event, holding the Document's root, so fields
// read as event.type, event.data.status or event.data.items[0].sku. Numbers
// are doubles. Reading a missing key is a runtime error; guard optional
// fields with has(event.data.x) or use event.data.?x.orValue(default).
type Expression struct {
	src string
	prg cel.Program
}

// ValueExpr is a compiled CEL expression that computes a value from an
// event, for derived fields and fallbacks in payload shaping. It sees the
// same event variable as Expression and may produce any type.
type ValueExpr struct {
	src string
	prg cel.Program
}

// CompileExpression compiles and type-checks a CEL rule. The rule must
// evaluate to a bool: an expression whose type is known to be something
// else (a string, a number, a list...) is rejected here; one whose type is
// only known at run time (dyn, such as event.data.flag) is accepted and
// checked on every evaluation.
func CompileExpression(src string) (*Expression, error) {
	ast, prg, err := compileCEL(src)
	if err != nil {
		return nil, err
	}
	if out := ast.OutputType(); !out.IsExactType(cel.BoolType) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("expression must evaluate to a bool, not %s", out)
	}
	return &Expression{src: src, prg: prg}, nil
}

// CompileValue compiles a CEL expression for ValueExpr.Eval. It may have
// any result type with a JSON form: one known to be a CEL type value
// (type(event)) is rejected here.
func CompileValue(src string) (*ValueExpr, error) {
	ast, prg, err := compileCEL(src)
	if err != nil {
		return nil, err
	}
	if out := ast.OutputType(); out.Kind() == types.TypeKind {
		return nil, fmt.Errorf("expression must produce a JSON value, not %s", out)
	}
	return &ValueExpr{src: src, prg: prg}, nil
}

func compileCEL(src string) (*cel.Ast, cel.Program, error) {
	if src == "" {
		return nil, nil, errors.New("expression is empty")
	}
	if len(src) > MaxExpressionLen {
		return nil, nil, fmt.Errorf("expression is longer than %d bytes", MaxExpressionLen)
	}
	env, err := celEnv()
	if err != nil {
		return nil, nil, fmt.Errorf("cel environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, nil, fmt.Errorf("invalid expression: %w", iss.Err())
	}
	prg, err := env.Program(ast,
		cel.CostLimit(ExpressionCostLimit),
		cel.CostTracking(builtBytes{}),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid expression: %w", err)
	}
	return ast, prg, nil
}

// String returns the expression's source.
func (e *Expression) String() string { return e.src }

// String returns the expression's source.
func (v *ValueExpr) String() string { return v.src }

// Match evaluates the rule against an event. A runtime error (a missing
// key, a type mismatch, the cost limit) is returned with false; callers
// treat it as no match.
func (e *Expression) Match(doc Document) (bool, error) {
	out, err := eval(e.prg, doc)
	if err != nil {
		return false, fmt.Errorf("evaluate expression: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("expression returned %s, not a bool", out.Type().TypeName())
	}
	return b, nil
}

// Eval computes the expression's value for an event, converted to the
// JSON-shaped Go values DecodeValue produces: map[string]any, []any,
// float64 (CEL ints and uints too), string, bool or nil. Timestamps and
// durations become strings, bytes become base64, and an empty optional
// becomes nil.
func (v *ValueExpr) Eval(doc Document) (any, error) {
	out, err := eval(v.prg, doc)
	if err != nil {
		return nil, fmt.Errorf("evaluate expression: %w", err)
	}
	return nativeJSON(out)
}

// evalTimeout is MaxEvalTime; tests shorten it.
var evalTimeout = MaxEvalTime

// eval runs prg on doc within evalTimeout.
func eval(prg cel.Program, doc Document) (ref.Val, error) {
	ctx, cancel := context.WithTimeout(context.Background(), evalTimeout)
	defer cancel()
	out, _, err := prg.ContextEval(ctx, eventActivation{root: doc.root})
	return out, err
}

var structValueType = reflect.TypeFor[*structpb.Value]()

func nativeJSON(val ref.Val) (any, error) {
	if opt, ok := val.(*types.Optional); ok {
		if !opt.HasValue() {
			return nil, nil
		}
		val = opt.GetValue()
	}
	pb, err := val.ConvertToNative(structValueType)
	if err != nil {
		return nil, fmt.Errorf("expression result %s is not JSON: %w", val.Type().TypeName(), err)
	}
	return pb.(*structpb.Value).AsInterface(), nil
}

// eventActivation binds the event variable without building a map per
// evaluation.
type eventActivation struct {
	root map[string]any
}

var emptyRoot = map[string]any{}

// ResolveName implements interpreter.Activation.
func (a eventActivation) ResolveName(name string) (any, bool) {
	if name != "event" {
		return nil, false
	}
	if a.root == nil {
		return emptyRoot, true
	}
	return a.root, true
}

// Parent implements interpreter.Activation.
func (a eventActivation) Parent() interpreter.Activation { return nil }
