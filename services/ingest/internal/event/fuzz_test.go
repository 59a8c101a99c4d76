package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/pkg/condition"
	"github.com/hookline/hookline/pkg/problem"
)

// FuzzParse checks that no input makes Parse, Validate or Record panic,
// that every problem says what is wrong, and that what passes validation
// becomes a record downstream consumers can read: valid UTF-8 JSON objects.
// Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		ins, batch, errs := Parse(body)
		if len(errs) > 0 {
			if ins != nil {
				t.Fatalf("Parse returned events and errors %+v", errs)
			}
			checkDetails(t, errs, "")
			return
		}
		if len(ins) == 0 || len(ins) > MaxBatch || (!batch && len(ins) != 1) {
			t.Fatalf("Parse accepted %d events (batch %v)", len(ins), batch)
		}
		for i := range ins {
			prefix := ""
			if batch {
				prefix = "[" + itoa(i) + "]."
			}
			if errs := ins[i].Validate(prefix); len(errs) > 0 {
				checkDetails(t, errs, prefix)
				continue
			}
			ev := ins[i].Record("tenant", now)
			if ev.ID == "" || ev.Subject == "" || ev.Type != ins[i].Type || ev.Changed == nil {
				t.Fatalf("record %+v", ev)
			}
			assertObject(t, "data", ev.Data)
			if ev.Previous != nil {
				assertObject(t, "previous", *ev.Previous)
			}
		}
	})
}

func checkDetails(t *testing.T, errs []problem.FieldError, prefix string) {
	t.Helper()
	for _, e := range errs {
		if strings.TrimSpace(e.Detail) == "" {
			t.Fatalf("error without a detail: %+v", errs)
		}
		if !strings.HasPrefix(e.Field, prefix) {
			t.Fatalf("error field %q lacks prefix %q", e.Field, prefix)
		}
	}
}

func assertObject(t *testing.T, name, s string) {
	t.Helper()
	if !utf8.ValidString(s) || !json.Valid([]byte(s)) || !bytes.HasPrefix([]byte(s), []byte("{")) {
		t.Fatalf("%s of a valid event is not a UTF-8 JSON object: %q", name, s)
	}
	if _, err := condition.DecodeValue([]byte(s)); err != nil {
		t.Fatalf("%s of a valid event cannot be read by the matcher: %v", name, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// FuzzCompact checks that compact removes from valid JSON exactly what
// json.Compact does.
func FuzzCompact(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":1}`, "{ \"a\" :\t[1, 2 ,\n3],\r\"b\": \"x y\" }",
		`{"s":"quote \" and \\ and \\\" then space "}`, `{"u":"\u00e9 \t"}`, ` {"a": {"b": null}} `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, raw); err != nil {
			t.Fatal(err)
		}
		if got := compact(raw); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("compact(%q) = %q, json.Compact: %q", raw, got, want.Bytes())
		}
	})
}
