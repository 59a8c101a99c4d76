package avro

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hamba/avro/v2"
)

// Two released versions of x.A (ids 3 and 9) and one of x.B (id 5).
const (
	schemaA1 = `{"type":"record","name":"A","namespace":"x","fields":[{"name":"a","type":"string"}]}`
	schemaA2 = `{"type":"record","name":"A","namespace":"x","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":7}]}`
	schemaB1 = `{"type":"record","name":"B","namespace":"x","fields":[{"name":"z","type":"long"}]}`
	idsAB    = `{"schemas":[{"id":9,"name":"x.A","file":"a.avsc"},{"id":5,"name":"x.B","file":"b.avsc"},{"id":3,"name":"x.A","file":"history/a.v1.avsc"}]}`
)

type recA struct {
	A string `avro:"a"`
	B int32  `avro:"b"`
}

func registryAB(t *testing.T) *Registry {
	t.Helper()
	reg, err := registryFS(t, idsAB, map[string]string{"a.avsc": schemaA2, "history/a.v1.avsc": schemaA1, "b.avsc": schemaB1})
	if err != nil {
		t.Fatalf("LoadFS: %v", err)
	}
	return reg
}

// idVersions lists the ids and versions of entries, to compare in one line.
func idVersions(entries []Entry) [][2]int {
	out := make([][2]int, len(entries))
	for i, e := range entries {
		out[i] = [2]int{int(e.ID), e.Version}
	}
	return out
}

