package avro

// Releasing a schema change
//
// schemas/<name>.avsc is the current schema of a record; schemas/history/
// holds every released version as <name>.vN.avsc, the latest identical to
// the current file; schemas/ids.json gives every released version its own
// schema id, ids only ever going up ("never reuse or renumber an id"). To
// change a schema:
//
//  1. Edit schemas/<name>.avsc. New readers must read old data: add fields
//     only with a default, never change a field's type except by Avro's
//     promotions (int to long, float or double; string to bytes...), rename
//     only with an alias, make a field nullable but never the reverse.
//  2. Copy it to schemas/history/<name>.v<N+1>.avsc. Never edit a released
//     version.
//  3. In ids.json, point the record's current id at its snapshot
//     history/<name>.v<N>.avsc (values already written under that id stay
//     readable, and the registry paths keep serving it), and add a new
//     entry with the next unused id for <name>.avsc. The highest id of a
//     record is its current schema: Codec writes it and resolves values
//     written under the older ids to it.
//  4. go test ./avro/ checks all of the above.
//
// The tests below fail when a schema changes without a snapshot or an id,
// when a snapshot has no current schema, and when the current schema cannot
// read what a released version wrote.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/hookline/hookline/schemas"
)

var historyName = regexp.MustCompile(`^([a-z0-9_]+)\.v([1-9][0-9]*)\.avsc$`)

// released is one file of schemas/history.
type released struct {
	file    string // history/event.v1.avsc
	base    string // event
	version int
	name    string // dev.hookline.Event
	text    []byte
	schema  avro.Schema
}

// parse parses schema text on its own, as a registry or a consumer would.
func parse(t *testing.T, text []byte) avro.Schema {
	t.Helper()
	s, err := avro.ParseBytesWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s
}

// history reads the history folder of fsys, grouped by record full name
// and sorted by version. Files it cannot use are reported as problems.
func history(t *testing.T, fsys fs.FS) (map[string][]released, []string) {
	t.Helper()
	var problems []string
	files, err := fs.ReadDir(fsys, "history")
	if err != nil {
		return nil, []string{"no history folder: " + err.Error()}
	}
	out := map[string][]released{}
	for _, f := range files {
		m := historyName.FindStringSubmatch(f.Name())
		if m == nil {
			problems = append(problems, fmt.Sprintf("history/%s: want <name>.v<N>.avsc", f.Name()))
			continue
		}
		text, err := fs.ReadFile(fsys, "history/"+f.Name())
		if err != nil {
			t.Fatal(err)
		}
		s, err := avro.ParseBytesWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			problems = append(problems, fmt.Sprintf("history/%s: %v", f.Name(), err))
			continue
		}
		v, _ := strconv.Atoi(m[2])
		r := released{file: "history/" + f.Name(), base: m[1], version: v, name: fullName(s), text: text, schema: s}
		out[r.name] = append(out[r.name], r)
	}
	for _, rs := range out {
		slices.SortFunc(rs, func(a, b released) int { return a.version - b.version })
	}
	return out, problems
}

// idEntry is one line of ids.json.
type idEntry struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
	File string `json:"file"`
}

