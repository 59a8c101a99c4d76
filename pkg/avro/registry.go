package avro

import (
	"context"
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
	ID      uint32
	Name    string // full name, e.g. dev.hookline.Event
	Version int    // 1 for a record's first released schema, then 2, 3...
	Text    string // the .avsc text as shipped
	Schema  avro.Schema
}

// Lookup fetches the text of the schema registered under id in a schema
// registry. Codecs call it for ids their Registry does not hold.
type Lookup func(ctx context.Context, id uint32) (string, error)

// Registry maps schema ids to schemas and holds each record's history.
// Without a Confluent-compatible registry, ids come from the fixed table
// schemas/ids.json; Renumbered gives the schemas a registry's ids instead.
type Registry struct {
	byID     map[uint32]Entry
	versions map[string][]uint32 // per record full name, oldest first
	lookup   Lookup              // nil: only the ids above are known
}

// Load parses the embedded schemas and their fixed ids.
func Load() (*Registry, error) {
	return LoadFS(schemas.FS)
}

// LoadFS parses the ids.json of fsys and the schema files it names. A
// record's versions are its entries in id order, since ids only go up.
func LoadFS(fsys fs.FS) (*Registry, error) {
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
	r := &Registry{byID: map[uint32]Entry{}, versions: map[string][]uint32{}}
	for _, s := range table.Schemas {
		text, err := fs.ReadFile(fsys, path.Clean(s.File))
		if err != nil {
			return nil, fmt.Errorf("avro: schema %d: %w", s.ID, err)
		}
		parsed, err := parseAlone(string(text))
		if err != nil {
			return nil, fmt.Errorf("avro: parse %s: %w", s.File, err)
		}
		if fullName(parsed) != s.Name {
			return nil, fmt.Errorf("avro: %s does not define %s", s.File, s.Name)
		}
		if _, dup := r.byID[s.ID]; dup {
			return nil, fmt.Errorf("avro: schema id %d used twice", s.ID)
		}
		r.byID[s.ID] = Entry{ID: s.ID, Name: s.Name, Text: string(text), Schema: parsed}
		r.versions[s.Name] = append(r.versions[s.Name], s.ID)
	}
	for name, ids := range r.versions {
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for i, id := range ids {
			e := r.byID[id]
			e.Version = i + 1
			r.byID[id] = e
		}
		r.versions[name] = ids
	}
	return r, nil
}

// parseAlone parses one schema text on its own: each file gets its own
// cache, as a file must define every type it names to be served alone to
// other deserializers.
func parseAlone(text string) (avro.Schema, error) {
	return avro.ParseBytesWithCache([]byte(text), "", &avro.SchemaCache{})
}

// fullName is the full name of a named schema, or "" for any other.
func fullName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return ""
}

// ByID returns the schema registered under id.
func (r *Registry) ByID(id uint32) (Entry, bool) {
	e, ok := r.byID[id]
	return e, ok
}

// ByName returns the current schema of a record by its full name: its
// latest version.
func (r *Registry) ByName(name string) (Entry, bool) {
	vs := r.Versions(name)
	if len(vs) == 0 {
		return Entry{}, false
	}
	return vs[len(vs)-1], true
}

// Versions lists the schemas of a record, oldest first, so that
// Versions(name)[v-1] is version v.
func (r *Registry) Versions(name string) []Entry {
	ids := r.versions[name]
	out := make([]Entry, len(ids))
	for i, id := range ids {
		out[i] = r.byID[id]
	}
	return out
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

// Renumbered returns a copy of r whose schemas carry the ids a schema
// registry gave them, ids mapping each id of r to the registry's, and
// whose codecs ask lookup for any other id they meet. Versions keep their
// order: the registry's ids need not follow it.
func (r *Registry) Renumbered(ids map[uint32]uint32, lookup Lookup) (*Registry, error) {
	out := &Registry{byID: map[uint32]Entry{}, versions: map[string][]uint32{}, lookup: lookup}
	for _, e := range r.Entries() {
		id, ok := ids[e.ID]
		if !ok {
			return nil, fmt.Errorf("avro: no new id for schema %d (%s version %d)", e.ID, e.Name, e.Version)
		}
		if prev, dup := out.byID[id]; dup {
			return nil, fmt.Errorf("avro: id %d given to both %s version %d and %s version %d", id, prev.Name, prev.Version, e.Name, e.Version)
		}
		e.ID = id
		out.byID[id] = e
	}
	for name, old := range r.versions {
		for _, id := range old {
			out.versions[name] = append(out.versions[name], ids[id])
		}
	}
	return out, nil
}
