package condition

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// decodeCases exercise the corners where a hand-written decoder could part
// ways with encoding/json.
var decodeCases = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `"x"`, `""`,
	` {"a" : [1, 2.5, -3e2, 1E+2, 0.1e-1, 1.000000000000000000001] } `,
	`{"a":1,"a":2}`,
	`[0.1, 0.2, 0.3, 123456789012345, 1234567890123456789, 12345678901234567890123, 9007199254740993]`,
	`[1e308, 1e-308, 4.9e-324, 1e-400, 0.0000000000000000000001, 0.00000000000000000000000001]`,
	`[-0.0, 3.141592653589793, 2.718281828459045235360287]`,
	`["\"\\\/\b\f\n\r\t", "\u00e9\u4e2d", "\ud83d\ude00", "\ud800", "\ud800x", "\udc00\ud800", "\ud800\u0041"]`,
	"[\"caf\xc3\xa9\", \"bad\xff\xfeutf8\", \"\xed\xa0\x80\", \"tab\x7f\"]",
	`{"nested":{"deep":[{"x":[[[]]]}],"e":{}}}`,
	// Invalid inputs: both decoders must reject them.
	``, ` `, `{`, `[`, `]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{1:2}`,
	`01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x10`, `NaN`, `Infinity`, `1e400`, `-1e400`,
	`tru`, `nul`, `truex`, `"abc`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\x01b\"", `"\`,
	`{"a":1}{`, `[1]]`, `"\ud800\u12"`,
}

func TestDecodeValueMatchesEncodingJSON(t *testing.T) {
	deep := strings.Repeat("[", maxDecodeDepth) + strings.Repeat("]", maxDecodeDepth)
	tooDeep := "[" + deep + "]"
	for _, src := range append(decodeCases, deep, tooDeep) {
		name := src
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			checkDecodeAgainstStdlib(t, []byte(src))
		})
	}
}

func checkDecodeAgainstStdlib(t *testing.T, src []byte) {
	t.Helper()
	var want any
	wantErr := json.Unmarshal(src, &want)
	got, err := DecodeValue(src)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("DecodeValue(%q) error = %v, encoding/json error = %v", src, err, wantErr)
	}
	fromString, serr := DecodeString(string(src))
	if (serr != nil) != (err != nil) || !reflect.DeepEqual(fromString, got) || !sameFloatBits(fromString, got) {
		t.Fatalf("DecodeString(%q) = %#v, %v; DecodeValue gave %#v, %v", src, fromString, serr, got, err)
	}
	if err != nil {
		if got != nil {
			t.Fatalf("DecodeValue(%q) returned %v with its error", src, got)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeValue(%q)\n got %#v\nwant %#v", src, got, want)
	}
	if !sameFloatBits(got, want) {
		t.Fatalf("DecodeValue(%q): float bits differ from encoding/json", src)
	}
}

// sameFloatBits also tells -0 from 0, which reflect.DeepEqual does not.
func sameFloatBits(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []any:
		y := b.([]any)
		for i := range x {
			if !sameFloatBits(x[i], y[i]) {
				return false
			}
		}
	case map[string]any:
		y := b.(map[string]any)
		for k := range x {
			if !sameFloatBits(x[k], y[k]) {
				return false
			}
		}
	}
	return true
}

func TestDecodeValueOwnsItsStrings(t *testing.T) {
	src := []byte(`{"key":"value"}`)
	v, err := DecodeValue(src)
	if err != nil {
		t.Fatal(err)
	}
	copy(src, `{"XXX":"YYYYY"}`)
	if m := v.(map[string]any); m["key"] != "value" {
		t.Fatalf("decoded value changed with its input: %v", m)
	}
}

func TestDecodeDocumentRejectsNonObjects(t *testing.T) {
	for _, src := range []string{`[]`, `"x"`, `null`, `1`, `{`} {
		if _, err := DecodeDocument([]byte(src)); err == nil {
			t.Errorf("DecodeDocument(%s) succeeded", src)
		}
	}
	if _, err := DecodeDocument([]byte(`[]`)); err == nil || err.Error() != "event must be a JSON object, got array" {
		t.Errorf("DecodeDocument([]) error = %v", err)
	}
}

func TestSyntaxErrorOffset(t *testing.T) {
	_, err := DecodeValue([]byte(`{"a": [1, 2,, 3]}`))
	se, ok := err.(*SyntaxError)
	if !ok || se.Offset != 12 {
		t.Fatalf("error = %#v, want *SyntaxError at offset 12", err)
	}
}

var jsonUnmarshal = json.Unmarshal