// idTable reads ids.json, grouped by record full name and sorted by id.
func idTable(t *testing.T, fsys fs.FS) map[string][]idEntry {
	t.Helper()
	raw, err := fs.ReadFile(fsys, "ids.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Schemas []idEntry `json:"schemas"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	out := map[string][]idEntry{}
	for _, e := range table.Schemas {
		out[e.Name] = append(out[e.Name], e)
	}
	for _, es := range out {
		slices.SortFunc(es, func(a, b idEntry) int { return int(a.ID) - int(b.ID) })
	}
	return out
}

// sameJSON reports whether two schema texts are the same JSON, ignoring
// layout.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// checkHistory lists where the schemas, history and ids.json of fsys
// disagree with the release steps above.
func checkHistory(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	reg, err := LoadFS(fsys)
	if err != nil {
		return []string{err.Error()}
	}
	hist, problems := history(t, fsys)
	ids := idTable(t, fsys)
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	for name, versions := range hist {
		if _, ok := reg.ByName(name); !ok {
			report("%s: released as %s but has no current schema in ids.json", name, versions[0].file)
		}
	}
	for name, entries := range ids {
		versions := hist[name]
		if len(versions) == 0 {
			report("%s: no released version in history/: copy the current schema there as v1", name)
			continue
		}
		current := entries[len(entries)-1]
		if strings.HasPrefix(current.File, "history/") {
			report("%s: highest id %d names %s; it must name the current schema", name, current.ID, current.File)
		}
		base := strings.TrimSuffix(current.File, ".avsc")
		for i, v := range versions {
			if v.version != i+1 {
				report("%s: versions must run 1, 2, 3...; found v%d at position %d", name, v.version, i+1)
			}
			if v.base != base {
				report("%s: %s defines it; want it named %s.v%d.avsc", name, v.file, base, v.version)
			}
		}
		latest := versions[len(versions)-1]
		text, err := fs.ReadFile(fsys, current.File)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(text, latest.text) {
			report("%s: %s differs from its latest release %s: release it as %s.v%d.avsc with a new id",
				name, current.File, latest.file, base, latest.version+1)
		}
		// Each released version was written under its own id.
		if len(entries) != len(versions) {
			report("%s: %d ids for %d released versions: every release needs a new id", name, len(entries), len(versions))
			continue
		}
		for i, e := range entries[:len(entries)-1] {
			if want := versions[i].file; e.File != want {
				report("%s: id %d names %s; want %s, the version released under it", name, e.ID, e.File, want)
			}
		}
	}
	slices.Sort(problems)
	return problems
}

// TestSchemaHistory checks that schemas/, schemas/history and ids.json
// agree, as the release steps above leave them.
func TestSchemaHistory(t *testing.T) {
	for _, p := range checkHistory(t, schemas.FS) {
		t.Error(p)
	}
}

// TestSchemaHistoryCatchesMistakes proves checkHistory can fail: each
// case is a release step done wrong or skipped.
func TestSchemaHistoryCatchesMistakes(t *testing.T) {
	const v1 = `{"type":"record","name":"Rec","namespace":"t","fields":[{"name":"a","type":"string"}]}`
	const v2 = `{"type":"record","name":"Rec","namespace":"t","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}`
	const other = `{"type":"record","name":"Other","namespace":"t","fields":[]}`
	const id1 = `{"id":1,"name":"t.Rec","file":"rec.avsc"}`
	tests := []struct {
		name  string
		ids   string
		files map[string]string
		want  string // in one of the problems; "" for none
	}{
		{name: "first release", ids: id1, files: map[string]string{"rec.avsc": v1, "history/rec.v1.avsc": v1}},
		{name: "second release", ids: `{"id":1,"name":"t.Rec","file":"history/rec.v1.avsc"},{"id":2,"name":"t.Rec","file":"rec.avsc"}`,
			files: map[string]string{"rec.avsc": v2, "history/rec.v1.avsc": v1, "history/rec.v2.avsc": v2}},
		{name: "layout only", ids: id1, files: map[string]string{"rec.avsc": v1, "history/rec.v1.avsc": "{\n  \"type\": \"record\", \"name\": \"Rec\", \"namespace\": \"t\",\n  \"fields\": [{\"name\": \"a\", \"type\": \"string\"}]}"}},

		{name: "never released", ids: id1, files: map[string]string{"rec.avsc": v1, "history/.keep": ""}, want: "no released version"},
		{name: "changed without snapshot", ids: id1, files: map[string]string{"rec.avsc": v2, "history/rec.v1.avsc": v1}, want: "differs from its latest release"},
		{name: "snapshot without new id", ids: id1, files: map[string]string{"rec.avsc": v2, "history/rec.v1.avsc": v1, "history/rec.v2.avsc": v2}, want: "every release needs a new id"},
		{name: "new id, old id not repointed", ids: `{"id":1,"name":"t.Rec","file":"rec.avsc"},{"id":2,"name":"t.Rec","file":"rec.avsc"}`,
			files: map[string]string{"rec.avsc": v2, "history/rec.v1.avsc": v1, "history/rec.v2.avsc": v2}, want: "want history/rec.v1.avsc"},
		{name: "new id lower than old", ids: `{"id":2,"name":"t.Rec","file":"history/rec.v1.avsc"},{"id":1,"name":"t.Rec","file":"rec.avsc"}`,
			files: map[string]string{"rec.avsc": v2, "history/rec.v1.avsc": v1, "history/rec.v2.avsc": v2}, want: "must name the current schema"},
		{name: "version gap", ids: id1, files: map[string]string{"rec.avsc": v1, "history/rec.v2.avsc": v1}, want: "versions must run"},
		{name: "snapshot under another name", ids: id1, files: map[string]string{"rec.avsc": v1, "history/record.v1.avsc": v1}, want: "want it named rec.v1.avsc"},
		{name: "badly named snapshot", ids: id1, files: map[string]string{"rec.avsc": v1, "history/rec.v1.avsc": v1, "history/rec-v2.json": v1}, want: "want <name>.v<N>.avsc"},
		{name: "snapshot of an unknown record", ids: id1, files: map[string]string{"rec.avsc": v1, "history/rec.v1.avsc": v1, "history/other.v1.avsc": other}, want: "has no current schema"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"ids.json": {Data: []byte(`{"schemas":[` + tc.ids + `]}`)}}
			for name, text := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(text)}
			}
			problems := checkHistory(t, fsys)
			if tc.want == "" {
				if len(problems) > 0 {
					t.Fatalf("problems in a correct layout: %q", problems)
				}
				return
			}
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Fatalf("problems %q, want one mentioning %q", problems, tc.want)
		})
	}
}

