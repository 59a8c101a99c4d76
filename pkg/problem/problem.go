// Package problem writes RFC 9457 problem details (application/problem+json),
// the one shape of every error Hookline's HTTP API returns.
package problem

import (
	"encoding/json"
	"net/http"
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
