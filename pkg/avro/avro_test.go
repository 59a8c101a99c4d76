package avro

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hamba/avro/v2"
)

// A small record with every shape the scanner walks: string, long,
// arrays of strings and of records, a map of arrays, a nullable union.
const testSchema = `{
  "type": "record", "name": "Rec", "namespace": "test",
  "fields": [
    {"name": "name", "type": "string"},
    {"name": "n", "type": "long"},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "items", "type": {"type": "array", "items": {
      "type": "record", "name": "Item", "fields": [{"name": "v", "type": "int"}]}}},
    {"name": "attrs", "type": {"type": "map", "values": {"type": "array", "items": "int"}}},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}`

type testItem struct {
	V int32 `avro:"v"`
}

type testRec struct {
	Name  string             `avro:"name"`
	N     int64              `avro:"n"`
	Tags  []string           `avro:"tags"`
	Items []testItem         `avro:"items"`
	Attrs map[string][]int32 `avro:"attrs"`
	Note  *string            `avro:"note"`
}

// registryFS builds a registry from schema texts keyed by id.
func registryFS(t *testing.T, ids string, files map[string]string) (*Registry, error) {
	t.Helper()
	fsys := fstest.MapFS{"ids.json": {Data: []byte(ids)}}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return LoadFS(fsys)
}

func testCodec(t *testing.T) *Codec[testRec] {
	t.Helper()
	reg, err := registryFS(t, `{"schemas":[{"id":42,"name":"test.Rec","file":"rec.avsc"}]}`, map[string]string{"rec.avsc": testSchema})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	c, err := NewCodec[testRec](reg, "test.Rec")
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

// frame prefixes an Avro body with the wire-format header for id.
func frame(id uint32, body ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0}, id)
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

