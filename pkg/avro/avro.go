// Package avro frames Hookline's records in the Confluent wire format (magic
// byte 0, a 4-byte big-endian schema id, then Avro binary) so that any
// standard Kafka Avro deserializer can read Hookline's topics.
package avro

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hamba/avro/v2"
)

// headerLen is the size of the Confluent wire-format prefix.
const headerLen = 5

// MaxValueSize bounds a framed value. Marshal refuses bigger values so that
// whatever Hookline writes it can also read back; Unmarshal refuses strings
// and bytes fields longer than this. It is above Kafka's default
// message.max.bytes (1 MiB), and bounds what a corrupt length can make the
// decoder allocate.
const MaxValueSize = 8 << 20

// maxItems bounds the item count of one array or map. Hookline's arrays
// (event types, changed fields, secrets, routes, hosts) and maps (headers,
// metadata) hold a handful of items.
const maxItems = 1 << 16

// api is the hamba configuration every Codec uses.
var api = avro.Config{
	MaxByteSliceSize:  MaxValueSize,
	MaxSliceAllocSize: maxItems,
}.Freeze()

// ErrNotFramed is returned for a value that does not start with the
// Confluent magic byte and a schema id.
var ErrNotFramed = errors.New("avro: value is not in the Confluent wire format")

// SchemaID reads the schema id from a framed value.
func SchemaID(b []byte) (uint32, error) {
	if len(b) < headerLen || b[0] != 0 {
		return 0, ErrNotFramed
	}
	return binary.BigEndian.Uint32(b[1:headerLen]), nil
}

// Codec encodes and decodes values of one record type with one schema.
// It is safe for concurrent use.
type Codec[T any] struct {
	id      uint32
	name    string
	schema  avro.Schema
	header  [headerLen]byte
	others  atomic.Pointer[map[uint32]version] // other ids of the same record; copied on write
	lookup  Lookup                             // nil: ids not in others are refused
	adding  sync.Mutex                         // serialises writers of others
	pool    sync.Pool                          // *avro.Writer, reused to keep Marshal at one allocation
	readers sync.Pool                          // *avro.Reader
	clip    func(reflect.Value)                // nil when T holds no []byte
}

// lookupTimeout bounds one schema registry call made while decoding.
const lookupTimeout = 10 * time.Second

// version is how a value written with one schema id is read.
type version struct {
	writer avro.Schema // checked by scan
	read   avro.Schema // decoded by hamba: writer resolved to the current schema
}

// NewCodec returns a codec that writes values with the current schema of
// the record named name (its full name), framed with that schema's id.
// It reads values written with any version of the record in reg, and,
// when reg has a Lookup, with any schema of the same name that the schema
// registry holds under another id.
func NewCodec[T any](reg *Registry, name string) (*Codec[T], error) {
	e, ok := reg.ByName(name)
	if !ok {
		return nil, fmt.Errorf("avro: no schema named %s", name)
	}
	c := &Codec[T]{id: e.ID, name: e.Name, schema: e.Schema, lookup: reg.lookup}
	others := map[uint32]version{}
	for _, o := range reg.Versions(name) {
		if o.ID == e.ID {
			continue
		}
		ver, err := c.reader(o.Schema)
		if err != nil {
			return nil, fmt.Errorf("avro: %s: schema id %d cannot read values written with id %d: %w", name, e.ID, o.ID, err)
		}
		others[o.ID] = ver
	}
	c.others.Store(&others)
	c.header[0] = 0
	binary.BigEndian.PutUint32(c.header[1:], e.ID)
	c.pool.New = func() any { return avro.NewWriter(nil, 1024, avro.WithWriterConfig(api)) }
	c.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }
	c.clip = (&clippers{}).of(reflect.TypeFor[T]())
	return c, nil
}

// ID is the schema id this codec writes.
func (c *Codec[T]) ID() uint32 { return c.id }

// reader resolves values written with schema writer to the current schema.
func (c *Codec[T]) reader(writer avro.Schema) (version, error) {
	read, err := avro.NewSchemaCompatibility().Resolve(c.schema, writer)
	if err != nil {
		return version{}, err
	}
	return version{writer: writer, read: read}, nil
}