func equalPairs(a, b [][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestVersionsFollowIDs(t *testing.T) {
	reg := registryAB(t)
	if got, want := idVersions(reg.Versions("x.A")), [][2]int{{3, 1}, {9, 2}}; !equalPairs(got, want) {
		t.Errorf("Versions(x.A) = %v, want %v", got, want)
	}
	if got, want := idVersions(reg.Versions("x.B")), [][2]int{{5, 1}}; !equalPairs(got, want) {
		t.Errorf("Versions(x.B) = %v, want %v", got, want)
	}
	if got := reg.Versions("x.C"); len(got) != 0 {
		t.Errorf("Versions(x.C) = %v, want none", got)
	}
	if cur, _ := reg.ByName("x.A"); cur.ID != 9 || cur.Text != schemaA2 {
		t.Errorf("ByName(x.A) = id %d %s, want id 9, the current schema", cur.ID, cur.Text)
	}
	if e, _ := reg.ByID(3); e.Version != 1 || e.Text != schemaA1 {
		t.Errorf("ByID(3) = version %d %s, want version 1", e.Version, e.Text)
	}
}

func TestRenumbered(t *testing.T) {
	reg := registryAB(t)
	// A registry's ids need not follow the versions: x.A v2 gets the lower id.
	got, err := reg.Renumbered(map[uint32]uint32{3: 100, 9: 50, 5: 7}, nil)
	if err != nil {
		t.Fatalf("Renumbered: %v", err)
	}
	if v, want := idVersions(got.Versions("x.A")), [][2]int{{100, 1}, {50, 2}}; !equalPairs(v, want) {
		t.Errorf("Versions(x.A) = %v, want %v", v, want)
	}
	if cur, _ := got.ByName("x.A"); cur.ID != 50 || cur.Text != schemaA2 {
		t.Errorf("ByName(x.A) = id %d %s, want id 50 with the current schema", cur.ID, cur.Text)
	}
	if e, ok := got.ByID(7); !ok || e.Name != "x.B" {
		t.Errorf("ByID(7) = %v, %v; want x.B", e.Name, ok)
	}
	for _, old := range []uint32{3, 9, 5} {
		if _, ok := got.ByID(old); ok {
			t.Errorf("ByID(%d) still finds a schema under its fixed id", old)
		}
	}
	if cur, _ := reg.ByName("x.A"); cur.ID != 9 {
		t.Errorf("Renumbered changed the original registry: ByName(x.A) = %d", cur.ID)
	}
	c, err := NewCodec[recA](got, "x.A")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Marshal(&recA{A: "hi", B: 1})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := SchemaID(b); id != 50 {
		t.Errorf("codec writes id %d, want the registry's 50", id)
	}

	for _, tc := range []struct {
		name    string
		ids     map[uint32]uint32
		wantErr string
	}{
		{"missing", map[uint32]uint32{3: 100, 9: 50}, "no new id for schema 5"},
		{"shared", map[uint32]uint32{3: 100, 9: 100, 5: 7}, "id 100 given to both x.A version 1 and x.A version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := reg.Renumbered(tc.ids, nil); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Renumbered error = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestCodecReadsEveryVersion(t *testing.T) {
	reg := registryAB(t)
	c, err := NewCodec[recA](reg, "x.A")
	if err != nil {
		t.Fatal(err)
	}
	var got recA
	if err := c.Unmarshal(frame(3, str("old")), &got); err != nil {
		t.Fatalf("Unmarshal of version 1: %v", err)
	}
	if want := (recA{A: "old", B: 7}); got != want {
		t.Errorf("version 1 decoded as %+v, want %+v (b from its default)", got, want)
	}
	if err := c.Unmarshal(frame(5, long(1)), &got); err == nil {
		t.Error("a value of x.B (id 5) decoded as x.A")
	}
}

// fakeLookup serves schema texts by id and counts the calls per id.
type fakeLookup struct {
	mu     sync.Mutex
	texts  map[uint32]string
	calls  map[uint32]int
	failOn uint32
}

func (f *fakeLookup) lookup(_ context.Context, id uint32) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[id]++
	if id == f.failOn {
		return "", errors.New("registry unreachable")
	}
	text, ok := f.texts[id]
	if !ok {
		return "", errors.New("schema not found")
	}
	return text, nil
}

func (f *fakeLookup) count(id uint32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

// encode writes v with schema text, framed with id, as another writer would.
func encode(t *testing.T, text string, id uint32, v any) []byte {
	t.Helper()
	body, err := avro.Marshal(avro.MustParse(text), v)
	if err != nil {
		t.Fatal(err)
	}
	return frame(id, body)
}

func TestCodecLooksUpUnknownIDs(t *testing.T) {
	// A newer writer's x.A: one more field, which this reader skips.
	const schemaA3 = `{"type":"record","name":"A","namespace":"x","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":7},{"name":"c","type":"string","default":""}]}`
	const schemaABroken = `{"type":"record","name":"A","namespace":"x","fields":[{"name":"a","type":"int"}]}`
	f := &fakeLookup{
		texts:  map[uint32]string{77: schemaA3, 78: schemaB1, 79: schemaABroken, 81: `{"type":`},
		calls:  map[uint32]int{},
		failOn: 80,
	}
	reg, err := registryAB(t).Renumbered(map[uint32]uint32{3: 3, 9: 9, 5: 5}, f.lookup)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec[recA](reg, "x.A")
	if err != nil {
		t.Fatal(err)
	}
	newer := encode(t, schemaA3, 77, map[string]any{"a": "new", "b": 2, "c": "skipped"})

	// Decoded concurrently, as partition workers would.
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 8 {
		wg.Go(func() {
			var got recA
			if err := c.Unmarshal(newer, &got); err != nil || got != (recA{A: "new", B: 2}) {
				t.Errorf("Unmarshal of id 77 = %+v, %v; want {new 2}", got, err)
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() == 0 {
		calls := f.count(77)
		var got recA
		_ = c.Unmarshal(newer, &got)
		if f.count(77) != calls {
			t.Errorf("id 77 looked up again after it was known")
		}
	}

	for _, tc := range []struct {
		name    string
		value   []byte
		wantErr string
	}{
		{"another record", frame(78, long(1)), `schema id 78 is "x.B", want x.A`},
		{"unreadable", frame(79, long(1)), "cannot read values written with id 79"},
		{"registry down", frame(80, str("a")), "registry unreachable"},
		{"bad schema", frame(81, str("a")), "schema id 81"},
		{"unknown", frame(82, str("a")), "schema not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got recA
			err := c.Unmarshal(tc.value, &got)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Unmarshal error = %v, want one mentioning %q", err, tc.wantErr)
			}
			// Failures are not remembered: the next value asks again.
			id, _ := SchemaID(tc.value)
			before := f.count(id)
			_ = c.Unmarshal(tc.value, &got)
			if f.count(id) == before {
				t.Errorf("id %d not looked up again after a failed lookup", id)
			}
		})
	}

	t.Run("without a registry", func(t *testing.T) {
		fixed, err := NewCodec[recA](registryAB(t), "x.A")
		if err != nil {
			t.Fatal(err)
		}
		var got recA
		if err := fixed.Unmarshal(newer, &got); err == nil || !strings.Contains(err.Error(), "schema id 77, want 9") {
			t.Fatalf("Unmarshal error = %v, want the id refused", err)
		}
	})
}
