// Package problem writes RFC 9457 problem details (application/problem+json),
// the one shape of every error Hookline's HTTP API returns.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
)

// FieldError says what is wrong with one field of the request. Field is a
// JSON path into the request body, e.g. "type" or "[2].data".
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Details is an RFC 9457 problem object with Hookline's "errors" extension.
type Details struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// TypeBase prefixes each problem type; the slug says what kind it is.
const TypeBase = "https://hookline.dev/problems/"

// New returns a problem of the given status; slug names its type.
func New(status int, slug, detail string) *Details {
	return &Details{Type: TypeBase + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}

// Invalid is a 400 listing the offending fields.
func Invalid(errs ...FieldError) *Details {
	d := New(http.StatusBadRequest, "validation", "the request has invalid fields")
	d.Errors = errs
	return d
}

// Write sends d.
func Write(w http.ResponseWriter, r *http.Request, d *Details) {
	if d.Instance == "" && r != nil {
		d.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}

// Text writes errs on one line for a log or a record header:
// "<field>: <detail>" each ("<detail>" alone for the body as a whole),
// separated by "; ".
func Text(errs []FieldError) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Detail
		if e.Field != "" {
			parts[i] = e.Field + ": " + e.Detail
		}
	}
	return strings.Join(parts, "; ")
}

// JSONError turns an encoding/json decoding error into a FieldError naming
// the field where it can.
func JSONError(err error) FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return FieldError{Field: typeErr.Field, Detail: fmt.Sprintf("must be %s, not %s", jsonKind(typeErr.Type.Kind()), typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return FieldError{Field: "", Detail: fmt.Sprintf("malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return FieldError{Field: strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), Detail: "unknown field"}
	case strings.Contains(err.Error(), "parsing time"):
		return FieldError{Field: "", Detail: "a timestamp must be RFC 3339, e.g. 2026-01-02T15:04:05Z: " + err.Error()}
	default:
		return FieldError{Field: "", Detail: "malformed JSON: " + err.Error()}
	}
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// MaxNesting is how deeply the JSON of a request body may nest (objects
// and arrays). Conditions are the deepest legitimate bodies: a tree at
// condition.MaxDepth takes two levels per group.
const MaxNesting = 128

// TooDeep reports where body's JSON first nests deeper than max: a
// FieldError naming the member it happens in, up to three path segments
// deep ("[3].data.a", "condition.all[0].all"), so that the answer names a
// field rather than a byte offset. encoding/json only says "exceeded max
// depth" at 10,000 levels. Malformed JSON is not its concern: it scans
// brackets outside strings and leaves the rest to the decoder.
func TooDeep(body []byte, max int) (FieldError, bool) {
	var stack []jsonFrame
	inString, escaped := false, false
	keyStart := -1
	for i, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				if keyStart >= 0 && len(stack) > 0 && !stack[len(stack)-1].array {
					stack[len(stack)-1].key = body[keyStart:i]
				}
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			keyStart = -1
			if len(stack) > 0 && !stack[len(stack)-1].array && expectsKey(body[:i]) {
				keyStart = i + 1
			}
		case '{', '[':
			stack = append(stack, jsonFrame{array: c == '['})
			if len(stack) > max {
				return FieldError{Field: pathOf(stack[:len(stack)-1], 3), Detail: fmt.Sprintf("nests JSON deeper than %d levels", max)}, true
			}
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if len(stack) > 0 && stack[len(stack)-1].array {
				stack[len(stack)-1].index++
			}
		}
	}
	return FieldError{}, false
}

// jsonFrame is an open object (with its current key) or array (with its
// current index) while TooDeep scans. The key points into the body: every
// key of every body is scanned, and only an answer needs strings.
type jsonFrame struct {
	array bool
	index int
	key   []byte
}

// expectsKey reports whether a string starting after prefix is an object
// key: the last significant byte before it opens the object or ends a
// member.
func expectsKey(prefix []byte) bool {
	for j := len(prefix) - 1; j >= 0; j-- {
		switch prefix[j] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', ',':
			return true
		default:
			return false
		}
	}
	return false
}

// pathOf writes the first n segments of a container path: keys joined by
// dots, indexes in brackets.
func pathOf(stack []jsonFrame, n int) string {
	var b strings.Builder
	for i, f := range stack {
		if i >= n {
			break
		}
		if f.array {
			fmt.Fprintf(&b, "[%d]", f.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.Write(f.key)
	}
	return b.String()
}