// TestBackwardCompatible checks that every current schema reads what every
// released version of it wrote.
func TestBackwardCompatible(t *testing.T) {
	reg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	hist, problems := history(t, schemas.FS)
	for _, p := range problems {
		t.Error(p)
	}
	for _, e := range reg.Entries() {
		cur, _ := reg.ByName(e.Name)
		if cur.ID != e.ID {
			continue // an older id: checked as a released version
		}
		versions := hist[e.Name]
		if len(versions) == 0 {
			t.Errorf("%s: no released versions", e.Name) // also reported by TestSchemaHistory
		}
		for _, v := range versions {
			t.Run(v.file, func(t *testing.T) {
				if err := checkBackward(t, e.Schema, v.schema); err != nil {
					t.Errorf("%s (id %d) cannot read data written with %s: %v", e.Name, e.ID, v.file, err)
				}
			})
		}
	}
}

// TestBackwardCheckCatchesBreakingChanges proves the check above can fail:
// edits of a real schema that break old data are reported, and edits that
// keep it readable are not.
func TestBackwardCheckCatchesBreakingChanges(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		edit     func(fields []map[string]any) []map[string]any
		wantFail bool
	}{
		{name: "unchanged", file: "event.avsc", edit: func(f []map[string]any) []map[string]any { return f }},
		{name: "new field with default", file: "event.avsc", edit: addField(map[string]any{"name": "region", "type": "string", "default": "eu"})},
		{name: "new nullable field", file: "event.avsc", edit: addField(map[string]any{"name": "trace", "type": []any{"null", "string"}, "default": nil})},
		{name: "field removed", file: "event.avsc", edit: dropField("source")},
		{name: "int widened to long", file: "delivery.avsc", edit: setType("attempt", "long")},
		{name: "field made nullable", file: "event.avsc", edit: setType("subject", []any{"null", "string"})},
		{name: "field renamed with alias", file: "event.avsc", edit: rename("subject", "entity", true)},

		{name: "new field without default", file: "event.avsc", edit: addField(map[string]any{"name": "region", "type": "string"}), wantFail: true},
		{name: "string field changed to int", file: "event.avsc", edit: setType("subject", "int"), wantFail: true},
		{name: "long narrowed to int", file: "delivery_attempt.avsc", edit: setType("duration_ms", "int"), wantFail: true},
		{name: "nullable field made required", file: "event.avsc", edit: setType("previous", "string"), wantFail: true},
		{name: "field renamed without alias", file: "event.avsc", edit: rename("subject", "entity", false), wantFail: true},
		{name: "nested record field without default", file: "subscription.avsc", edit: addAuthField, wantFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text, err := fs.ReadFile(schemas.FS, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			writer := parse(t, text)
			reader := parse(t, editSchema(t, text, tc.edit))
			err = checkBackward(t, reader, writer)
			if tc.wantFail && err == nil {
				t.Errorf("breaking change reported compatible")
			}
			if !tc.wantFail && err != nil {
				t.Errorf("compatible change reported breaking: %v", err)
			}
		})
	}
}

