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
