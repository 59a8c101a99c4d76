// Package avro frames Hookline's records in the Confluent wire format (magic
// byte 0, a 4-byte big-endian schema id, then Avro binary) so that any
// standard Kafka Avro deserializer can read Hookline's topics.
package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
)

// headerLen is the size of the Confluent wire-format prefix.
const headerLen = 5

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
	id     uint32
	schema avro.Schema
	header [headerLen]byte
	pool   sync.Pool // *avro.Writer, reused to keep Marshal at one allocation
}

// NewCodec returns a codec that writes values with the schema registered
// under id.
func NewCodec[T any](reg *Registry, name string) (*Codec[T], error) {
	e, ok := reg.ByName(name)
	if !ok {
		return nil, fmt.Errorf("avro: no schema named %s", name)
	}
	c := &Codec[T]{id: e.ID, schema: e.Schema}
	c.header[0] = 0
	binary.BigEndian.PutUint32(c.header[1:], e.ID)
	c.pool.New = func() any { return avro.NewWriter(nil, 1024) }
	return c, nil
}

// ID is the schema id this codec writes.
func (c *Codec[T]) ID() uint32 { return c.id }

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
		return nil, fmt.Errorf("avro: encode %s: %w", c.schema.(avro.NamedSchema).FullName(), err)
	}
	return append([]byte(nil), w.Buffer()...), nil
}

// Unmarshal decodes a framed value into v. Values written with another
// schema id are refused rather than misread.
func (c *Codec[T]) Unmarshal(b []byte, v *T) error {
	id, err := SchemaID(b)
	if err != nil {
		return err
	}
	if id != c.id {
		return fmt.Errorf("avro: schema id %d, want %d (%s)", id, c.id, c.schema.(avro.NamedSchema).FullName())
	}
	if err := avro.Unmarshal(c.schema, b[headerLen:], v); err != nil {
		return fmt.Errorf("avro: decode %s: %w", c.schema.(avro.NamedSchema).FullName(), err)
	}
	return nil
}