// checkBackward reports whether reader can read what writer wrote: hamba's
// compatibility check, then a value written with writer and read through
// the resolved schema must keep every field the reader shares with the
// writer and give every other field its default.
func checkBackward(t *testing.T, reader, writer avro.Schema) error {
	t.Helper()
	compat := avro.NewSchemaCompatibility()
	if err := compat.Compatible(reader, writer); err != nil {
		return fmt.Errorf("incompatible: %w", err)
	}
	resolved, err := compat.Resolve(reader, writer)
	if err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	data, err := api.Marshal(writer, sample(writer, new(int)))
	if err != nil {
		t.Fatalf("encode sample with writer schema: %v", err)
	}
	if _, err := scan(writer, data); err != nil {
		t.Fatalf("scan of a valid value: %v", err)
	}
	var old, got map[string]any
	if err := api.Unmarshal(writer, data, &old); err != nil {
		t.Fatalf("decode sample with writer schema: %v", err)
	}
	if err := api.Unmarshal(resolved, data, &got); err != nil {
		return fmt.Errorf("decode with resolved schema: %w", err)
	}
	// What the reader should see: the writer's value of each field it
	// shares (by name or alias), otherwise the field's default.
	rec := reader.(*avro.RecordSchema)
	want := map[string]any{}
	for _, f := range rec.Fields() {
		if v, ok := old[f.Name()]; ok {
			want[f.Name()] = v
			continue
		}
		found := false
		for _, a := range f.Aliases() {
			if v, ok := old[a]; ok {
				want[f.Name()], found = v, true
			}
		}
		if !found {
			want[f.Name()] = f.Default()
		}
	}
	// Compare through the reader's encoding, which is blind to the Go
	// representation of a value (int or int64, wrapped union or not).
	wantBytes, err := api.Marshal(reader, want)
	if err != nil {
		return fmt.Errorf("encode expected value: %w", err)
	}
	gotBytes, err := api.Marshal(reader, got)
	if err != nil {
		return fmt.Errorf("encode decoded value: %w", err)
	}
	if !bytes.Equal(gotBytes, wantBytes) {
		return fmt.Errorf("decoded %v, want %v", got, want)
	}
	return nil
}

