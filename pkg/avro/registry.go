package avro

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/hamba/avro/v2"

	"github.com/hookline/hookline/schemas"
)

// Entry is one schema with its id.
type Entry struct {
	ID     uint32
	Name   string // full name, e.g. dev.hookline.Event
	Text   string // the .avsc text as shipped
	Schema avro.Schema
}

// Registry maps schema ids to schemas. Without a Confluent-compatible
// registry, ids come from the fixed table schemas/ids.json.
type Registry struct {
	byID   map[uint32]Entry
	byName map[string]uint32
}

// Load parses the embedded schemas and their fixed ids.
func Load() (*Registry, error) {
	return loadFS(schemas.FS)
}

func loadFS(fsys fs.FS) (*Registry, error) {
	raw, err := fs.ReadFile(fsys, "ids.json")
	if err != nil {
		return nil, fmt.Errorf("avro: read ids.json: %w", err)
	}
	var table struct {
		Schemas []struct {
			ID   uint32 `json:"id"`
			Name string `json:"name"`
			File string `json:"file"`
		} `json:"schemas"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		return nil, fmt.Errorf("avro: parse ids.json: %w", err)
	}
	r := &Registry{byID: map[uint32]Entry{}, byName: map[string]uint32{}}
	for _, s := range table.Schemas {
		text, err := fs.ReadFile(fsys, path.Clean(s.File))
		if err != nil {
			return nil, fmt.Errorf("avro: schema %d: %w", s.ID, err)
		}
		// Each file gets its own cache: a file must define every type it
		// names, as it is served alone to other deserializers.
		parsed, err := avro.ParseBytesWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("avro: parse %s: %w", s.File, err)
		}
		named, ok := parsed.(avro.NamedSchema)
		if !ok || named.FullName() != s.Name {
			return nil, fmt.Errorf("avro: %s does not define %s", s.File, s.Name)
		}
		if _, dup := r.byID[s.ID]; dup {
			return nil, fmt.Errorf("avro: schema id %d used twice", s.ID)
		}
		r.byID[s.ID] = Entry{ID: s.ID, Name: s.Name, Text: string(text), Schema: parsed}
		// A record keeps its earlier ids so old values stay readable; the
		// highest id is the current schema, since ids only ever go up.
		if cur, ok := r.byName[s.Name]; !ok || s.ID > cur {
			r.byName[s.Name] = s.ID
		}
	}
	return r, nil
}

// ByID returns the schema registered under id.
func (r *Registry) ByID(id uint32) (Entry, bool) {
	e, ok := r.byID[id]
	return e, ok
}

// ByName returns the current schema of a record by its full name: of the
// ids registered for it, the highest.
func (r *Registry) ByName(name string) (Entry, bool) {
	id, ok := r.byName[name]
	if !ok {
		return Entry{}, false
	}
	return r.byID[id], true
}

// Entries lists every schema in id order.
func (r *Registry) Entries() []Entry {
	out := make([]Entry, 0, len(r.byID))
	for _, e := range r.byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