// long is the Avro encoding of v (zigzag varint, as encoding/binary does).
func long(vs ...int64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func str(s string) []byte { return append(long(int64(len(s))), s...) }

func TestSchemaID(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    uint32
		wantErr bool
	}{
		{name: "nil", in: nil, wantErr: true},
		{name: "four bytes", in: []byte{0, 0, 0, 1}, wantErr: true},
		{name: "magic 1", in: []byte{1, 0, 0, 0, 1}, wantErr: true},
		{name: "id 1", in: []byte{0, 0, 0, 0, 1}, want: 1},
		{name: "big endian", in: []byte{0, 1, 2, 3, 4, 0xff}, want: 0x01020304},
		{name: "max id", in: []byte{0, 0xff, 0xff, 0xff, 0xff}, want: math.MaxUint32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SchemaID(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrNotFramed) {
					t.Fatalf("SchemaID(% x) = %d, %v; want ErrNotFramed", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("SchemaID(% x) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestLoadEmbedded(t *testing.T) {
	reg, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	entries := reg.Entries()
	if len(entries) == 0 {
		t.Fatal("no schemas loaded")
	}
	for i, e := range entries {
		if i > 0 && entries[i-1].ID >= e.ID {
			t.Errorf("Entries not in id order: %d before %d", entries[i-1].ID, e.ID)
		}
		if got, ok := reg.ByID(e.ID); !ok || got.Name != e.Name {
			t.Errorf("ByID(%d) = %v, %v", e.ID, got.Name, ok)
		}
		named, ok := e.Schema.(avro.NamedSchema)
		if !ok || named.FullName() != e.Name {
			t.Errorf("entry %d: schema is not the record %s", e.ID, e.Name)
		}
		if e.Text == "" {
			t.Errorf("entry %d: no schema text", e.ID)
		}
	}
	if _, ok := reg.ByName("dev.hookline.Nope"); ok {
		t.Error("ByName found an unknown record")
	}
	if _, ok := reg.ByID(0); ok {
		t.Error("ByID found id 0")
	}
}

func TestLoadErrors(t *testing.T) {
	const ok = `{"type":"record","name":"A","namespace":"x","fields":[{"name":"a","type":"string"}]}`
	tests := []struct {
		name    string
		ids     string
		files   map[string]string
		wantErr string
	}{
		{name: "bad json", ids: `{"schemas":[`, wantErr: "parse ids.json"},
		{name: "missing file", ids: `{"schemas":[{"id":1,"name":"x.A","file":"a.avsc"}]}`, wantErr: "schema 1"},
		{name: "bad schema", ids: `{"schemas":[{"id":1,"name":"x.A","file":"a.avsc"}]}`, files: map[string]string{"a.avsc": `{"type":"record"}`}, wantErr: "parse a.avsc"},
		{name: "name mismatch", ids: `{"schemas":[{"id":1,"name":"x.B","file":"a.avsc"}]}`, files: map[string]string{"a.avsc": ok}, wantErr: "does not define x.B"},
		{name: "not a record", ids: `{"schemas":[{"id":1,"name":"x.A","file":"a.avsc"}]}`, files: map[string]string{"a.avsc": `"string"`}, wantErr: "does not define x.A"},
		{name: "duplicate id", ids: `{"schemas":[{"id":1,"name":"x.A","file":"a.avsc"},{"id":1,"name":"x.A","file":"a.avsc"}]}`, files: map[string]string{"a.avsc": ok}, wantErr: "used twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registryFS(t, tc.ids, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("LoadFS error = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
	t.Run("no ids.json", func(t *testing.T) {
		if _, err := LoadFS(fstest.MapFS{}); err == nil {
			t.Fatal("LoadFS of an empty FS succeeded")
		}
	})
}

func TestNewCodecUnknownName(t *testing.T) {
	reg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewCodec[testRec](reg, "dev.hookline.Nope"); err == nil {
		t.Fatal("NewCodec of an unknown record succeeded")
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c := testCodec(t)
	note := "n"
	tests := []struct {
		name string
		in   testRec
		want testRec
	}{
		{
			name: "populated",
			in:   testRec{Name: "a", N: math.MinInt64, Tags: []string{"x", ""}, Items: []testItem{{1}, {-2}}, Attrs: map[string][]int32{"k": {1, 2}, "e": {}}, Note: &note},
			want: testRec{Name: "a", N: math.MinInt64, Tags: []string{"x", ""}, Items: []testItem{{1}, {-2}}, Attrs: map[string][]int32{"k": {1, 2}, "e": {}}, Note: &note},
		},
		{
			name: "zero",
			in:   testRec{},
			want: testRec{Tags: []string{}, Items: []testItem{}, Attrs: map[string][]int32{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := c.Marshal(&tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if id, err := SchemaID(b); err != nil || id != 42 {
				t.Fatalf("SchemaID = %d, %v; want 42", id, err)
			}
			n, err := scan(c.schema, b[headerLen:])
			if err != nil || n != len(b)-headerLen {
				t.Errorf("scan = %d, %v; want %d, nil", n, err, len(b)-headerLen)
			}
			var got testRec
			if err := c.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestUnmarshalCorrupt feeds bodies that hamba alone mishandles: block
// counts that overflow its running count (it then writes through a
// negative index and crashes the process), counts and lengths far beyond
// the input (it allocates for them first), and bodies cut short (it takes
// io.EOF for success).
func TestUnmarshalCorrupt(t *testing.T) {
	c := testCodec(t)
	empty := append(str(""), long(0)...) // name, n
	tail := long(0, 0, 0)                // items, attrs, note (null)
	tests := []struct {
		name    string
		body    []byte
		wantErr string
	}{
		{name: "empty body", body: nil, wantErr: "truncated"},
		{name: "cut after name", body: str("abc"), wantErr: "truncated"},
		{name: "cut inside long", body: append(str(""), 0x80), wantErr: "truncated"},
		{name: "long too long", body: append(str(""), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), wantErr: "overflows"},
		{name: "negative string length", body: long(-3), wantErr: "negative length"},
		{name: "string past the end", body: long(1000), wantErr: "truncated"},
		{name: "string over MaxValueSize", body: long(MaxValueSize + 1), wantErr: "more than"},
		{name: "MinInt64 block count", body: cat(empty, long(math.MinInt64, 0, 0), tail), wantErr: "invalid block count"},
		{name: "count overflow after MinInt64", body: cat(empty, long(math.MinInt64, 0, math.MaxInt64), str("hi"), str("hi"), long(0), tail), wantErr: "invalid block count"},
		{name: "count overflow", body: cat(empty, long(1), str("a"), long(math.MaxInt64), str("hi"), long(0), tail), wantErr: "more than"},
		{name: "count beyond input", body: cat(empty, long(1<<40), str("a"), long(0), tail), wantErr: "more than"},
		{name: "count just beyond input", body: cat(empty, long(3), str("a"), long(0), tail), wantErr: "truncated"},
		{name: "negative block size", body: cat(empty, long(-1, -5), str("a"), long(0), tail), wantErr: "negative block size"},
		{name: "too many items", body: cat(empty, long(maxItems+1), tail), wantErr: "more than"},
		{name: "map key past the end", body: cat(empty, long(0, 0, 1, 99)), wantErr: "attrs"},
		{name: "int out of range", body: cat(empty, long(0, 1, 1<<40, 0, 0, 0)), wantErr: "out of range"},
		{name: "union branch out of range", body: cat(empty, long(0, 0, 0, 2)), wantErr: "union branch"},
		{name: "negative union branch", body: cat(empty, long(0, 0, 0, -1)), wantErr: "union branch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := testRec{Name: "old", Tags: []string{"old"}}
			err := c.Unmarshal(frame(42, tc.body), &v)
			if err == nil {
				t.Fatalf("Unmarshal(% x) succeeded: %+v", tc.body, v)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestUnmarshalIgnoresTrailingBytes(t *testing.T) {
	c := testCodec(t)
	b, err := c.Marshal(&testRec{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var v testRec
	if err := c.Unmarshal(append(b, 0xde, 0xad), &v); err != nil {
		t.Fatalf("Unmarshal with trailing bytes: %v", err)
	}
	if v.Name != "a" {
		t.Errorf("Name = %q, want a", v.Name)
	}
}

func TestMarshalTooBig(t *testing.T) {
	c := testCodec(t)
	_, err := c.Marshal(&testRec{Name: strings.Repeat("x", MaxValueSize)})
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("Marshal of a value over MaxValueSize: err = %v", err)
	}
	if _, err := c.Marshal(&testRec{Name: strings.Repeat("x", MaxValueSize-64)}); err != nil {
		t.Fatalf("Marshal just under MaxValueSize: %v", err)
	}
}

func TestMarshalError(t *testing.T) {
	reg, err := registryFS(t, `{"schemas":[{"id":1,"name":"x.A","file":"a.avsc"}]}`,
		map[string]string{"a.avsc": `{"type":"record","name":"A","namespace":"x","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}]}`})
	if err != nil {
		t.Fatal(err)
	}
	type withEnum struct {
		E string `avro:"e"`
	}
	c, err := NewCodec[withEnum](reg, "x.A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Marshal(&withEnum{E: "C"}); err == nil || !strings.Contains(err.Error(), "encode x.A") {
		t.Fatalf("Marshal of an unknown enum symbol: err = %v", err)
	}
	// The pooled writer must not carry the error into the next call.
	b, err := c.Marshal(&withEnum{E: "B"})
	if err != nil {
		t.Fatalf("Marshal after a failed one: %v", err)
	}
	if want := frame(1, long(1)); string(b) != string(want) {
		t.Errorf("Marshal = % x, want % x", b, want)
	}
}

// TestDecodedBytesAreClipped: hamba decodes short bytes into one shared
// slab, so every decoded []byte must have no spare capacity, or appending
// to it would overwrite the bytes decoded after it. The schema nests bytes
// in a recursive record and a map to reach every path of the clipper.
func TestDecodedBytesAreClipped(t *testing.T) {
	type node struct {
		Data []byte            `avro:"data"`
		Meta map[string][]byte `avro:"meta"`
		Next *node             `avro:"next"`
	}
	reg, err := registryFS(t, `{"schemas":[{"id":5,"name":"test.Node","file":"node.avsc"}]}`, map[string]string{"node.avsc": `{
	  "type": "record", "name": "Node", "namespace": "test",
	  "fields": [
	    {"name": "data", "type": "bytes"},
	    {"name": "meta", "type": {"type": "map", "values": "bytes"}},
	    {"name": "next", "type": ["null", "Node"], "default": null}
	  ]}`})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec[node](reg, "test.Node")
	if err != nil {
		t.Fatal(err)
	}
	in := node{Data: []byte("a1"), Meta: map[string][]byte{"k": []byte("m1")}, Next: &node{Data: []byte("a2"), Meta: map[string][]byte{"k": []byte("m2")}, Next: &node{Data: []byte("a3")}}}
	b, err := c.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var got node
	if err := c.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var all [][]byte
	for n := &got; n != nil; n = n.Next {
		all = append(all, n.Data)
		for _, m := range n.Meta {
			all = append(all, m)
		}
	}
	if len(all) != 5 {
		t.Fatalf("decoded %d byte fields, want 5", len(all))
	}
	for i, f := range all {
		if cap(f) != len(f) {
			t.Errorf("field %d (%q): cap %d > len %d", i, f, cap(f), len(f))
		}
		_ = append(f, "XXXXXXXX"...)
	}
	want := []string{"a1", "m1", "a2", "m2", "a3"}
	for i, f := range all {
		if string(f) != want[i] {
			t.Errorf("field %d = %q after appending to the others, want %q", i, f, want[i])
		}
	}
}