// sample builds a generic value of schema s, every leaf distinct so fields
// read from the wrong place are noticed.
func sample(s avro.Schema, n *int) any {
	*n++
	switch s := s.(type) {
	case *avro.RecordSchema:
		m := map[string]any{}
		for _, f := range s.Fields() {
			m[f.Name()] = sample(f.Type(), n)
		}
		return m
	case *avro.RefSchema:
		return sample(s.Schema(), n)
	case *avro.ArraySchema:
		return []any{sample(s.Items(), n), sample(s.Items(), n)}
	case *avro.MapSchema:
		return map[string]any{"k" + strconv.Itoa(*n): sample(s.Values(), n)}
	case *avro.UnionSchema:
		for _, b := range s.Types() {
			if b.Type() == avro.Null {
				continue
			}
			if named := fullName(b); named != "" {
				return map[string]any{named: sample(b, n)}
			}
			return sample(b, n)
		}
		return nil
	case *avro.EnumSchema:
		return s.Symbols()[*n%len(s.Symbols())]
	case *avro.FixedSchema:
		return reflect.New(reflect.ArrayOf(s.Size(), reflect.TypeFor[byte]())).Elem().Interface()
	case *avro.PrimitiveSchema:
		if l := s.Logical(); l != nil && l.Type() == avro.TimestampMillis {
			return time.UnixMilli(1_750_000_000_000 + int64(*n)).UTC()
		}
		switch s.Type() {
		case avro.String:
			return "s" + strconv.Itoa(*n)
		case avro.Bytes:
			return []byte{byte(*n)}
		case avro.Int:
			return *n
		case avro.Long:
			return int64(*n) << 33
		case avro.Float:
			return float32(*n)
		case avro.Double:
			return float64(*n)
		case avro.Boolean:
			return *n%2 == 1
		}
	}
	return nil
}

