// Package catalog is a tenant's event type catalog: the event types
// subscribers can subscribe to, each with a description and optionally a
// JSON Schema of its data, kept in the compacted hookline.event-types
// topic. Ingest reads it through a materialized view, and checks the data
// of events whose type asks for validation against the compiled schema.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/hookline/hookline/pkg/compacted"
	"github.com/hookline/hookline/pkg/record"
	"github.com/hookline/hookline/pkg/wire"
)

// Bounds that keep a schema's cost small and known: compiling one is
// bounded by its size, and validating data by the size of both. Remote
// $refs are never fetched (refs resolve inside the schema only), format
// and content are annotations (as draft 2020-12 says), and patterns use
// Go's regexp, which runs in linear time.
const (
	MaxSchemaBytes  = 64 << 10
	MaxTypesPerTen  = 1000 // event types per tenant
	maxViolations   = 20   // problems reported per event
	schemaLocation  = "https://hookline.invalid/event-type.schema.json"
	compiledTTL     = 10 * time.Minute // a schema unused this long is compiled again when next needed
	maxCompiledKept = 4096
)

// Catalog is the view of every tenant's event types with their compiled
// schemas.
type Catalog struct {
	*compacted.View[record.EventType]

	mu       sync.Mutex
	compiled map[string]compiledSchema // by key, for the version updated_at names
}

type compiledSchema struct {
	version time.Time
	schema  *jsonschema.Schema
	used    time.Time
}

// New returns an empty catalog of topics' event types; Run fills it.
func New(topics wire.Topics, codecs *record.Codecs, log zerolog.Logger) *Catalog {
	c := &Catalog{View: compacted.New(topics.EventTypes, codecs.EventType.Unmarshal, log), compiled: map[string]compiledSchema{}}
	c.OnChange(func(prev, _ *record.EventType) {
		if prev != nil {
			c.mu.Lock()
			delete(c.compiled, prev.Key())
			c.mu.Unlock()
		}
	})
	return c
}

// Get returns a tenant's event type.
func (c *Catalog) Get(tenant, name string) (*record.EventType, bool) {
	return c.View.Get(tenant + "/" + name)
}

// List returns a tenant's event types by name.
func (c *Catalog) List(tenant string) []*record.EventType {
	out := c.Select(func(e *record.EventType) bool { return e.Tenant == tenant })
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Violation is one way data fails its type's schema: where (a path into
// the event such as data.items[0].price) and why.
type Violation struct {
	Path   string
	Reason string
}

// Check validates data (an event's JSON object) against the schema of its
// type when the tenant registered the type with validation on; otherwise,
// and when data matches, it returns nil.
func (c *Catalog) Check(tenant, name string, data []byte) ([]Violation, error) {
	et, ok := c.Get(tenant, name)
	if !ok || !et.Validate || et.Schema == nil {
		return nil, nil
	}
	sch, err := c.schemaOf(et)
	if err != nil {
		return nil, err
	}
	return Validate(sch, data), nil
}

// Validate checks data against a compiled schema and returns how it fails,
// nil when it matches.
func Validate(sch *jsonschema.Schema, data []byte) []Violation {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return []Violation{{Path: "data", Reason: "is not JSON: " + err.Error()}}
	}
	err = sch.Validate(doc)
	var ve *jsonschema.ValidationError
	switch {
	case errors.As(err, &ve):
		return violations(ve)
	case err != nil:
		return []Violation{{Path: "data", Reason: err.Error()}}
	}
	return nil
}

// schemaOf returns et's compiled schema, compiling it once per version.
func (c *Catalog) schemaOf(et *record.EventType) (*jsonschema.Schema, error) {
	now := time.Now()
	c.mu.Lock()
	cs, ok := c.compiled[et.Key()]
	if ok && cs.version.Equal(et.UpdatedAt) {
		cs.used = now
		c.compiled[et.Key()] = cs
		c.mu.Unlock()
		return cs.schema, nil
	}
	c.mu.Unlock()
	sch, err := Compile(*et.Schema)
	if err != nil {
		// Written by an API that compiled it: a schema this release
		// cannot compile is a release problem, not the producer's.
		return nil, fmt.Errorf("event type %s of %s: schema does not compile: %w", et.Name, et.Tenant, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.compiled) >= maxCompiledKept {
		for k, v := range c.compiled {
			if now.Sub(v.used) > compiledTTL {
				delete(c.compiled, k)
			}
		}
	}
	if len(c.compiled) < maxCompiledKept {
		c.compiled[et.Key()] = compiledSchema{version: et.UpdatedAt, schema: sch, used: now}
	}
	return sch, nil
}

// noLoader refuses every URL a schema refers to outside itself: nothing
// is fetched, from the network or the disk.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s is outside the schema: only references within it ($defs, #/...) are allowed", url)
}

// Compile compiles a JSON Schema (draft 2020-12 unless its $schema names
// an earlier draft) without fetching anything.
func Compile(schema string) (*jsonschema.Schema, error) {
	if len(schema) > MaxSchemaBytes {
		return nil, fmt.Errorf("is %d bytes, at most %d", len(schema), MaxSchemaBytes)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("is not JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, errors.New("must be a JSON object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaLocation, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaLocation)
}

// printer writes the library's messages in English.
var printer = message.NewPrinter(language.English)

// violations flattens a validation error into its leaf problems, at most
// maxViolations, each located in the event.
func violations(ve *jsonschema.ValidationError) []Violation {
	var out []Violation
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= maxViolations {
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		if req, ok := e.ErrorKind.(*kind.Required); ok {
			for _, m := range req.Missing {
				out = append(out, Violation{Path: Path(append(e.InstanceLocation, m)), Reason: "is required"})
			}
			return
		}
		out = append(out, Violation{Path: Path(e.InstanceLocation), Reason: e.ErrorKind.LocalizedString(printer)})
	}
	walk(ve)
	if len(out) > maxViolations {
		out = out[:maxViolations]
	}
	return out
}

// Path writes a location in the event's data as the API names fields:
// data.items[0].price; a key that is not a plain name is quoted,
// data["a b"].
func Path(tokens []string) string {
	var b strings.Builder
	b.WriteString("data")
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
			continue
		}
		if plain(t) {
			b.WriteString("." + t)
			continue
		}
		b.WriteString("[" + strconv.Quote(t) + "]")
	}
	return b.String()
}

func plain(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
