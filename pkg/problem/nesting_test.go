package problem

import (
	"strings"
	"testing"
)

func TestTooDeep(t *testing.T) {
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	arr := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		name, body, field string
	}{
		{"shallow", `{"type":"a","data":` + deep(10) + `}`, ""},
		{"at the limit", deep(MaxNesting), ""},
		{"data", `{"type":"a","data":` + deep(MaxNesting) + `}`, "data.a.a"},
		{"previous after data", `{"data":{"x":"{[{[\"}"},"previous":` + arr(MaxNesting) + `}`, "previous[0][0]"},
		{"batch", `[{"data":{}},{"type":"x","data":{"b":` + deep(MaxNesting) + `}}]`, "[1].data.b"},
		{"condition", `{"url":"https://x","condition":{"all":[` + deep(MaxNesting) + `]}}`, "condition.all[0]"},
		{"key with escapes", `{"a\"b":` + arr(MaxNesting) + `}`, `a\"b[0][0]`},
		{"brackets in strings", `{"s":"` + strings.Repeat("[{", 500) + `"}`, ""},
	}
	for _, tc := range cases {
		fe, deep := TooDeep([]byte(tc.body), MaxNesting)
		switch {
		case tc.field == "" && deep:
			t.Errorf("%s: TooDeep = %+v, want none", tc.name, fe)
		case tc.field != "" && (!deep || fe.Field != tc.field || !strings.Contains(fe.Detail, "deeper than 128")):
			t.Errorf("%s: TooDeep = %+v, %v; want field %q", tc.name, fe, deep, tc.field)
		}
	}
}