// editSchema applies edit to the top-level fields of a schema text.
func editSchema(t *testing.T, text []byte, edit func([]map[string]any) []map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(text, &doc); err != nil {
		t.Fatal(err)
	}
	var fields []map[string]any
	for _, f := range doc["fields"].([]any) {
		fields = append(fields, f.(map[string]any))
	}
	doc["fields"] = edit(fields)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func addField(f map[string]any) func([]map[string]any) []map[string]any {
	return func(fields []map[string]any) []map[string]any { return append(fields, f) }
}

func dropField(name string) func([]map[string]any) []map[string]any {
	return func(fields []map[string]any) []map[string]any {
		return slices.DeleteFunc(fields, func(f map[string]any) bool { return f["name"] == name })
	}
}

func setType(name string, typ any) func([]map[string]any) []map[string]any {
	return func(fields []map[string]any) []map[string]any {
		for _, f := range fields {
			if f["name"] == name {
				f["type"] = typ
				if _, ok := typ.([]any); ok {
					f["default"] = nil
				} else {
					delete(f, "default")
				}
			}
		}
		return fields
	}
}

func rename(from, to string, alias bool) func([]map[string]any) []map[string]any {
	return func(fields []map[string]any) []map[string]any {
		for _, f := range fields {
			if f["name"] == from {
				f["name"] = to
				if alias {
					f["aliases"] = []any{from}
				}
			}
		}
		return fields
	}
}

// addAuthField adds a required field to the Auth record nested in
// subscription.avsc's nullable auth field.
func addAuthField(fields []map[string]any) []map[string]any {
	for _, f := range fields {
		if f["name"] != "auth" {
			continue
		}
		auth := f["type"].([]any)[1].(map[string]any)
		auth["fields"] = append(auth["fields"].([]any), map[string]any{"name": "scope", "type": "string"})
	}
	return fields
}

// TestCodecReadsEarlierIDs releases a second version of a record and checks
// that the codec writes the new id and reads values written under the old
// one, filling the new field's default.
func TestCodecReadsEarlierIDs(t *testing.T) {
	const v1 = `{"type":"record","name":"Rec","namespace":"test","fields":[
	  {"name":"name","type":"string"}]}`
	const v2 = `{"type":"record","name":"Rec","namespace":"test","fields":[
	  {"name":"name","type":"string"},
	  {"name":"region","type":"string","default":"eu"},
	  {"name":"tags","type":{"type":"array","items":"string"},"default":[]}]}`
	type recV1 struct {
		Name string `avro:"name"`
	}
	type recV2 struct {
		Name   string   `avro:"name"`
		Region string   `avro:"region"`
		Tags   []string `avro:"tags"`
	}

	old, err := registryFS(t, `{"schemas":[{"id":7,"name":"test.Rec","file":"rec.avsc"}]}`, map[string]string{"rec.avsc": v1})
	if err != nil {
		t.Fatal(err)
	}
	oldCodec, err := NewCodec[recV1](old, "test.Rec")
	if err != nil {
		t.Fatal(err)
	}
	written, err := oldCodec.Marshal(&recV1{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}

	// The release: id 7 now names the snapshot, id 9 the current file.
	reg, err := registryFS(t, `{"schemas":[
	  {"id":9,"name":"test.Rec","file":"rec.avsc"},
	  {"id":7,"name":"test.Rec","file":"history/rec.v1.avsc"}]}`,
		map[string]string{"rec.avsc": v2, "history/rec.v1.avsc": v1, "history/rec.v2.avsc": v2})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := reg.ByName("test.Rec"); e.ID != 9 {
		t.Fatalf("current id = %d, want 9 (the highest)", e.ID)
	}
	c, err := NewCodec[recV2](reg, "test.Rec")
	if err != nil {
		t.Fatal(err)
	}
	if c.ID() != 9 {
		t.Errorf("codec writes id %d, want 9", c.ID())
	}

	tests := []struct {
		name string
		in   []byte
		want recV2
	}{
		{name: "written under the old id", in: written, want: recV2{Name: "a", Region: "eu", Tags: []string{}}},
		{name: "written under the new id", in: mustMarshal(t, c, &recV2{Name: "b", Region: "us", Tags: []string{"x"}}), want: recV2{Name: "b", Region: "us", Tags: []string{"x"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got recV2
			if err := c.Unmarshal(tc.in, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	t.Run("old id, truncated", func(t *testing.T) {
		var got recV2
		if err := c.Unmarshal(written[:len(written)-1], &got); err == nil {
			t.Fatalf("decoded a truncated old value: %+v", got)
		}
	})
	t.Run("unknown id", func(t *testing.T) {
		b := append([]byte(nil), written...)
		b[4] = 8
		if err := c.Unmarshal(b, new(recV2)); err == nil || !strings.Contains(err.Error(), "schema id 8") {
			t.Fatalf("Unmarshal of id 8: err = %v", err)
		}
	})
	t.Run("incompatible release", func(t *testing.T) {
		reg, err := registryFS(t, `{"schemas":[
		  {"id":9,"name":"test.Rec","file":"rec.avsc"},
		  {"id":7,"name":"test.Rec","file":"old.avsc"}]}`,
			map[string]string{"old.avsc": v1, "rec.avsc": strings.Replace(v2, `"default":"eu"`, `"doc":"no default"`, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewCodec[recV2](reg, "test.Rec"); err == nil {
			t.Fatal("NewCodec accepted a current schema that cannot read id 7")
		}
	})
}

func mustMarshal[T any](t *testing.T, c *Codec[T], v *T) []byte {
	t.Helper()
	b, err := c.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoadNeedsSelfContainedFiles: each schema file is served alone, so one
// naming a type only another file defines must not load.
func TestLoadNeedsSelfContainedFiles(t *testing.T) {
	_, err := registryFS(t, `{"schemas":[
	  {"id":1,"name":"x.A","file":"a.avsc"},
	  {"id":2,"name":"x.B","file":"b.avsc"}]}`, map[string]string{
		"a.avsc": `{"type":"record","name":"A","namespace":"x","fields":[{"name":"i","type":{"type":"record","name":"I","fields":[]}}]}`,
		"b.avsc": `{"type":"record","name":"B","namespace":"x","fields":[{"name":"i","type":"x.I"}]}`,
	})
	if err == nil {
		t.Fatal("b.avsc loaded although it names x.I, defined only in a.avsc")
	}
}
