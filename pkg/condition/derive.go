package condition

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxDefaultSize is the largest default of a derived field, in bytes of JSON.
const MaxDefaultSize = 4096

// MaxDerivedBytes bounds what a subscription's derived fields add to one
// delivery, in bytes of JSON, values and defaults together: the record
// limit is sized for an event of the largest size plus this much
// (docs/limits.md). A field whose value would go past it gets its default
// if that still fits, and is left out otherwise.
const MaxDerivedBytes = 64 << 10

// Derived is a compiled derived field of payload shaping: a value computed
// from the event by a CEL expression and written into the delivered body's
// data. It is immutable and safe for concurrent use.
type Derived struct {
	// Field is the path as written, such as "data.total_eur".
	Field string
	// Path is the object keys below data, such as ["total_eur"].
	Path []string
	// Default is the JSON value written when the expression fails at run
	// time; nil when there is none, and the field is then left out.
	Default json.RawMessage

	value *ValueExpr
}

// CompileDerived compiles a derived field. field is a dotted path of object
// keys under data ("data.total_eur", "data.customer.name"); intermediate
// objects are created as needed. expression is CEL over the variable event,
// as for CompileExpression, of any type that has a JSON form; fallbacks are
// written in CEL itself (event.data.?name.orValue("unknown")). def is the
// JSON text of the value to use when the expression fails at run time, or
// nil for none.
//
// Every problem found is returned, each as an *Error whose Key is "field",
// "expression" or "default", joined with errors.Join.
func CompileDerived(field, expression string, def *string) (*Derived, error) {
	d := &Derived{Field: field}
	var errs []error
	bad := func(key string, err error) { errs = append(errs, &Error{Key: key, Reason: err.Error()}) }
	var err error
	if d.Path, err = derivedPath(field); err != nil {
		bad("field", err)
	}
	if d.value, err = CompileValue(expression); err != nil {
		bad("expression", err)
	}
	if def != nil {
		if d.Default, err = compactJSON(*def); err != nil {
			bad("default", err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// derivedPath checks a derived field's path and returns its keys below data.
func derivedPath(field string) ([]string, error) {
	rest, ok := strings.CutPrefix(field, "data.")
	switch {
	case !ok:
		return nil, fmt.Errorf("field %q must be a path under data, such as data.total_eur", field)
	case len(field) > MaxFieldLen:
		return nil, fmt.Errorf("field path longer than %d bytes", MaxFieldLen)
	case strings.ContainsAny(rest, "[]"):
		return nil, fmt.Errorf("field %q: derived fields are set on objects, not array elements", field)
	}
	keys := strings.Split(rest, ".")
	if len(keys)+1 > MaxFieldSegments {
		return nil, fmt.Errorf("field path %q has more than %d segments", field, MaxFieldSegments)
	}
	for _, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("field path %q has an empty segment", field)
		}
	}
	return keys, nil
}

// compactJSON checks a default's JSON text and returns it compacted.
func compactJSON(text string) (json.RawMessage, error) {
	if len(text) > MaxDefaultSize {
		return nil, fmt.Errorf("default is larger than %d bytes", MaxDefaultSize)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(text)); err != nil {
		return nil, fmt.Errorf("default is not JSON: %w", err)
	}
	return b.Bytes(), nil
}

// Eval computes the field's value for an event, as JSON. It fails when the
// expression does (a missing key, a type mismatch, the cost limit) or when
// its result has no JSON form (a NaN, a type); the caller then falls back
// to Default.
func (d *Derived) Eval(doc Document) (json.RawMessage, error) {
	v, err := d.value.Eval(doc)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("expression result is not JSON: %w", err)
	}
	return out, nil
}