// versionOf returns how to read a value written with schema id: fetched from
// the schema registry the first time an id is met, then remembered.
// Failed lookups are not remembered: the registry may be back next time.
func (c *Codec[T]) versionOf(id uint32) (version, error) {
	if id == c.id {
		return version{writer: c.schema, read: c.schema}, nil
	}
	if ver, ok := (*c.others.Load())[id]; ok {
		return ver, nil
	}
	if c.lookup == nil {
		return version{}, fmt.Errorf("avro: schema id %d, want %d (%s)", id, c.id, c.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	text, err := c.lookup(ctx, id)
	if err != nil {
		return version{}, fmt.Errorf("avro: look up schema id %d: %w", id, err)
	}
	writer, err := parseAlone(text)
	if err != nil {
		return version{}, fmt.Errorf("avro: schema id %d: %w", id, err)
	}
	if got := fullName(writer); got != c.name {
		return version{}, fmt.Errorf("avro: schema id %d is %q, want %s", id, got, c.name)
	}
	ver, err := c.reader(writer)
	if err != nil {
		return version{}, fmt.Errorf("avro: %s: schema id %d cannot read values written with id %d: %w", c.name, c.id, id, err)
	}
	c.adding.Lock()
	defer c.adding.Unlock()
	others := maps.Clone(*c.others.Load())
	others[id] = ver
	c.others.Store(&others)
	return ver, nil
}

// Marshal returns v framed in the Confluent wire format.
func (c *Codec[T]) Marshal(v *T) ([]byte, error) {
	w := c.pool.Get().(*avro.Writer)
	defer c.pool.Put(w)
	w.Reset(nil)
	_, _ = w.Write(c.header[:])
	w.WriteVal(c.schema, v)
	if w.Error != nil {
		err := w.Error
		w.Error = nil
		return nil, fmt.Errorf("avro: encode %s: %w", c.name, err)
	}
	if n := w.Buffered(); n > MaxValueSize {
		return nil, fmt.Errorf("avro: encode %s: %d bytes, more than %d", c.name, n, MaxValueSize)
	}
	return append([]byte(nil), w.Buffer()...), nil
}

// Unmarshal decodes a framed value into v, replacing all of v: nothing of
// a previous value survives, and nothing v pointed to is written. Values
// written with another schema of the same record are resolved to the
// current schema (fields added since take their defaults; fields removed
// are skipped); values written with any other schema id are refused rather
// than misread, and so are truncated or corrupt ones, after which v holds
// no partial record. Bytes after the record are ignored, as Confluent's
// deserializers do. With a schema registry, the first value of an id the
// codec does not know waits for the registry to say what the id is.
func (c *Codec[T]) Unmarshal(b []byte, v *T) (err error) {
	id, err := SchemaID(b)
	if err != nil {
		return err
	}
	ver, err := c.versionOf(id)
	if err != nil {
		return err
	}
	body := b[headerLen:]
	if _, err := scan(ver.writer, body); err != nil {
		return fmt.Errorf("avro: decode %s: %w", c.name, err)
	}
	*v = *new(T)
	defer func() {
		// Defence in depth: scan should leave hamba nothing to panic on,
		// but a poison record must stay an error, never a crash.
		if p := recover(); p != nil {
			*v = *new(T)
			err = fmt.Errorf("avro: decode %s: corrupt value: %v", c.name, p)
		}
	}()
	r := c.readers.Get().(*avro.Reader)
	r.Reset(body)
	r.ReadVal(ver.read, v)
	// avro.Unmarshal takes io.EOF for success, which lets a body cut at a
	// field boundary decode as a shorter record; here it means truncation.
	err, r.Error = r.Error, nil
	r.Reset(nil)
	c.readers.Put(r)
	if err != nil {
		*v = *new(T)
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("truncated: %w", err)
		}
		return fmt.Errorf("avro: decode %s: %w", c.name, err)
	}
	if c.clip != nil {
		c.clip(reflect.ValueOf(v).Elem())
	}
	return nil
}

// clippers builds functions that cut the capacity of every []byte reachable
// from a value down to its length. hamba decodes short bytes fields into a
// shared slab, so without this an append to one decoded field would
// overwrite the fields decoded after it.
type clippers struct {
	built    map[reflect.Type]*func(reflect.Value)
	building map[reflect.Type]bool
}

// of returns the clipper of type t, or nil when t holds no []byte.
func (cs *clippers) of(t reflect.Type) func(reflect.Value) {
	if cs.built == nil {
		cs.built, cs.building = map[reflect.Type]*func(reflect.Value){}, map[reflect.Type]bool{}
	}
	if p, ok := cs.built[t]; ok {
		if cs.building[t] {
			// A recursive type: call through p, set once t is built.
			return func(v reflect.Value) {
				if f := *p; f != nil {
					f(v)
				}
			}
		}
		return *p
	}
	p := new(func(reflect.Value))
	cs.built[t], cs.building[t] = p, true
	*p = cs.build(t)
	delete(cs.building, t)
	return *p
}

func (cs *clippers) build(t reflect.Type) func(reflect.Value) {
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return func(v reflect.Value) {
				if n := v.Len(); v.Cap() > n {
					v.Set(v.Slice3(0, n, n))
				}
			}
		}
		elem := cs.of(t.Elem())
		if elem == nil {
			return nil
		}
		return func(v reflect.Value) {
			for i := range v.Len() {
				elem(v.Index(i))
			}
		}
	case reflect.Pointer:
		elem := cs.of(t.Elem())
		if elem == nil {
			return nil
		}
		return func(v reflect.Value) {
			if !v.IsNil() {
				elem(v.Elem())
			}
		}
	case reflect.Map:
		elem := cs.of(t.Elem())
		if elem == nil {
			return nil
		}
		return func(v reflect.Value) {
			for it := v.MapRange(); it.Next(); {
				val := reflect.New(t.Elem()).Elem()
				val.Set(it.Value())
				elem(val)
				v.SetMapIndex(it.Key(), val)
			}
		}
	case reflect.Struct:
		type field struct {
			index int
			clip  func(reflect.Value)
		}
		var fields []field
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				if clip := cs.of(f.Type); clip != nil {
					fields = append(fields, field{i, clip})
				}
			}
		}
		if len(fields) == 0 {
			return nil
		}
		return func(v reflect.Value) {
			for _, f := range fields {
				f.clip(v.Field(f.index))
			}
		}
	}
	return nil
}
